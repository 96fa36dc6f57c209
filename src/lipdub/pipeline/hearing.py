"""The intelligibility loop of the synthesize stage (DESIGN.md section 1, stage 8): every fitted line
is heard back by Whisper and re-synthesized when misheard.

The model is the transcribe backend's: faster-whisper with the run's ``--asr-model``, loaded once per
run (:func:`hearing_for`), decoding forced to the target language. The lines of a batch are heard
together as the viewer hears them (:func:`lipdub.qc.intelligibility.hear_in_context`: placed at their
times on the dub's timeline, overlapping or following each other as in the dialogue stem, after the
previous batch's last line): Whisper decodes a word with what is around it, and a line heard right
alone was heard wrong in the whole stem (th_retalking_face5: "aquel control" as "a que el control"). A
line whose word error rate against its text is above :attr:`Hearing.threshold` (the ``line_wer``
pass limit of :class:`lipdub.qc.thresholds.Thresholds`) is re-synthesized with the next remedy of
:data:`REMEDIES` that applies (:func:`next_remedy`), as long as the line's syntheses stay within
``--max-attempts``; of all its versions the one kept is the best heard (:func:`best_candidate`). A line
still misheard is kept and flagged (``FitReport.hearing.flagged``), never dropped.

The remedy is chosen by what was misheard (:func:`diagnose`): a line "mostly heard" (one or a few
words wrong) is said more slowly, then with a pause before the misheard word (:func:`word_pause_text`),
then with the other voice, then split (:data:`MOSTLY_HEARD_REMEDIES`); a "garbled" line (most words
wrong: the voice or the whole delivery fails) tries the other voice first (:data:`REMEDIES`).
"""

from __future__ import annotations

import logging
import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..contracts.synthesize import PhonemeTiming, Speech
from ..errors import ConfigError
from ..qc.intelligibility import HeardLine, load_whisper, multilingual, normalize_words
from ..qc.thresholds import Thresholds
from ..timing.isochrony import LineFit
from .context import PipelineContext

log = logging.getLogger(__name__)

#: Re-syntheses for a garbled line (:func:`diagnose`), in the order they are tried: the speaker's
#: fallback stock voice (an adapted voice can garble what the stock pack says clearly), each phrase
#: spoken on its own, and a lower TTS rate (Kokoro's WER grows with its speed: 0.00 / 0.07 / 0.44 at
#: 1.0 / 1.5 / 1.75, bench/tts_intelligibility.py), the time-stretch taking up the rest.
REMEDIES = ("other voice", "phrase split", "lower speed")
#: Re-syntheses for a mostly heard line, in order: the voice is understood and one or a few words are
#: not, so first the same voice more slowly, then with a pause before the misheard word, and only then
#: the other voice and the split. Against the garbled order for every line (bench/dub_intelligibility.py,
#: one run each, README "Voices and intelligibility"): whole-dub WER th_retalking_face5 0.25 -> 0.00
#: ("aquel control" heard right at TTS rate 0.8), sp_en_2spk_pyannote_sample 0.18 -> 0.18 (one line
#: fewer flagged), th2_retalking_face1 and th_voxceleb_pcavs_00086 0.00 (nothing misheard).
MOSTLY_HEARD_REMEDIES = ("lower speed", "word pause", "other voice", "phrase split")
#: A misheard line is "mostly heard" when at least this share of its words were heard right (aligned,
#: :func:`diagnose`): half or more right says the voice and the delivery carry and the error is local
#: (a share, not fitted to a clip: two words with one heard right is mostly heard, three with one is garbled).
MOSTLY_HEARD_SHARE = 0.5
#: How the lines are heard (part of a heard line's cache key): "in context" (:func:`lipdub.qc.intelligibility.hear_in_context`).
HEARD_IN = "in context"
#: A mono dialogue heard at the programme's loudness target: the dub's dialogue stem is set near the
#: target (measured -24.0 / -23.9 / -24.0 / -24.2 LUFS at -24 on the four issue-14 clips) and is
#: stereo with two equal channels, which BS.1770 measures 10 log10(2) = 3.01 LU louder than one of them.
STEREO_TO_MONO_LU = 10.0 * math.log10(2.0)
#: "lower speed" divides the TTS rate by this, down to the backend's ``min_rate`` (below 1.0 where the
#: TTS can speak slower, Kokoro 0.5; the time-stretch then takes up the rest within the line's limit).
LOWER_SPEED_FACTOR = 1.25
#: Silence between two phrases of a split line, seconds.
PHRASE_PAUSE_S = 0.12
_PHRASE_END = re.compile(r"(?<=[,;:.!?…])\s+")
_PUNCT = ",;:.!?…¿¡\"'«»()—–-"


@dataclass
class Hearing:
    """The loaded ASR model of a run and the WER above which a line is re-synthesized."""

    model: Any
    model_name: str
    language: str
    threshold: float
    loudness_lufs: float | None = None  # the level a line is heard at (:func:`heard_loudness_lufs`); None: as made

    @property
    def key(self) -> tuple:
        """What a line's speech depends on (its cache key)."""
        return (self.model_name, self.threshold)


