"""A Kokoro voice per speaker: the bundled pack nearest to the speaker, adapted toward their reference clip.

Kokoro-82M's voice is a style vector (per token count, ``[510, 256]``): dimensions 0-127 condition
the decoder (timbre), 128-255 the prosody predictor (pitch, energy, durations). The offline weights
bring five packs (jf_alpha, jf_gongitsune, jf_nezumi, jf_tebukuro, jm_kumo). A speaker's voice is an
affine combination of them, with one weight vector for the timbre half and one for the prosody half
(weights summing to 1, each in [:data:`MIN_WEIGHT`, :data:`MAX_WEIGHT`]: mild extrapolation past the
packs reaches voices none of them has, e.g. a deeper male than jm_kumo).

:func:`adapt_voice`:

1. every pack speaks the language's search sentence (:data:`SEARCH_TEXTS`); its F0 (Praat) and
   resemblyzer d-vector are measured (once per process and language);
2. the prior is the pack of the speaker's register (profile ``voice_register``) whose median F0 is
   nearest the profile's (in semitones); the search starts from it, or from the pack whose d-vector
   is nearest the reference's when that one is more similar (a register read from a short or noisy
   reference can be wrong: a woman measured at 162 Hz is "male" by the 165 Hz split);
3. the blend bank (:func:`lipdub.backends.tts.kokoro_bank.blend_bank`): :data:`~lipdub.backends.tts.kokoro_bank.BANK_SIZE` fixed blends of the packs, each spoken and
   embedded ahead of time (shipped in ``data/kokoro-blends-<lang>.json`` for the languages measured,
   else measured once per machine and cached beside the pack figures); of the start pack and the bank
   blends (distinct from the other speakers' voices) whose F0 is within :data:`F0_MATCH_ST` of the
   speaker's (all, when none is), the one whose d-vector is nearest the reference is the origin of the
   search, so the choice costs no synthesis at run time (a nearest neighbour among cached d-vectors
   instead of a synthesis per candidate);
4. a seeded random local search (a (1+1) evolution strategy with a shrinking step, Rechenberg 1973)
   from there over the two weight vectors maximizes the resemblyzer cosine between the speaker's reference
   d-vector and the search sentence spoken by the candidate, for ``evaluations`` syntheses (0: none);
   candidates that sound like a voice already given to another speaker (cosine above
   :data:`DISTINCT_MAX_COSINE`) are refused;
5. with Whisper (not in the pipeline, which hears every line instead) the :data:`CHECK_CANDIDATES`
   best candidates and the start pack speak a check sentence
   (:data:`CHECK_TEXTS`, not used by the search) and Whisper transcribes it; of those with WER <=
   :data:`MAX_CHECK_WER` and the expected language at probability >= :data:`MIN_LANGUAGE_P`, the one
   with the best mean similarity over both sentences is kept (when none passes, the most
   intelligible one, and the record says so);
6. the style is written as ``voices/<speaker>.kokoro-<lang>.npy`` with a JSON record beside it, and
   into the voice bank entry of a named character (``<bank>/<name>/kokoro-<lang>.npy``), so the
   character keeps the voice in the next episode (taken from the bank, no new search).

The synthesize stage passes :attr:`KokoroVoice.voice_id` (the file name) as ``voice=`` to a
:class:`lipdub.backends.tts.kokoro.KokoroTts` made with ``voice_dir=<project>/voices``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ...audio import read_audio, resample
from ...contracts.synthesize import TTS_BACKENDS
from ...errors import ConfigError, StageFailed
from ...languages import Language, parse_language
from ...qc.intelligibility import hear_line, load_whisper
from ...voice.params import REGISTER_SPLIT_HZ
from ...voice.profile import VoiceProfile, bank_key, cosine, embed_speech
from .kokoro_bank import MAX_WEIGHT, MIN_WEIGHT, SEARCH_TEXTS, Scorer, blend_bank, blend_style, pack_measures, speech_rate
from .kokoro_model import stock_packs

log = logging.getLogger(__name__)

#: Held-out sentence per language: Whisper checks the chosen voice on it, and the similarity on it is reported.
CHECK_TEXTS = {
    "es": "Mañana temprano mi hermana viajará en tren hasta la costa para ver a sus amigos.",
    "fr": "Demain matin, ma sœur prendra le train jusqu'à la côte pour voir ses amis.",
    "it": "Domani mattina mia sorella prenderà il treno fino alla costa per vedere i suoi amici.",
    "pt": "Amanhã cedo a minha irmã vai viajar de comboio até à costa para ver os seus amigos.",
    "de": "Morgen früh fährt meine Schwester mit dem Zug an die Küste, um ihre Freunde zu besuchen.",
    "en": "Early tomorrow my sister will take the train to the coast to visit her friends.",
    "ja": "明日の朝、妹は友達に会うために電車で海まで行きます。",
}
#: Two speakers' voices must differ at least this much: resemblyzer cosine between what they say
#: of the search sentence at most this (same-speaker scores are mostly above 0.75, Resemblyzer README).
DISTINCT_MAX_COSINE = 0.92
#: Intelligibility the kept voice needs on the check sentence (Whisper base).
MAX_CHECK_WER = 0.15
MIN_LANGUAGE_P = 0.8
#: Candidates checked with Whisper, best first, before falling back to the start pack.
CHECK_CANDIDATES = 3
INITIAL_STEP = 0.35
#: Extra syntheses the search may make to find a voice distinct from the ones already given.
MAX_EXTRA_EVALUATIONS = 24
FORMAT_VERSION = 5  # 4: syllables_per_s; 5: the search starts from the blend bank
#: The starting voice is taken among the start pack and bank blends whose median F0 on the search
#: sentence is within this many semitones of the speaker's (all of them when none is): resemblyzer's
#: d-vector of one 5 s sentence can prefer a voice an octave off. Chosen on th_voxceleb_pcavs_00086
#: (144 Hz; nearest d-vector a 206 Hz blend, held-out similarity 0.404; within 3 st a 128 Hz blend,
#: 0.455), the only one of the five bench speakers whose choice it changes (README "Voices").
F0_MATCH_ST = 3.0


@dataclass
class KokoroVoice:
    """A speaker's Kokoro voice (what is stored in the JSON beside the ``.npy``).

    Attributes:
        speaker: speaker id; name: character name; language: ISO 639-1 code.
        voice_id: the ``.npy`` file name, the ``voice=`` to give KokoroTts (``voice_dir`` = the voices directory).
        start_pack: the pack the search started from; nearest_pack: the register/F0 prior.
        timbre_weights / prosody_weights: pack name -> weight of the two halves of the style.
        similarity: resemblyzer cosine reference vs the search sentence (adapted voice).
        start_similarity: the same for the start pack.
        check_similarity / start_check_similarity: on the check sentence (adapted / start pack).
        check_wer / check_language_p: Whisper on the check sentence (None: not checked).
        syllables_per_s: the voice's speaking rate on the check sentence at rate 1.0 (syllables of the
            text over the span of its phonemes), for :func:`lipdub.voice.params.natural_speed`.
        evaluations: syntheses the search made; reference_sha: hash of the reference d-vector it used.
        source: ``"search"``, ``"voice bank"`` or ``"most intelligible candidate (none passed the check)"``
            (a voice reused from the project's cache also has the attribute ``from_cache`` True).
        style_sha: SHA-256 (16 hex) of the float32 style: for cache keys of the lines spoken with it.
    """

    speaker: str
    name: str
    language: str
    voice_id: str
    start_pack: str
    timbre_weights: dict[str, float]
    prosody_weights: dict[str, float]
    similarity: float
    start_similarity: float
    check_similarity: float | None = None
    start_check_similarity: float | None = None
    check_wer: float | None = None
    check_language_p: float | None = None
    syllables_per_s: float | None = None
    evaluations: int = 0
    seed: int = 0
    reference_sha: str = ""
    source: str = "search"
    nearest_pack: str = ""
    style_sha: str = ""
    version: int = FORMAT_VERSION
    embedding: list[float] = field(default_factory=list, repr=False)

    def style(self, packs: dict[str, np.ndarray]) -> np.ndarray:
        """The ``(510, 256)`` style from the weights and ``packs``."""
        return blend_style(packs, self.timbre_weights, self.prosody_weights)


def voice_file_name(speaker: str, language: str) -> str:
    """``<speaker>.kokoro-<lang>.npy`` (the JSON is the same name with ``.json``)."""
    return f"{bank_key(speaker)}.kokoro-{language}.npy"


def nearest_pack(profile: VoiceProfile, pack_f0_hz: dict[str, float]) -> str:
    """The pack of the profile's register (by its measured F0, :data:`lipdub.voice.params.REGISTER_SPLIT_HZ`)
    whose F0 is nearest the profile's median in semitones; any pack when none has that register."""
    def register(f0: float) -> str:
        return "female" if f0 >= REGISTER_SPLIT_HZ else "male"

    same = [n for n, f0 in pack_f0_hz.items() if register(f0) == profile.voice_register] or list(pack_f0_hz)
    return min(sorted(same), key=lambda n: abs(12 * math.log2(pack_f0_hz[n] / max(profile.f0_median_hz, 1.0))))


def _propose(w: np.ndarray, step: float, rng: np.random.Generator) -> np.ndarray:
    """A Gaussian step in the weight simplex plane (sum kept at 1), clipped to the weight bounds."""
    d = rng.normal(0.0, step, size=w.shape)
    d -= d.mean()
    out = np.clip(w + d, MIN_WEIGHT, MAX_WEIGHT)
    return out + (1.0 - out.sum()) / out.size


def _search(scorer: Scorer, packs, names, start: tuple[np.ndarray, np.ndarray], ref: np.ndarray, taken: list[np.ndarray],
            evaluations: int, seed: int, start_emb: np.ndarray, start_rate: float | None = None) -> list[tuple]:
    """(1+1)-ES over (timbre, prosody) weights from ``start`` (the two weight vectors, in ``names``
    order); returns the accepted candidates ``(score, wt, wp, emb, syllables/s)``, best first.

    Candidates too close to a ``taken`` voice are not accepted; when none is accepted after
    ``evaluations`` syntheses the search goes on (at most :data:`MAX_EXTRA_EVALUATIONS` more) until one is.
    """
    rng = np.random.default_rng(seed)
    wt0, wp0 = (np.asarray(w, np.float64) for w in start)

    def ok(emb):
        return _distinct(emb, taken)

    kept = [(cosine(ref, start_emb), wt0, wp0, start_emb, start_rate)] if ok(start_emb) else []
    best = kept[0] if kept else (-1.0, wt0, wp0, start_emb, start_rate)
    step = INITIAL_STEP
    i = 0
    while i < evaluations or (not kept and i < evaluations + MAX_EXTRA_EVALUATIONS):
        part = i % 3  # timbre, prosody, both: each half moves on its own as often as together
        i += 1
        wt = _propose(best[1], step, rng) if part != 1 else best[1]
        wp = _propose(best[2], step, rng) if part != 0 else best[2]
        style = blend_style(packs, dict(zip(names, wt)), dict(zip(names, wp)))
        emb, rate = scorer.embed(style, SEARCH_TEXTS[scorer.language.code])
        score = cosine(ref, emb)
        if ok(emb):
            kept.append((score, wt, wp, emb, rate))
            if score > best[0]:
                best = (score, wt, wp, emb, rate)
                step = min(INITIAL_STEP, step * 1.5)
                continue
        step = max(0.05, step * 0.85) if kept else min(2 * INITIAL_STEP, step * 1.2)
    if not kept:
        raise StageFailed(f"no Kokoro voice distinct from the other speakers' after {i} candidates",
                          "give the speakers explicit voices (script.json speaker voice)")
    return sorted(kept, key=lambda c: -c[0])


def _distinct(emb: np.ndarray, taken: list[np.ndarray]) -> bool:
    """Whether ``emb`` is at most :data:`DISTINCT_MAX_COSINE` from every ``taken`` d-vector."""
    return all(cosine(emb, t) <= DISTINCT_MAX_COSINE for t in taken)


def _check(scorer: Scorer, style: np.ndarray, ref: np.ndarray, whisper) -> tuple[float, float | None, float | None, float | None]:
    """Held-out sentence: ``(similarity, WER, expected-language probability, syllables/s)`` (WER None
    without Whisper)."""
    text = CHECK_TEXTS[scorer.language.code]
    s = scorer.speech(style, text)
    sim = cosine(ref, embed_speech(resample(s.samples, s.sample_rate_hz, 16000)))
    rate = speech_rate(text, s, scorer.language.code)
    if whisper is None:
        return sim, None, None, rate
    heard = hear_line(whisper, s.samples, s.sample_rate_hz, scorer.language.code)
    return sim, heard.wer(text), heard.expected_probability, rate


def reference_embedding(profile: VoiceProfile, reference_wav: Path | None) -> np.ndarray:
    """The d-vector the search aims at: of ``reference_wav`` when given, else the profile's own."""
    if reference_wav is None:
        return profile.embedding_array()
    x, sr = read_audio(reference_wav, mono=True)
    return embed_speech(resample(x, sr, 16000))


def adapt_voice(profile: VoiceProfile, reference_wav: Path | None, language: Language | str, *, voices_dir: Path,
                taken: list[KokoroVoice] = (), whisper="base", evaluations: int = 18, seed: int = 0,
                bank_dir: Path | None = None, tts=None) -> KokoroVoice:
    """Find (or reuse) the speaker's Kokoro voice; see the module docstring.

    Args:
        profile: the speaker's profile (register, F0, speaker id, name).
        reference_wav: their reference clip (None: the profile's stored d-vector is the target).
        language: the dub's language (one Kokoro speaks).
        voices_dir: where the ``.npy`` and JSON are written (the project's ``voices/``); a valid one
            already there (same reference, language and settings) is returned without a search.
        taken: voices already given to other speakers of the dub (kept distinct from).
        whisper: faster-whisper model, or a model name (loaded offline), for the intelligibility
            check; None skips the check (recorded as such).
        evaluations: syntheses of the search after the bank's nearest blend (each about 2.5 s of CPU on
            2 cores for 5 s of speech); 0: none (the nearest blend or the start pack).
        seed: seed of the search (same inputs, same voice).
        bank_dir: voice bank; a named speaker's bank voice is reused, a new one saved there.
        tts: a KokoroTts to use (default: a new one).

    Returns:
        The :class:`KokoroVoice`; its ``.npy`` is in ``voices_dir``.

    Raises:
        ConfigError: a language Kokoro does not speak, negative ``evaluations``.
        BackendUnavailable / MissingWeights: Kokoro, resemblyzer or faster-whisper missing.
    """
    lang = language if isinstance(language, Language) else parse_language(language)
    if lang.code not in SEARCH_TEXTS:
        raise ConfigError(f"no Kokoro voice adaptation for {lang.name} ({lang.code})", f"Kokoro speaks {', '.join(SEARCH_TEXTS)}")
    if evaluations < 0:
        raise ConfigError(f"evaluations must be >= 0, got {evaluations}", "use 0 (the nearest measured blend) or more")
    voices_dir = Path(voices_dir)
    voices_dir.mkdir(parents=True, exist_ok=True)
    ref = reference_embedding(profile, reference_wav)
    ref_sha = hashlib.sha256(np.round(ref, 4).astype(np.float32).tobytes()).hexdigest()[:16]
    taken_emb = [np.asarray(v.embedding, np.float32) for v in taken if v.speaker != profile.speaker and v.embedding]
    cached = _reuse(voices_dir, profile, lang.code, ref_sha, evaluations, seed, taken_emb, bank_dir)
    if cached is not None:
        return cached
    tts = tts or TTS_BACKENDS.create("kokoro")
    packs = stock_packs()
    names = sorted(packs)
    scorer = Scorer(tts, lang)
    measures = pack_measures(scorer, packs, lang.code)
    prior = nearest_pack(profile, {n: m[1] for n, m in measures.items()})
    closest = max(names, key=lambda n: cosine(ref, measures[n][0]))
    start = closest if cosine(ref, measures[closest][0]) > cosine(ref, measures[prior][0]) else prior
    pure = np.array([1.0 if n == start else 0.0 for n in names])
    candidates = [(pure, pure.copy(), measures[start][0], measures[start][2], measures[start][1])]
    candidates += [(np.array([b.timbre[n] for n in names]), np.array([b.prosody[n] for n in names]), b.embedding,
                    b.syllables_per_s, b.f0_median_hz) for b in blend_bank(scorer, packs, lang.code)]
    distinct = [c for c in candidates if _distinct(c[2], taken_emb)] or candidates[:1]
    pitched = [c for c in distinct if abs(12 * math.log2(max(c[4], 1.0) / max(profile.f0_median_hz, 1.0))) <= F0_MATCH_ST]
    origin = max(pitched or distinct, key=lambda c: cosine(ref, c[2]))
    found = _search(scorer, packs, names, origin[:2], ref, taken_emb, evaluations, seed, origin[2], origin[3])
    if isinstance(whisper, str):
            whisper = load_whisper(whisper)
    voice = _choose(scorer, packs, names, start, ref, found, whisper, measures[start][0])
    voice.speaker, voice.name, voice.language, voice.nearest_pack = profile.speaker, profile.name, lang.code, prior
    voice.voice_id, voice.evaluations, voice.seed, voice.reference_sha = voice_file_name(profile.speaker, lang.code), evaluations, seed, ref_sha
    style = voice.style(packs)
    voice.style_sha = hashlib.sha256(style.tobytes()).hexdigest()[:16]
    save_voice(voice, style, voices_dir)
    if bank_dir is not None and profile.name.strip() and profile.name != profile.speaker:
        save_voice(voice, style, Path(bank_dir) / bank_key(profile.name), file_name=f"kokoro-{lang.code}.npy")
    log.info("kokoro voice %s (%s): start %s sim %.3f -> %.3f, check sentence %.3f -> %.3f, WER %s", profile.speaker, lang.code,
             start, voice.start_similarity, voice.similarity, voice.start_check_similarity or float("nan"),
             voice.check_similarity or float("nan"), voice.check_wer)
    return voice


def _choose(scorer, packs, names, start, ref, found, whisper, start_emb) -> KokoroVoice:
    """Among the best candidates (and the start pack) that pass the check sentence, the one with the
    best mean similarity over the search and check sentences (less overfit to the search sentence);
    when none passes, the most intelligible one (``found`` holds only voices distinct from the others').

    Without Whisper (``whisper`` None: the pipeline hears every line instead) no check sentence is
    spoken: the candidate with the best similarity on the search sentence is kept (saves up to
    :data:`CHECK_CANDIDATES` + 2 syntheses per speaker)."""
    if whisper is None:
        score, wt, wp, emb, rate = found[0]
        return KokoroVoice("", "", "", "", start, _rounded(names, wt), _rounded(names, wp), round(score, 4),
                           round(cosine(ref, start_emb), 4), syllables_per_s=rate, embedding=[round(float(v), 6) for v in emb])
    start_sim = _check(scorer, packs[start], ref, None)[0]
    w0 = np.array([1.0 if n == start else 0.0 for n in names])
    order = found[:CHECK_CANDIDATES]
    if not any(np.array_equal(c[1], w0) and np.array_equal(c[2], w0) for c in order):
        order += [c for c in found if np.array_equal(c[1], w0) and np.array_equal(c[2], w0)][:1]
    passed, failed = [], []
    for score, wt, wp, emb, _ in order:
        weights_t, weights_p = _rounded(names, wt), _rounded(names, wp)
        sim, wer, p, rate = _check(scorer, blend_style(packs, weights_t, weights_p), ref, whisper)
        voice = KokoroVoice("", "", "", "", start, weights_t, weights_p, round(score, 4), round(cosine(ref, start_emb), 4),
                            round(sim, 4), round(start_sim, 4), _r(wer), _r(p), rate, embedding=[round(float(v), 6) for v in emb])
        if wer is None or (wer <= MAX_CHECK_WER and (p or 0.0) >= MIN_LANGUAGE_P):
            passed.append(voice)
        else:
            log.info("kokoro voice candidate (similarity %.3f) fails the check: WER %.2f, language p %.2f", score, wer, p or 0.0)
            failed.append(voice)
    if passed:
        return max(passed, key=lambda v: v.similarity + v.check_similarity)
    best = min(failed, key=lambda v: (v.check_wer, -(v.check_language_p or 0.0)))
    best.source = "most intelligible candidate (none passed the check)"
    return best


def _rounded(names, w) -> dict[str, float]:
    return {n: round(float(x), 4) for n, x in zip(names, w)}


def _r(x):
    return None if x is None else round(float(x), 4)


def save_voice(voice: KokoroVoice, style: np.ndarray, directory: Path, file_name: str | None = None) -> Path:
    """Write ``<file_name or voice.voice_id>`` (float32 ``(510, 1, 256)``) and its JSON into ``directory`` atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    name = file_name or voice.voice_id
    npy, meta = directory / name, directory / name.replace(".npy", ".json")
    tmp = directory / f".{name}.tmp.npy"
    np.save(tmp, np.asarray(style, np.float32).reshape(-1, 1, style.shape[-1]))
    os.replace(tmp, npy)
    tmp_json = directory / f".{name}.tmp.json"
    tmp_json.write_text(json.dumps(asdict(voice), indent=1), encoding="utf-8")
    os.replace(tmp_json, meta)
    return npy


def load_voice(path: Path) -> KokoroVoice | None:
    """The :class:`KokoroVoice` recorded beside ``path`` (the ``.npy``), or None when absent or stale."""
    meta = Path(path).with_suffix(".json")
    if not (meta.is_file() and Path(path).is_file()):
        return None
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
        voice = KokoroVoice(**data)
    except (ValueError, TypeError):
        return None
    return voice if voice.version == FORMAT_VERSION else None


def _reuse(voices_dir: Path, profile: VoiceProfile, code: str, ref_sha: str, evaluations: int, seed: int,
           taken_emb: list[np.ndarray], bank_dir: Path | None) -> KokoroVoice | None:
    """The project's cached voice (same reference and settings), else the bank's, when still distinct."""
    def distinct(v: KokoroVoice) -> bool:
        return all(cosine(np.asarray(v.embedding, np.float32), t) <= DISTINCT_MAX_COSINE for t in taken_emb)

    local = voices_dir / voice_file_name(profile.speaker, code)
    v = load_voice(local)
    if v is not None and v.reference_sha == ref_sha and v.evaluations == evaluations and v.seed == seed and distinct(v):
        v.from_cache = True  # not a field: the record on disk keeps how the voice was made
        return v
    named = profile.name.strip() and profile.name != profile.speaker
    if bank_dir is not None and named:
        entry = Path(bank_dir) / bank_key(profile.name) / f"kokoro-{code}.npy"
        v = load_voice(entry)
        if v is not None and distinct(v):
            v.speaker, v.voice_id, v.source = profile.speaker, voice_file_name(profile.speaker, code), "voice bank"
            shutil.copyfile(entry, local)
            save_voice(v, np.load(local), voices_dir)
            return v
        if v is not None:
            log.warning("voice bank voice of %s is too close to another speaker's: adapting a new one", profile.name)
    return None


def adapt_voices(profiles: dict[str, VoiceProfile], voices_dir: Path, language: Language | str, *,
                 reference_dir: Path | None = None, **kwargs) -> dict[str, KokoroVoice]:
    """:func:`adapt_voice` for every speaker, in speaker-id order, each kept distinct from the ones before.

    Args:
        profiles: speaker id -> profile.
        voices_dir: the project's ``voices/``.
        language: the dub's language.
        reference_dir: where the profiles' ``reference_path`` files are (default ``voices_dir``).
        kwargs: passed to :func:`adapt_voice` (whisper, evaluations, seed, bank_dir, tts).
    """
    if isinstance(kwargs.get("whisper", "base"), str):
            kwargs["whisper"] = load_whisper(kwargs.get("whisper", "base"))
    out: dict[str, KokoroVoice] = {}
    for spk in sorted(profiles):
        prof = profiles[spk]
        ref = Path(reference_dir or voices_dir) / prof.reference_path
        out[spk] = adapt_voice(prof, ref if ref.is_file() else None, language, voices_dir=voices_dir,
                               taken=list(out.values()), **kwargs)
    return out
