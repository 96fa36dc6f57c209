"""Phoneme timings of speech whose text is known: G2P by espeak-ng, refined by an acoustic alignment.

Used for the source speech (the transcript's words with their timestamps) and for dub audio given from
outside (``lipdub lipsync VIDEO AUDIO``, a studio voice-over: faster-whisper's words), so that every
video frame of the actor and every output frame carries a phoneme and viseme label.

Method (the one aeneas uses to align text with audio: readbeyond/aeneas, DTW of MFCCs of the audio
against MFCCs of an espeak rendering of the text):

1. **G2P.** Every word is spoken by espeak-ng (:class:`lipdub.backends.tts.espeak.EspeakTts`) in the
   transcript's language; its phoneme events give the word's phonemes (espeak IPA) *and* their timing
   in espeak's rendering. The renderings are concatenated, 50 ms of silence between words and 150 ms
   at both ends, so the timing of every phoneme in that synthetic utterance is known.
2. **Expected timing.** The word timestamps map the synthetic utterance onto the real one piecewise
   linearly (word start to word start).
3. **Alignment.** Dynamic time warping (Sakoe and Chiba 1978; ``librosa.sequence.dtw``) of the
   synthetic utterance against the real audio, 10 ms frames, features: 13 MFCCs (c1-c13 of a 40-band
   log-mel, :func:`lipdub.spectral.log_mel`) plus the frame level and the deltas of
   both, each standardized per utterance (so a formant synthesizer and a human voice meet in one
   space). The local cost adds a penalty for straying more than ``slack_s`` from the expected timing
   (word timestamps are reliable to about 0.1-0.2 s), so the acoustics decide the phoneme boundaries
   and the timestamps keep the path from wandering.

Every phoneme's start is the real time its synthetic start maps to; it ends where the next phoneme of
the same chunk starts. Without word timestamps (a segment's text only), the segment's span gives the
expected timing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..audio import resample
from ..contracts.synthesize import TTS_BACKENDS, PhonemeTiming
from ..contracts.transcribe import TRANSCRIBERS
from ..errors import BackendUnavailable, InputError, LipdubError, StageFailed
from ..languages import Language, parse_language
from ..spectral import log_mel

log = logging.getLogger(__name__)

FRAME_S = 0.010
WORD_GAP_S = 0.050
EDGE_S = 0.150


@dataclass
class TextChunk:
    """A stretch of speech with its text: ``start_s``/``end_s`` (seconds in the audio) and either
    ``words`` ``(start_s, end_s, text)`` with timestamps or only ``text``."""

    start_s: float
    end_s: float
    text: str = ""
    words: list[tuple[float, float, str]] = field(default_factory=list)


@dataclass
class ChunkAlignment:
    """Result for one chunk: its phonemes (seconds in the audio), the DTW's mean local cost (lower is
    a closer acoustic match; standardized feature units) and the mean absolute shift of the phoneme
    starts from the word-timestamp expectation (seconds)."""

    phonemes: list[PhonemeTiming]
    mean_cost: float
    mean_shift_s: float


def _clean_word(text: str) -> str:
    return re.sub(r"[^\w'’-]+", " ", text).strip()


def _render_words(words: Sequence[str], language, sample_rate_hz: int):
    """espeak-ng rendering of the words one by one: (audio float32, phonemes [(word k, start, end, ph)],
    word spans [(start, end)]) in seconds of the synthetic utterance; words espeak cannot speak are
    left out (their span is None)."""
    tts = TTS_BACKENDS.create("espeak-ng")
    gap = np.zeros(int(round(WORD_GAP_S * sample_rate_hz)), np.float32)
    edge = np.zeros(int(round(EDGE_S * sample_rate_hz)), np.float32)
    pieces, phones, spans = [edge], [], []
    t = EDGE_S
    for k, word in enumerate(words):
        text = _clean_word(word)
        speech = None
        if text:
            try:
                speech = tts.synthesize(text, language)
            except StageFailed:
                speech = None
        if speech is None or not speech.phonemes:
            spans.append(None)
            continue
        a = resample(speech.samples, speech.sample_rate_hz, sample_rate_hz)
        p0, p1 = speech.phonemes[0].start_s, speech.phonemes[-1].end_s
        a = a[int(p0 * sample_rate_hz):max(int(p0 * sample_rate_hz) + 1, int(round(p1 * sample_rate_hz)))]
        for p in speech.phonemes:
            phones.append((k, t + p.start_s - p0, t + p.end_s - p0, p.phoneme))
        spans.append((t, t + len(a) / sample_rate_hz))
        pieces += [a, gap]
        t += (len(a) + len(gap)) / sample_rate_hz
    pieces.append(edge)
    return np.concatenate(pieces).astype(np.float32), phones, spans


def alignment_features(audio: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """Per 10 ms frame: MFCC c1-c13 (DCT-II of the 40-band log-mel, scipy), the level (dB, floored
    60 dB below the peak) and the time derivatives of both, each dimension standardized over the
    utterance: float64 ``(M, 28)``."""
    from scipy.fft import dct

    lm = log_mel(np.asarray(audio, np.float32), sample_rate_hz, n_mels=40, hop_s=FRAME_S)
    c = dct(lm.db.astype(np.float64), type=2, norm="ortho", axis=1)[:, 1:14]
    e = lm.energy_db.astype(np.float64)
    e = np.maximum(e, e.max() - 60.0)[:, None]
    f = np.concatenate([c, e], axis=1)
    f = np.concatenate([f, np.gradient(f, axis=0)], axis=1) if len(f) > 1 else np.concatenate([f, 0 * f], axis=1)
    return (f - f.mean(axis=0)) / (f.std(axis=0) + 1e-6)


def _expected_map(spans, words, chunk: TextChunk, syn_s: float, timed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Knots (synthetic seconds -> real seconds) of the expected piecewise-linear timing: word start
    to word start and end to end with timestamps, else the spoken part onto the chunk's span."""
    xs, ys = [0.0], [chunk.start_s - EDGE_S]
    spoken = [(sp, w) for sp, w in zip(spans, words) if sp is not None]
    if timed:
        for sp, w in spoken:
            xs += [sp[0], sp[1]]
            ys += [w[0], max(w[1], w[0] + 1e-3)]
    else:
        xs += [spoken[0][0][0], spoken[-1][0][1]]
        ys += [chunk.start_s, chunk.end_s]
    xs.append(syn_s)
    ys.append(max(chunk.end_s, ys[-1]) + EDGE_S)
    return np.asarray(xs, np.float64), np.maximum.accumulate(np.asarray(ys, np.float64))


