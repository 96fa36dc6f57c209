"""Intelligibility of dubbed speech: each line heard back by Whisper, word error rate against its text.

* :func:`normalize_words`: the text normalization both sides of a WER go through (Unicode NFKC, case
  folding, digits spelled out in the language with ``num2words``, punctuation and symbols removed,
  diacritics removed, apostrophes and hyphens as word breaks). Languages written without spaces
  (Japanese, Chinese, Thai...) are compared character by character, so their "WER" is a character
  error rate.
* :func:`word_error_rate`: (substitutions + deletions + insertions) / reference words, computed by
  ``jiwer`` (Levenshtein alignment of the word sequences).
* :func:`hear_line`: one line transcribed by a loaded faster-whisper model, forced to the line's
  language, plus Whisper's unforced language identification on the same audio (its 30 s window):
  the detected language, its probability, and the probability Whisper gives the expected language.
* :func:`hear_lines`: many lines heard in few Whisper calls: they are packed, with silence between
  them, into windows of at most :data:`BATCH_WINDOW_S` (Whisper encodes a 30 s window whatever the
  audio's length, so one call per line would cost one encoder pass each), transcribed forced to the
  language with word timestamps, and each word is given to the line its midpoint falls in.
* :func:`hear_in_context`: lines heard as the viewer hears them: placed on their timeline, at their
  own times (neighbours overlapping or following closely, as in the dub's dialogue stem; only gaps
  longer than :data:`CONTEXT_GAP_MAX_S` are shortened), transcribed together, each word given to the
  line it belongs to. Whisper decodes a word differently with what is around it: a line heard right
  alone ("aquel control") was heard as "a que el control" in the whole stem.
* :func:`load_whisper`: a faster-whisper model resolved offline (:func:`lipdub.models.resolve_whisper_model`).
* :func:`multilingual`: whether a Whisper model name can transcribe a given language (``*.en`` models
  are English-only).
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from ..audio import resample
from ..errors import ConfigError
from ..mixing import integrated_loudness
from ..models import resolve_whisper_model
from ..registry import require_module
from ..runtime import WHISPER_TEMPERATURE, available_threads, whisper_model

log = logging.getLogger(__name__)

#: Languages written without spaces between words: compared per character.
UNSPACED_LANGUAGES = frozenset({"ja", "zh", "th", "lo", "km", "my", "bo", "yue"})
WHISPER_RATE_HZ = 16000
#: Longest window :func:`hear_lines` packs lines into (Whisper's own window is 30 s).
BATCH_WINDOW_S = 28.0
#: Silence between two lines packed into one window, seconds.
BATCH_GAP_S = 1.0
#: Longest silence :func:`hear_in_context` keeps between two placed lines (and before the first), seconds:
#: a longer pause is heard as a pause, so shortening it changes little and saves Whisper windows.
CONTEXT_GAP_MAX_S = 2.0
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _spell_numbers(text: str, language: str) -> str:
    """Digits to words with num2words in ``language`` (left as they are where it has no such language)."""
    try:
        from num2words import num2words
    except ImportError:  # normalization still works, numbers compare as digits on both sides
        return text

    def spell(m: re.Match) -> str:
        raw = m.group(0)
        value: float | int = int(raw) if raw.isdigit() else float(raw.replace(",", "."))
        try:
            return " " + num2words(value, lang=language) + " "
        except (NotImplementedError, OverflowError, ValueError):
            return raw

    return _NUMBER.sub(spell, text)


def normalize_words(text: str, language: str) -> list[str]:
    """The comparable tokens of ``text`` (see the module docstring).

    Args:
        text: a line or a transcript.
        language: its ISO 639-1 code (number spelling, character tokens for unspaced scripts).

    Returns:
        Lower-case words without punctuation or diacritics; characters for unspaced languages.
    """
    code = language.lower().split("-")[0]
    t = unicodedata.normalize("NFKC", text)
    t = _spell_numbers(t, code).casefold()
    t = unicodedata.normalize("NFKD", t)
    out = []
    for ch in t:
        cat = unicodedata.category(ch)
        if cat == "Mn":  # combining marks (accents); for kana the (han)dakuten, put back by NFC below
            out.append(ch if code in UNSPACED_LANGUAGES else "")
        elif cat[0] in "PSZC" or ch in "'’-":
            out.append(" ")
        else:
            out.append(ch)
    t = unicodedata.normalize("NFC", "".join(out))
    if code in UNSPACED_LANGUAGES:
        return [c for c in t if not c.isspace()]
    return t.split()


def word_error_rate(reference: str, hypothesis: str, language: str) -> float:
    """WER of ``hypothesis`` against ``reference`` after :func:`normalize_words` (jiwer's alignment).

    Returns:
        errors / reference words, >= 0 (above 1 when the hypothesis adds many words). A reference
        with no word gives 0.0 for an empty hypothesis and 1.0 otherwise.

    Raises:
        BackendUnavailable: jiwer is not installed.
    """
    jiwer = require_module("jiwer", "jiwer")
    ref, hyp = normalize_words(reference, language), normalize_words(hypothesis, language)
    if not ref:
        return 0.0 if not hyp else 1.0
    if not hyp:
        return 1.0
    return float(jiwer.wer(" ".join(ref), " ".join(hyp)))


@dataclass
class HeardLine:
    """What Whisper heard in one line.

    Attributes:
        text: the transcript, decoding forced to the expected language.
        language: the expected language (ISO 639-1).
        detected_language: Whisper's unforced language identification (None: not asked, :func:`hear_lines`).
        detected_probability: its probability (None: not asked).
        expected_probability: the probability Whisper gives ``language`` (0 when it is not a Whisper
            language; None: not asked).
        words: ``(start_s, end_s, word)`` of the forced transcript (seconds from the start of the line).
    """

    text: str
    language: str
    detected_language: str | None
    detected_probability: float | None
    expected_probability: float | None
    words: list[tuple[float, float, str]] = field(default_factory=list)

    def wer(self, reference: str) -> float:
        """:func:`word_error_rate` of this transcript against ``reference``."""
        return word_error_rate(reference, self.text, self.language)


def load_whisper(model: str = "base", cpu_threads: int | None = None):
    """The process-wide faster-whisper ``WhisperModel`` (CPU, int8) for ``model`` (name or directory),
    never downloaded; shared with the transcribe stage (:func:`lipdub.runtime.whisper_model`) when
    their threads agree. ``cpu_threads``: None for :func:`lipdub.runtime.available_threads` (the
    cores, unless a video-branch stage runs beside), 0 for CTranslate2's default.

    Raises:
        BackendUnavailable: faster-whisper is not installed.
        MissingWeights: the model is not here (see :func:`lipdub.models.resolve_whisper_model`).
    """
    require_module("faster_whisper", "faster-whisper")
    threads = available_threads() if cpu_threads is None else cpu_threads
    return whisper_model(resolve_whisper_model(model), device="cpu", compute_type="int8", cpu_threads=threads)


def hear_line(model, samples: np.ndarray, sample_rate_hz: int, language: str, *, beam_size: int = 5,
              word_timestamps: bool = False) -> HeardLine:
    """Transcribe one line with a loaded faster-whisper model and identify its language.

    Args:
        model: a ``faster_whisper.WhisperModel`` (:func:`load_whisper`).
        samples: float mono ``(n,)`` speech.
        sample_rate_hz: its rate (resampled to 16 kHz here).
        language: the line's language, ISO 639-1 (decoding is forced to it).
        beam_size: beam width of the decoding.
        word_timestamps: also return word times (Whisper's cross-attention DTW alignment).

    Returns:
        :class:`HeardLine`.

    Raises:
        ConfigError: the audio is not mono or is empty.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise ConfigError(f"a line to transcribe must be non-empty mono audio, got shape {x.shape}", "mix down to mono first")
    if sample_rate_hz != WHISPER_RATE_HZ:
        x = resample(x, sample_rate_hz, WHISPER_RATE_HZ).astype(np.float32)
    code = language.lower().split("-")[0]
    opts = dict(beam_size=beam_size, condition_on_previous_text=False, vad_filter=False, word_timestamps=word_timestamps,
                temperature=WHISPER_TEMPERATURE)
    # one pass: Whisper identifies the language on the first 30 s, then decodes in it; only when it is not
    # the expected one is the audio decoded again, forced (the same as detect_language + a forced pass)
    segments, info = model.transcribe(x, language=None, **opts)
    detected, p_detected = str(info.language), float(info.language_probability)
    all_probs = info.all_language_probs or [(detected, p_detected)]
    expected_p = next((float(p) for lang, p in all_probs if lang == code), 0.0)
    if detected != code:
        segments, _ = model.transcribe(x, language=code, **opts)
    texts, words = [], []
    for seg in segments:
        texts.append(seg.text.strip())
        for w in seg.words or []:
            words.append((float(w.start), float(w.end), w.word.strip()))
    return HeardLine(text=" ".join(t for t in texts if t), language=code, detected_language=str(detected),
                     detected_probability=float(p_detected), expected_probability=expected_p, words=words)


def multilingual(model: str, language: str) -> bool:
    """Whether Whisper model ``model`` (a name or a directory) can transcribe ``language``: the
    ``*.en`` models (``tiny.en``, ``base.en``...) are English-only (openai/whisper README)."""
    name = str(model).rstrip("/").rsplit("/", 1)[-1].lower()
    return language.lower().split("-")[0] == "en" or not (name.endswith(".en") or name.endswith("-en") or ".en-" in name)


def _windows(durations_s: list[float], window_s: float, gap_s: float) -> list[list[int]]:
    """Consecutive line indices packed into windows of at most ``window_s`` (a longer line gets its own)."""
    out: list[list[int]] = []
    used = math.inf
    for i, d in enumerate(durations_s):
        if used + gap_s + d > window_s:
            out.append([])
            used = -gap_s
        out[-1].append(i)
        used += gap_s + d
    return out


def _owner(spans: list[tuple[float, float]], start_s: float, end_s: float) -> int:
    """Index of the line a word ``[start_s, end_s]`` (seconds in the packed window) belongs to: the
    span its end lies in when it overlaps two (Whisper starts a word early, in the silence before it:
    a line's first word, a short "y", was seen spanning the whole 1 s gap and more of the line before
    it than of its own), else the span it overlaps most, else the nearest one."""
    overlaps = [min(end_s, b) - max(start_s, a) for a, b in spans]
    if sum(o > 0 for o in overlaps) > 1:
        inside = [j for j, (a, b) in enumerate(spans) if a < end_s <= b and overlaps[j] > 0]
        if inside:
            return inside[0]
    best = max(range(len(spans)), key=lambda j: overlaps[j])
    if overlaps[best] > 0:
        return best
    mid = (start_s + end_s) / 2
    return min(range(len(spans)), key=lambda j: min(abs(mid - spans[j][0]), abs(mid - spans[j][1])))


def hear_lines(model, clips: list[np.ndarray], sample_rate_hz: int, language: str, *, beam_size: int = 5,
               window_s: float = BATCH_WINDOW_S, gap_s: float = BATCH_GAP_S) -> list[HeardLine]:
    """Transcribe many lines (forced to ``language``) in as few Whisper windows as they fit in.

    Args:
        model: a ``faster_whisper.WhisperModel``.
        clips: float mono ``(n,)`` speech of each line, all at ``sample_rate_hz``.
        sample_rate_hz: their rate (resampled to 16 kHz here).
        language: ISO 639-1 code the decoding is forced to.
        beam_size: beam width.
        window_s / gap_s: longest packed window and the silence between two lines, seconds.

    Returns:
        One :class:`HeardLine` per clip, in order (no language identification: its detected fields
        are None); a word belongs to the line its time span overlaps most (Whisper's word times often
        start a word early, in the silence before it), else to the nearest line.

    Raises:
        ConfigError: a clip that is not non-empty mono audio.
    """
    code = language.lower().split("-")[0]
    xs = []
    for c in clips:
        x = np.asarray(c, dtype=np.float32)
        if x.ndim != 1 or x.size == 0:
            raise ConfigError(f"a line to transcribe must be non-empty mono audio, got shape {x.shape}", "mix down to mono first")
        xs.append(resample(x, sample_rate_hz, WHISPER_RATE_HZ).astype(np.float32) if sample_rate_hz != WHISPER_RATE_HZ else x)
    gap = np.zeros(int(round(gap_s * WHISPER_RATE_HZ)), np.float32)
    words: list[list[tuple[float, float, str]]] = [[] for _ in xs]
    for idx in _windows([x.size / WHISPER_RATE_HZ for x in xs], window_s, gap_s):
        spans, parts, t = [], [], 0.0
        for i in idx:
            parts += [xs[i], gap]
            spans.append((t, t + xs[i].size / WHISPER_RATE_HZ))
            t += (xs[i].size + gap.size) / WHISPER_RATE_HZ
        segments, _ = model.transcribe(np.concatenate(parts), language=code, beam_size=beam_size, condition_on_previous_text=False,
                                       vad_filter=False, word_timestamps=True, temperature=WHISPER_TEMPERATURE)
        for seg in segments:
            for w in seg.words or []:
                k = _owner(spans, float(w.start), float(w.end))
                a = spans[k][0]
                words[idx[k]].append((round(float(w.start) - a, 3), round(float(w.end) - a, 3), w.word.strip()))
    return [HeardLine(text=" ".join(w for _, _, w in ws if w), language=code, detected_language=None, detected_probability=None,
                      expected_probability=None, words=ws) for ws in words]


def _context_timeline(placed: list[tuple[float, np.ndarray]], max_gap_s: float) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The placed clips (16 kHz) summed on one timeline whose gaps longer than ``max_gap_s`` are shortened
    to it (also the silence before the first clip); returns the audio and each clip's span in it, seconds."""
    order = sorted(range(len(placed)), key=lambda i: placed[i][0])
    starts: dict[int, float] = {}
    shift, end = 0.0, None
    for i in order:
        start, x = placed[i]
        lead = start - (end if end is not None else 0.0)
        if end is None:
            shift = start - min(start, max_gap_s)
        elif lead > max_gap_s:
            shift += lead - max_gap_s
        starts[i] = start - shift
        stop = start + x.size / WHISPER_RATE_HZ
        end = stop if end is None else max(end, stop)
    spans = [(starts[i], starts[i] + placed[i][1].size / WHISPER_RATE_HZ) for i in range(len(placed))]
    audio = np.zeros(int(math.ceil(max(b for _, b in spans) * WHISPER_RATE_HZ)) + 1, np.float32)
    for (a, _), (_, x) in zip(spans, placed):
        k = int(round(a * WHISPER_RATE_HZ))
        audio[k:k + x.size] += x[: audio.size - k]
    return audio, spans


def at_loudness(samples: np.ndarray, sample_rate_hz: int, loudness_lufs: float) -> np.ndarray:
    """Float32 mono ``samples`` scaled to integrated loudness ``loudness_lufs`` (BS.1770,
    :func:`lipdub.mixing.integrated_loudness`); returned as they are when their loudness is not
    defined (shorter than BS.1770's 400 ms block, or silent)."""
    level = integrated_loudness(samples, sample_rate_hz)
    if not math.isfinite(level):
        return samples
    return (samples * np.float32(10.0 ** ((loudness_lufs - level) / 20.0))).astype(np.float32)


def hear_in_context(model, placed: list[tuple[float, np.ndarray]], sample_rate_hz: int, language: str, scored: list[int] | None = None,
                    *, beam_size: int = 5, max_gap_s: float = CONTEXT_GAP_MAX_S, loudness_lufs: float | None = None) -> list[HeardLine | None]:
    """Transcribe lines where they are placed, with their neighbours, forced to ``language``.

    Args:
        model: a ``faster_whisper.WhisperModel``.
        placed: ``(placed_start_s, samples)`` per line: float mono ``(n,)`` at ``sample_rate_hz``, the
            start on the dub's timeline in seconds. Overlapping lines are summed, as the mix does.
        sample_rate_hz: their rate (resampled to 16 kHz here).
        language: ISO 639-1 code the decoding is forced to.
        scored: indices of the lines to return a hearing for (None: all); the others are context only.
        beam_size: beam width.
        max_gap_s: longest silence kept between lines (:data:`CONTEXT_GAP_MAX_S`).
        loudness_lufs: the integrated loudness (BS.1770, :func:`lipdub.mixing.integrated_loudness`) the
            timeline is set to before it is heard, LUFS; None: heard at the level given. Whisper hears
            a line differently at another level (a dub's "Hola" heard right as made, "Ula" at the
            6 dB lower level of the mixed stem).

    Returns:
        One :class:`HeardLine` per line of ``scored`` and None for the context lines, in the order of
        ``placed``; a word belongs to the line :func:`_owner` gives it (word times from the line's start).

    Raises:
        ConfigError: no line, or a line that is not non-empty mono audio.
    """
    if not placed:
        raise ConfigError("hear_in_context needs at least one line", "pass the placed lines to hear")
    code = language.lower().split("-")[0]
    clips = []
    for start, c in placed:
        x = np.asarray(c, dtype=np.float32)
        if x.ndim != 1 or x.size == 0:
            raise ConfigError(f"a line to transcribe must be non-empty mono audio, got shape {x.shape}", "mix down to mono first")
        clips.append((float(start), resample(x, sample_rate_hz, WHISPER_RATE_HZ).astype(np.float32) if sample_rate_hz != WHISPER_RATE_HZ else x))
    audio, spans = _context_timeline(clips, max_gap_s)
    if loudness_lufs is not None:
        audio = at_loudness(audio, WHISPER_RATE_HZ, loudness_lufs)
    want = set(range(len(placed)) if scored is None else scored)
    words: list[list[tuple[float, float, str]]] = [[] for _ in placed]
    segments, _ = model.transcribe(audio, language=code, beam_size=beam_size, condition_on_previous_text=False,
                                   vad_filter=False, word_timestamps=True, temperature=WHISPER_TEMPERATURE)
    for seg in segments:
        for w in seg.words or []:
            k = _owner(spans, float(w.start), float(w.end))
            a = spans[k][0]
            words[k].append((round(float(w.start) - a, 3), round(float(w.end) - a, 3), w.word.strip()))
    return [HeardLine(text=" ".join(w for _, _, w in ws if w), language=code, detected_language=None, detected_probability=None,
                      expected_probability=None, words=ws) if i in want else None for i, ws in enumerate(words)]
