"""Speaker profiles (DESIGN.md stage 7) and the voice bank.

A profile describes one diarized speaker from their own clean speech:

* a reference clip: the speaker's longest segments that overlap no one else's speech, up to
  :data:`REFERENCE_TARGET_S` seconds, joined with short silences; taken from the DeepFilterNet
  dialogue stem when the separate stage made one, else from the mix, denoised with DeepFilterNet
  (:class:`lipdub.backends.separate.dfn.DfnSeparator`) when its estimated SNR is below
  :data:`NOISY_SNR_DB`;
* its resemblyzer d-vector (Wan et al. 2018, GE2E; ``VoiceEncoder.embed_utterance``), 256 floats,
  unit norm;
* voice parameters from :func:`lipdub.voice.params.measure_voice` (F0 median and range, F1-F3)
  and the long-term average spectrum (:func:`lipdub.voice.params.spectral_envelope_db`);
* speaking rate in syllables per second: syllables of the transcript (count_syllables) over the
  seconds of speech of the speaker's segments.

Voice bank: a directory with one sub-directory per character, ``<name>/profile.json`` and
``<name>/reference.wav``, so the same character keeps the same voice across episodes
(``--voice-bank DIR``). A speaker whose ``name`` in script.json is a bank entry takes that entry; a
speaker still carrying its default name (its id) is matched to the bank entry with the most similar
embedding (cosine >= :data:`BANK_MATCH_MIN_COSINE`) and takes its name. A named speaker not in the
bank is saved to it under its name; unnamed speakers are not saved (``SPEAKER_00`` is a different
person in every episode).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from ..audio import read_audio, resample, write_audio
from ..errors import ConfigError, InputError
from .encoder import resemblyzer_module, voice_encoder
from .params import count_syllables, measure_voice, spectral_envelope_db

log = logging.getLogger(__name__)

#: Seconds of reference speech gathered per speaker (several seconds: enough for a stable d-vector
#: and F0 statistics, short enough for cloning prompts, which take 6-15 s).
REFERENCE_TARGET_S = 12.0
#: Shortest segment used as reference, seconds.
REFERENCE_MIN_SEGMENT_S = 0.5
#: Silence put between joined reference segments, seconds.
REFERENCE_GAP_S = 0.15
#: Below this estimated SNR (dB) the reference is denoised with DeepFilterNet.
NOISY_SNR_DB = 20.0
#: Smallest cosine similarity of d-vectors for a speaker to be taken as a voice bank character.
#: Same-speaker resemblyzer scores are mostly above 0.75 and different speakers below (Resemblyzer
#: README's speaker verification demo); the diarizer measures 0.78 as its split point.
BANK_MATCH_MIN_COSINE = 0.80
EMBED_RATE_HZ = 16000


class VoiceProfile(BaseModel):
    """One speaker's voice, stored as ``voices/<speaker>.json`` in the project and in the bank.

    Attributes:
        speaker: diarized speaker id (``SPEAKER_00``).
        name: character name (script.json ``Speaker.name``).
        reference_path: the reference clip (mono float WAV at ``reference_rate_hz``), relative to the
            file holding the profile.
        reference_s: its duration, seconds.
        reference_spans_s: the source spans ``(start_s, end_s)`` it was cut from.
        denoised: whether the reference comes from DeepFilterNet output.
        embedding: resemblyzer d-vector, 256 floats, unit L2 norm.
        f0_median_hz, f0_p10_hz, f0_p90_hz: F0 statistics, Hz.
        formants_hz: medians of F1, F2, F3, Hz.
        spectral_envelope_db: long-term average spectrum in the third-octave bands of
            :data:`lipdub.voice.params.ENVELOPE_BANDS_HZ`, dB around its mean (None above the
            reference's band limit); None in profiles made before it existed.
        syllables_per_s: speaking rate (syllables of the transcript / seconds of speech); None when
            the speaker's segments have no text.
        voice_register: ``"female"`` or ``"male"`` (median F0 >= 165 Hz or not), for the base TTS voice.
        source: ``"extracted"`` or ``"voice bank"``.
    """

    speaker: str
    name: str
    reference_path: str
    reference_rate_hz: int
    reference_s: float
    reference_spans_s: list[tuple[float, float]] = Field(default_factory=list)
    denoised: bool
    embedding: list[float]
    f0_median_hz: float
    f0_p10_hz: float
    f0_p90_hz: float
    formants_hz: list[float] = Field(min_length=3, max_length=3)
    syllables_per_s: float | None = None
    spectral_envelope_db: list[float | None] | None = None
    voice_register: str
    source: str = "extracted"

    def embedding_array(self) -> np.ndarray:
        """The d-vector as float32 ``(256,)``."""
        return np.asarray(self.embedding, dtype=np.float32)


@dataclass(frozen=True)
class SpeakerSpeech:
    """A speaker's segments: ``(start_s, end_s, text)`` per segment, seconds on the source timeline."""

    speaker: str
    name: str
    segments: list[tuple[float, float, str]]


def select_reference(own: list[tuple[float, float]], others: list[tuple[float, float]],
                     target_s: float = REFERENCE_TARGET_S) -> list[tuple[float, float]]:
    """Pick the reference spans: the speaker's longest spans that overlap nobody else.

    Args:
        own: the speaker's ``(start_s, end_s)`` spans.
        others: every other speaker's spans.
        target_s: stop once this many seconds are gathered.

    Returns:
        Chosen spans in time order. When every span overlaps someone, the least-overlapped one
        is returned alone (a reference is still needed).
    """
    def overlap(a: float, b: float) -> float:
        return sum(max(0.0, min(b, d) - max(a, c)) for c, d in others)

    clean = [(a, b) for a, b in own if b - a >= REFERENCE_MIN_SEGMENT_S and overlap(a, b) == 0.0]
    chosen, total = [], 0.0
    for a, b in sorted(clean, key=lambda s: s[0] - s[1]):  # longest first
        if total >= target_s:
            break
        chosen.append((a, b))
        total += b - a
    if not chosen and own:
        chosen = [min(own, key=lambda s: (overlap(*s) / max(s[1] - s[0], 1e-6), s[0] - s[1]))]
    return sorted(chosen)


def estimate_snr_db(samples: np.ndarray, sample_rate_hz: int, frame_s: float = 0.02) -> float:
    """Rough SNR of speech: loud frames (90th percentile power) over quiet ones (10th), dB.

    The percentile method of signal-to-noise estimation for speech with pauses (as in NIST's
    ``stnr`` tool, which contrasts the speech and noise peaks of the frame power histogram).
    """
    n = int(frame_s * sample_rate_hz)
    frames = samples[: len(samples) // n * n].reshape(-1, n) if len(samples) >= n else samples[None, :]
    power = np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-12
    lo, hi = np.percentile(power, [10, 90])
    return float(10.0 * np.log10(hi / lo))




def embed_speech(samples_16k: np.ndarray) -> np.ndarray:
    """Resemblyzer d-vector of 16 kHz mono speech, float32 ``(256,)``, unit norm.

    Uses ``resemblyzer.preprocess_wav`` (volume normalization, webrtcvad silence trimming) and
    ``VoiceEncoder.embed_utterance`` with the package's bundled weights.

    Raises:
        BackendUnavailable: resemblyzer or torch is not installed.
        ConfigError: less than 0.3 s of speech after trimming.
    """
    module, _ = resemblyzer_module()
    encoder = voice_encoder()
    wav = module.preprocess_wav(np.asarray(samples_16k, dtype=np.float32), source_sr=EMBED_RATE_HZ)
    if wav.size < 0.3 * EMBED_RATE_HZ:
        raise ConfigError("too little speech to embed (< 0.3 s after silence trimming)", "give a longer stretch of speech")
    return encoder.embed_utterance(wav).astype(np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors."""
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def build_profile(speech: SpeakerSpeech, others: list[tuple[float, float]], audio: np.ndarray, sample_rate_hz: int,
                  out_wav: Path, denoised: bool, denoise=None, language: str | None = None) -> VoiceProfile:
    """Build one speaker's profile and write its reference clip.

    Args:
        speech: the speaker's segments.
        others: spans of every other speaker (overlaps are excluded from the reference).
        audio: float32 mono ``(n,)`` at ``sample_rate_hz``: the dialogue stem (``denoised=True``) or
            the mix.
        out_wav: where the reference clip is written (float WAV at ``sample_rate_hz``).
        denoised: whether ``audio`` is already DeepFilterNet output.
        denoise: callable ``(float32 (n,) at sample_rate_hz) -> same``, DeepFilterNet enhancement;
            applied when ``denoised`` is False and the reference's SNR is below :data:`NOISY_SNR_DB`.
        language: language of the segments' text (ISO 639-1), for syllable counting.

    Returns:
        :class:`VoiceProfile` with ``reference_path`` = ``out_wav``'s file name.

    Raises:
        ConfigError: the speaker has no usable speech (no voiced frames).
    """
    spans = select_reference([(a, b) for a, b, _ in speech.segments], others)
    gap = np.zeros(int(REFERENCE_GAP_S * sample_rate_hz), dtype=np.float32)
    parts = []
    for a, b in spans:
        parts += [audio[int(a * sample_rate_hz): int(b * sample_rate_hz)].astype(np.float32), gap]
    ref = np.concatenate(parts[:-1]) if parts else np.zeros(0, np.float32)
    if ref.size < 0.3 * sample_rate_hz:
        raise ConfigError(f"speaker {speech.speaker} has less than 0.3 s of speech", "check the diarization (--speakers N)")
    if not denoised and denoise is not None and estimate_snr_db(ref, sample_rate_hz) < NOISY_SNR_DB:
        ref = np.asarray(denoise(ref), dtype=np.float32)
        denoised = True
    write_audio(out_wav, ref, sample_rate_hz)
    params = measure_voice(ref, sample_rate_hz)
    emb = embed_speech(resample(ref, sample_rate_hz, EMBED_RATE_HZ))
    syll = sum(count_syllables(t, language) for _, _, t in speech.segments)
    spoken_s = sum(b - a for a, b, _ in speech.segments)
    rate = round(syll / spoken_s, 3) if syll and spoken_s > 0 else None
    return VoiceProfile(
        speaker=speech.speaker, name=speech.name, reference_path=out_wav.name, reference_rate_hz=sample_rate_hz,
        reference_s=round(ref.size / sample_rate_hz, 3), reference_spans_s=spans, denoised=denoised, embedding=[round(float(v), 6) for v in emb],
        f0_median_hz=round(params.f0_median_hz, 2), f0_p10_hz=round(params.f0_p10_hz, 2), f0_p90_hz=round(params.f0_p90_hz, 2),
        formants_hz=[round(f, 1) for f in params.formants_hz], syllables_per_s=rate,
        spectral_envelope_db=spectral_envelope_db(ref, sample_rate_hz), voice_register=params.register,
    )


# -- voice bank --------------------------------------------------------------------------------

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def bank_key(name: str) -> str:
    """Directory name of a character in the bank: the name with unsafe characters as ``_``.

    Raises:
        ConfigError: the name is empty once cleaned.
    """
    key = _SAFE.sub("_", name.strip()).strip("._")
    if not key:
        raise ConfigError(f"speaker name {name!r} cannot be a voice bank entry", "give the speaker a name with letters or digits in script.json")
    return key


def save_to_bank(profile: VoiceProfile, reference_wav: Path, bank_dir: str | os.PathLike) -> Path:
    """Save ``profile`` (and copy its reference clip) as ``<bank>/<name>/``; returns that directory.

    An existing entry of the same name is replaced (atomically per file).
    """
    entry = Path(bank_dir) / bank_key(profile.name)
    entry.mkdir(parents=True, exist_ok=True)
    ref, sr = read_audio(reference_wav, mono=True)
    write_audio(entry / "reference.wav", ref, sr)
    data = profile.model_copy(update={"reference_path": "reference.wav", "source": "voice bank"})
    tmp = entry / ".profile.json.tmp"
    tmp.write_text(data.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp, entry / "profile.json")
    return entry


def load_bank(bank_dir: str | os.PathLike) -> dict[str, VoiceProfile]:
    """Every character of a voice bank, keyed by :func:`bank_key` of its name.

    Raises:
        InputError: the directory does not exist, or an entry's profile.json is invalid.
    """
    root = Path(bank_dir)
    if not root.is_dir():
        raise InputError(f"voice bank {root} is not a directory", "create it (mkdir) or fix --voice-bank")
    out = {}
    for f in sorted(root.glob("*/profile.json")):
        try:
            prof = VoiceProfile.model_validate_json(f.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(f"voice bank entry {f} is invalid: {exc}", "fix or delete that entry") from exc
        out[f.parent.name] = prof
    return out


def match_bank(embedding: np.ndarray, bank: dict[str, VoiceProfile], min_cosine: float = BANK_MATCH_MIN_COSINE) -> tuple[str, float] | None:
    """The bank entry most similar to ``embedding`` with cosine >= ``min_cosine``: ``(key, cosine)``, or None."""
    best = None
    for key, prof in bank.items():
        c = cosine(embedding, prof.embedding_array())
        if c >= min_cosine and (best is None or c > best[1]):
            best = (key, c)
    return best