def align_chunk(audio: np.ndarray, sample_rate_hz: int, chunk: TextChunk, language, *,
                slack_s: float = 0.15, prior_weight: float = 1.0, margin_s: float = 0.30) -> ChunkAlignment:
    """Phoneme timings of one chunk (see the module docstring).

    Args:
        audio: float mono at ``sample_rate_hz``; times are seconds from its first sample.
        chunk: the text with its timing.
        language: a :class:`lipdub.languages.Language` espeak-ng speaks.
        slack_s: deviation from the expected timing that costs nothing.
        prior_weight: weight of the timing penalty (per 50 ms beyond the slack) against the acoustic
            cost (mean squared difference of standardized features).
        margin_s: audio taken either side of the chunk.

    Raises:
        ConfigError / BackendUnavailable: espeak-ng has no voice for the language / is missing.
        BackendUnavailable: librosa is missing.
    """
    try:
        import librosa.sequence
    except ImportError as exc:  # pragma: no cover - librosa is in the audio extra
        raise BackendUnavailable("the phoneme alignment needs librosa", "pip install 'lipdub[audio]'") from exc
    words = chunk.words or [(chunk.start_s, chunk.end_s, w) for w in chunk.text.split()]
    timed = bool(chunk.words)
    syn, phones, spans = _render_words([w[2] for w in words], language, sample_rate_hz)
    if not phones:
        return ChunkAlignment([], float("nan"), float("nan"))
    a0 = max(0.0, min(chunk.start_s, words[0][0] if timed else chunk.start_s) - margin_s)
    a1 = min(len(audio) / sample_rate_hz, max(chunk.end_s, words[-1][1] if timed else chunk.end_s) + margin_s)
    real = np.asarray(audio[int(a0 * sample_rate_hz):int(a1 * sample_rate_hz)], np.float32)
    if len(real) < int(0.05 * sample_rate_hz):
        return ChunkAlignment([], float("nan"), float("nan"))
    x, y = alignment_features(syn, sample_rate_hz), alignment_features(real, sample_rate_hz)
    # mean squared difference, as |x|^2 + |y|^2 - 2 x.y (memory N x M, not N x M x features)
    cost = np.maximum((x ** 2).sum(1)[:, None] + (y ** 2).sum(1)[None, :] - 2.0 * (x @ y.T), 0.0) / x.shape[1]
    ts = np.arange(len(x)) * FRAME_S
    tr = a0 + np.arange(len(y)) * FRAME_S
    kx, ky = _expected_map(spans, words, chunk, len(syn) / sample_rate_hz, timed)
    expected = np.interp(ts, kx, ky)
    acoustic = cost.copy()
    cost += prior_weight * np.maximum(0.0, np.abs(tr[None, :] - expected[:, None]) - slack_s) / 0.05
    _acc, path = librosa.sequence.dtw(C=cost)
    path = path[::-1]
    real_of = np.zeros(len(x))
    for i, js in _group_path(path, len(x)):
        real_of[i] = tr[int(np.median(js))]
    starts = [real_of[min(int(round(s / FRAME_S)), len(x) - 1)] for _k, s, _e, _p in phones]
    out: list[PhonemeTiming] = []
    for n, (k, s, e, ph) in enumerate(phones):
        st = starts[n]
        en = starts[n + 1] if n + 1 < len(phones) and phones[n + 1][0] == k else real_of[min(int(round(e / FRAME_S)), len(x) - 1)]
        if n + 1 < len(phones) and phones[n + 1][0] != k:
            en = min(en, starts[n + 1])
        out.append(PhonemeTiming(float(st), float(max(en, st + 1e-3)), ph))
    shift = float(np.mean(np.abs(np.array(starts) - np.interp([p[1] for p in phones], kx, ky))))
    return ChunkAlignment(out, float(acoustic[path[:, 0], path[:, 1]].mean()), shift)