def hearing_for(ctx: PipelineContext) -> tuple[Hearing | None, str]:
    """The run's hearing (None: not checked) and a note for the stage record.

    Raises:
        ConfigError: ``check_intelligibility`` True with an English-only model and another target language.
        BackendUnavailable / MissingWeights: faster-whisper or the model is missing (not with ``--no-check-intelligibility``).
    """
    cfg, code = ctx.config, ctx.language.code
    if cfg.check_intelligibility is False:
        return None, "off (--no-check-intelligibility)"
    if not multilingual(cfg.asr_model, code):
        note = f"not checked: --asr-model {cfg.asr_model} is English-only and the dub is in {code}"
        if cfg.check_intelligibility:
            raise ConfigError(note, "use a multilingual Whisper model (--asr-model base) or drop --check-intelligibility")
        log.warning("intelligibility %s", note)
        return None, note
    if cfg.asr_model not in ctx.caches.whisper:
        ctx.caches.whisper[cfg.asr_model] = load_whisper(cfg.asr_model)
    threshold = Thresholds().line_wer.pass_at
    level = heard_loudness_lufs(cfg.loudness().target_lufs)
    return (Hearing(ctx.caches.whisper[cfg.asr_model], cfg.asr_model, code, threshold, level),
            f"faster-whisper {cfg.asr_model}, WER <= {threshold:g}, lines heard in context at {level:.1f} LUFS")


def heard_loudness_lufs(target_lufs: float) -> float:
    """The loudness (LUFS, mono) the lines are heard at: the level of the mono dialogue in a dub mixed
    to ``target_lufs`` (:data:`STEREO_TO_MONO_LU` below it), what a viewer of the dub hears."""
    return target_lufs - STEREO_TO_MONO_LU


@dataclass
class Candidate:
    """One fitted version of a line: the fit, the voice and remedies it was made with, and what was heard."""

    line: LineFit
    voice: str | None
    remedies: tuple[str, ...] = ()
    split: bool = False
    heard: HeardLine | None = None
    wer: float | None = None
    extra: dict = field(default_factory=dict)
    spoken: str | None = None  # the text the TTS was given, when not the line's own (a word pause); None: the line's text

    @property
    def over_limit(self) -> bool:
        return self.line.speedup > self.line.speedup_limit + 1e-3


def split_phrases(text: str) -> list[str]:
    """``text`` cut after each comma, semicolon, colon or sentence end (the phrases a split line speaks)."""
    return [p for p in (x.strip() for x in _PHRASE_END.split(text.strip())) if p]


def join_speech(parts: list[Speech], pause_s: float = PHRASE_PAUSE_S) -> Speech:
    """The speeches one after the other with ``pause_s`` of silence between them (phoneme times shifted).

    Raises:
        ConfigError: no parts, or parts at different sample rates.
    """
    if not parts or len({p.sample_rate_hz for p in parts}) != 1:
        raise ConfigError("join_speech needs speeches at one sample rate", "synthesize every phrase with the same TTS")
    sr = parts[0].sample_rate_hz
    gap = np.zeros(int(round(pause_s * sr)), np.float32)
    samples, phonemes, offset = [], [], 0.0
    has_phonemes = all(p.phonemes is not None for p in parts)
    for i, p in enumerate(parts):
        if i:
            samples.append(gap)
            offset += gap.size / sr
        samples.append(np.asarray(p.samples, np.float32))
        if has_phonemes:
            phonemes += [PhonemeTiming(round(ph.start_s + offset, 4), round(ph.end_s + offset, 4), ph.phoneme) for ph in p.phonemes]
        offset += p.samples.size / sr
    return Speech(np.concatenate(samples), sr, phonemes if has_phonemes else None, parts[0].voice)


@dataclass(frozen=True)
class Diagnosis:
    """What was misheard of a line (:func:`diagnose`).

    Attributes:
        kind: ``"mostly heard"`` (at least :data:`MOSTLY_HEARD_SHARE` of its words heard right) or ``"garbled"``.
        words: the line's words (:func:`~lipdub.qc.intelligibility.normalize_words`).
        heard_right: how many of them the transcript has, aligned in order.
        misheard: the indices, in ``text.split()``, of the line's whitespace tokens with a word not heard right.
    """

    kind: str
    words: int
    heard_right: int
    misheard: tuple[int, ...] = ()

    @property
    def remedies(self) -> tuple[str, ...]:
        """The remedies to try, in order: :data:`MOSTLY_HEARD_REMEDIES` or :data:`REMEDIES`."""
        return MOSTLY_HEARD_REMEDIES if self.kind == "mostly heard" else REMEDIES

    def describe(self, text: str) -> str:
        """For the fit history: ``mostly heard (3/4 words; misheard: "aquel")``."""
        tokens = text.split()
        wrong = ", ".join(f'"{tokens[i].strip(_PUNCT)}"' for i in self.misheard[:3]) + (", ..." if len(self.misheard) > 3 else "")
        return f"{self.kind} ({self.heard_right}/{self.words} words" + (f"; misheard: {wrong})" if wrong else ")")