def _group_path(path: np.ndarray, n: int):
    """(synthetic frame i, real frames matched to i) for i in 0..n-1."""
    order = np.argsort(path[:, 0], kind="stable")
    p = path[order]
    cuts = np.flatnonzero(np.diff(p[:, 0])) + 1
    for grp in np.split(p, cuts):
        yield int(grp[0, 0]), grp[:, 1]


def chunks_from_segments(segments: Iterable, max_gap_s: float = 0.5) -> list[TextChunk]:
    """Chunks from transcript or script segments (objects with ``start_s``, ``end_s``, ``text`` or
    ``source_text``, and ``words`` with ``start_s``/``end_s``/``text``); a segment is split where two
    words are more than ``max_gap_s`` apart (the DTW then never has to bridge a long pause)."""
    out: list[TextChunk] = []
    for seg in segments:
        text = getattr(seg, "text", None) or getattr(seg, "source_text", "") or ""
        words = [(float(w.start_s), float(w.end_s), str(w.text)) for w in (getattr(seg, "words", None) or []) if str(w.text).strip()]
        if not words:
            if text.strip():
                out.append(TextChunk(float(seg.start_s), float(seg.end_s), text))
            continue
        cur = [words[0]]
        for w in words[1:]:
            if w[0] - cur[-1][1] > max_gap_s:
                out.append(TextChunk(cur[0][0], cur[-1][1], " ".join(x[2] for x in cur), cur))
                cur = []
            cur.append(w)
        out.append(TextChunk(cur[0][0], cur[-1][1], " ".join(x[2] for x in cur), cur))
    return out


@dataclass
class Alignment:
    """Phoneme timings of a whole audio: ``phonemes`` (seconds in the audio), ``chunks`` aligned,
    ``mean_cost`` and ``mean_shift_s`` over them (see :class:`ChunkAlignment`), ``language``."""

    phonemes: list[PhonemeTiming]
    chunks: int
    mean_cost: float
    mean_shift_s: float
    language: str

    def summary(self) -> dict:
        """Figures for a stage record."""
        return {"phonemes": len(self.phonemes), "chunks": self.chunks, "language": self.language,
                "dtw_mean_cost": round(self.mean_cost, 4), "mean_shift_from_word_times_s": round(self.mean_shift_s, 4)}