def diagnose(text: str, heard: str, language: str) -> Diagnosis:
    """Align the words of ``heard`` (the transcript) with those of ``text`` (the line) and say how
    much was heard right.

    Both are normalized per whitespace token (:func:`~lipdub.qc.intelligibility.normalize_words`: case,
    accents, punctuation, numbers spelled out) and aligned with :class:`difflib.SequenceMatcher` (the
    longest matching runs in order, as a WER alignment's hits). A line with no word is garbled.
    """
    owner, words = [], []  # per normalized word of the line: the token it came from
    for i, tok in enumerate(text.split()):
        for w in normalize_words(tok, language):
            owner.append(i)
            words.append(w)
    sm = difflib.SequenceMatcher(None, words, normalize_words(heard, language), autojunk=False)
    right = [False] * len(words)
    for a, _, n in sm.get_matching_blocks():
        right[a:a + n] = [True] * n
    hits = sum(right)
    misheard = tuple(sorted({owner[k] for k, ok in enumerate(right) if not ok}))
    mostly = bool(words) and hits > 0 and hits >= MOSTLY_HEARD_SHARE * len(words)
    return Diagnosis("mostly heard" if mostly else "garbled", len(words), hits, misheard)


def word_pause_text(text: str, diagnosis: Diagnosis) -> str | None:
    """``text`` with a comma after the token before the first misheard word that has no pause yet, so
    that the TTS separates the word (``"dijo aquel control"`` -> ``"dijo, aquel control"``); only what
    is spoken changes, the line (subtitles, WER) keeps ``text``. None: no such word (only the first
    word misheard, or each misheard word already follows a pause)."""
    tokens = text.split()
    for i in diagnosis.misheard:
        if 0 < i < len(tokens) and tokens[i - 1][-1] not in _PUNCT:
            return " ".join([*tokens[:i - 1], tokens[i - 1] + ",", *tokens[i:]])
    return None


def lower_rate(rate: float, min_rate: float = 1.0) -> float:
    """The TTS rate of a "lower speed" re-synthesis: ``rate`` / :data:`LOWER_SPEED_FACTOR`, not below
    ``min_rate`` (the backend's slowest, :attr:`~lipdub.contracts.synthesize.TextToSpeech.min_rate`)."""
    return max(min_rate, rate / LOWER_SPEED_FACTOR)


def has_room(c: Candidate) -> bool:
    """Whether ``c``'s line has room to be said :data:`LOWER_SPEED_FACTOR` times longer (a lower
    speed, a word pause) and still fit within its speed-up limit: ``speedup x LOWER_SPEED_FACTOR <=
    speedup_limit``. A line near its limit has none: made longer, it overruns its slot and delays the
    next line (tests/test_hard_cut.py's middle line, speed-up 1.23 of 1.25: said at rate 0.8 and with a
    pause it overran by 0.13 s, and the lip sync of the shot after the cut fell from above 0.3 to -0.13)."""
    return c.line.speedup * LOWER_SPEED_FACTOR <= c.line.speedup_limit + 1e-6


def slowest_rate(c: Candidate, min_rate: float = 1.0) -> float:
    """The slowest TTS rate a "lower speed" re-synthesis of ``c`` may use: the backend's ``min_rate``
    where the line has room (:func:`has_room`), else not below 1.0 (the rate it could always use)."""
    return min_rate if has_room(c) else max(1.0, min_rate)


def next_remedy(c: Candidate, fallback_voice: str | None, diagnosis: Diagnosis | None = None, min_rate: float = 1.0) -> str | None:
    """The first remedy of ``diagnosis.remedies`` (:data:`REMEDIES` when None) that ``c`` has not had
    and that applies to it: another voice only when the speaker has a fallback voice it is not already
    using, a phrase split only for a line of two phrases or more, a lower speed only above ``min_rate``
    (the backend's slowest TTS rate), a word pause only where :func:`word_pause_text` finds a place
    and the line has room for it (:func:`has_room`).
    None: nothing left."""
    for r in (diagnosis.remedies if diagnosis is not None else REMEDIES):
        if r in c.remedies:
            continue
        if r == "other voice" and (fallback_voice is None or c.voice == fallback_voice):
            continue
        if r == "phrase split" and len(split_phrases(c.spoken or c.line.text)) < 2:
            continue
        if r == "lower speed" and c.line.tts_rate <= min_rate + 1e-3:
            continue
        if r == "word pause" and (diagnosis is None or not has_room(c) or word_pause_text(c.line.text, diagnosis) is None):
            continue
        return r
    return None


def best_candidate(cands: list[Candidate], threshold: float) -> Candidate:
    """The version to keep: understood (WER within ``threshold``) before misheard, then within its
    speed-up limit before over it, then the lowest WER, then the earliest."""
    def key(ic):
        i, c = ic
        wer = c.wer if c.wer is not None else 0.0
        return (wer > threshold + 1e-9, c.over_limit, round(wer, 4), i)

    return min(enumerate(cands), key=key)[1]