def align_segments(audio: np.ndarray, sample_rate_hz: int, segments: Iterable, language, **kw) -> Alignment:
    """Phoneme timings of ``audio`` (float mono) from its transcript ``segments`` (see
    :func:`chunks_from_segments`) in ``language`` (a :class:`~lipdub.languages.Language` or a code).

    Raises:
        InputError: the audio is not 1-D.
        ConfigError / BackendUnavailable: espeak-ng cannot speak the language / is missing.
    """
    lang = language if isinstance(language, Language) else parse_language(str(language))
    x = np.asarray(audio)
    if x.ndim != 1:
        raise InputError(f"audio must be mono (1-D), got shape {x.shape}", "pass the 16 kHz mono analysis audio")
    phonemes, costs, shifts, n = [], [], [], 0
    for chunk in chunks_from_segments(segments):
        res = align_chunk(x, sample_rate_hz, chunk, lang, **kw)
        if res.phonemes:
            phonemes += res.phonemes
            costs.append(res.mean_cost)
            shifts.append(res.mean_shift_s)
            n += 1
    phonemes.sort(key=lambda p: p.start_s)
    return Alignment(phonemes, n, float(np.mean(costs)) if costs else float("nan"),
                     float(np.mean(shifts)) if shifts else float("nan"), lang.code)


def align_text(audio: np.ndarray, sample_rate_hz: int, text: str, language, start_s: float = 0.0,
               end_s: float | None = None) -> list[PhonemeTiming]:
    """Phoneme timings of one line whose text is known but not its word times (a TTS that gives no
    phoneme events: piper, XTTS, a cloud voice): the speech between ``start_s`` and ``end_s`` (default
    the end of ``audio``) aligned as one chunk (:func:`align_chunk`).

    Raises:
        ConfigError / BackendUnavailable: espeak-ng cannot speak the language / is missing.
    """
    lang = language if isinstance(language, Language) else parse_language(str(language))
    end = len(audio) / sample_rate_hz if end_s is None else float(end_s)
    return align_chunk(np.asarray(audio), sample_rate_hz, TextChunk(float(start_s), end, text), lang).phonemes


def transcribe_and_align(audio: np.ndarray, sample_rate_hz: int, language: str | None = None,
                         model: str = "base", transcriber=None) -> tuple[Alignment, object]:
    """Phoneme timings of speech without a transcript (a voice-over given to ``lipdub lipsync``):
    faster-whisper words (:class:`lipdub.backends.transcribe.faster_whisper.FasterWhisperTranscriber`,
    ``model`` resolved offline), then :func:`align_segments`.

    Args:
        audio: float32 mono at ``sample_rate_hz`` (resampled to 16 kHz for Whisper).
        language: ISO 639-1 code, or None to let Whisper detect it.
        transcriber: an already constructed transcriber (reused across calls).

    Returns:
        ``(alignment, transcript)``.

    Raises:
        MissingWeights: no Whisper model. BackendUnavailable: faster-whisper or espeak-ng missing.
        ConfigError: espeak-ng has no voice for the language.
    """
    if transcriber is None:
        transcriber = TRANSCRIBERS.create("faster-whisper", model=model)
    a16 = resample(np.asarray(audio, np.float32), sample_rate_hz, 16000)
    transcript = transcriber.transcribe(a16, 16000, language)
    return align_segments(audio, sample_rate_hz, transcript.segments, language or transcript.language), transcript


def try_align_segments(audio: np.ndarray, sample_rate_hz: int, segments: Iterable, language) -> tuple[Alignment | None, str]:
    """:func:`align_segments`, or ``(None, reason)`` when phonemes cannot be had (no espeak voice for
    the language, espeak-ng or librosa missing): the caller then plans with the acoustic model and
    records the reason. ``(alignment, "")`` on success."""
    try:
        return align_segments(audio, sample_rate_hz, segments, language), ""
    except LipdubError as exc:
        return None, str(exc)
