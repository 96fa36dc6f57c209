"""Closed-loop isochrony: make each dubbed line fit its slot by re-translating shorter or speaking
faster before time-stretching, never cutting speech and never overlapping the next line.

Two checks (the loop professional dubbing adaptation follows: adapt the text first, then the
delivery, and only then the audio):

1. Before synthesis (:func:`estimate_line`): the line's duration is estimated from its syllable count
   (:func:`lipdub.voice.params.count_syllables`) and the speaker's rate (the profile's
   ``syllables_per_s``, else :data:`DEFAULT_SYLLABLES_PER_S`). When it will not fit in the window
   (slot + borrowable free time) at the speed-up limit, a translator that can shorten (``llm``) is
   asked for a shorter version with the window as budget; a rule-based translator cannot, and this
   is reported.
2. After synthesis (:func:`fit_line`): the trimmed duration is measured. ``needed`` = duration /
   window. ``needed <= 1``: placed untouched. ``1 < needed <= limit``: re-synthesized with the TTS
   speaking faster by ``needed`` (the engine's own rate sounds more natural than a time-stretch),
   rubberband takes up the rest. ``needed > limit``: re-translated shorter when the translator can,
   else spoken at the limit and, as a last resort so that nothing is cut or overlaps, stretched past
   it up to :data:`HARD_MAX_SPEEDUP` (reported: the line fails the stretch threshold).

The speed-up limit applies to the effective speed-up ``tts_rate * stretch_ratio / natural_speed``
(:func:`lipdub.script.effective_speedup`), where ``natural_speed`` is the TTS rate at which the voice
speaks the language at its natural rate (:func:`lipdub.voice.params.natural_speed`; 1.0 for a TTS
whose own rate is taken as natural). A line spoken at the voice's default rate where it fits is left
so; one that needs more is sped up to at most ``limit x natural_speed`` in TTS rate. Lines whose
speaker is off-screen (no face track) get :data:`OFFSCREEN_EXTRA_SPEEDUP` more (no lips to follow).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ..contracts.synthesize import Speech
from ..errors import ConfigError
from ..script import FitAttempt, Script, Segment, effective_speedup
from ..voice.params import count_syllables
from .fit import FittedSpeech, Slot, fit_speech, trim_silence
from .slots import MAX_BORROW_BEFORE_S

log = logging.getLogger(__name__)

#: Speaking rate assumed when the speaker has no profile rate (the llm translator's default, see
#: lipdub.backends.translate.llm: below natural rates of 5.2-7.8 syllables/s, Pellegrino et al. 2011).
DEFAULT_SYLLABLES_PER_S = 5.5
#: Extra speed-up allowed for off-screen speakers (no lip-sync to keep).
OFFSCREEN_EXTRA_SPEEDUP = 0.15
#: Largest speed-up ever applied, as a last resort against cutting or overlapping (DubConfig's own
#: upper bound of --max-stretch).
HARD_MAX_SPEEDUP = 2.0
#: Below this ``needed`` ratio the line is not re-synthesized faster (stretching 3 % is inaudible).
RESYNTH_MIN_RATIO = 1.03


@dataclass(frozen=True)
class IsochronyPolicy:
    """Limits for one line.

    Attributes:
        max_speedup: the largest effective speed-up (TTS rate x stretch) that counts as fitting.
        max_attempts: syntheses (and re-translations) allowed per line, >= 1.
        max_tts_rate: the fastest TTS rate used (the backend's own limit may be lower).
        max_borrow_before_s: cap on the free time borrowed before the slot.
        on_screen: whether the speaker is on screen (lip-synced).
    """

    max_speedup: float
    max_attempts: int = 3
    max_tts_rate: float = 1.25
    max_borrow_before_s: float = 0.25
    on_screen: bool = True

    def __post_init__(self) -> None:
        if not 1.0 <= self.max_speedup <= HARD_MAX_SPEEDUP:
            raise ConfigError(f"max speed-up {self.max_speedup} out of range", f"use 1.0 .. {HARD_MAX_SPEEDUP}")
        if self.max_attempts < 1:
            raise ConfigError(f"--max-attempts must be >= 1, got {self.max_attempts}", "use e.g. 3")


def policy_for(on_screen: bool, max_stretch: float, max_attempts: int, max_borrow_before_s: float) -> IsochronyPolicy:
    """The policy of a line: ``max_stretch`` on screen, ``+OFFSCREEN_EXTRA_SPEEDUP`` off screen."""
    extra = 0.0 if on_screen else OFFSCREEN_EXTRA_SPEEDUP
    limit = min(HARD_MAX_SPEEDUP, max_stretch + extra)
    return IsochronyPolicy(max_speedup=limit, max_attempts=max_attempts, max_tts_rate=limit,
                           max_borrow_before_s=max_borrow_before_s, on_screen=on_screen)


def segment_policy(script: Script, segment: Segment, max_stretch: float, max_attempts: int,
                   language: str | None = None) -> IsochronyPolicy:
    """The isochrony limits of ``segment``: on-screen speakers (a face track in ``script``) keep
    ``max_stretch``, off-screen ones get more (:func:`policy_for`); a line with a redo request in
    ``language`` (``--redo-failed``, :mod:`lipdub.qc.redo`) gets that request's limits."""
    spk = script.speaker(segment.speaker)
    policy = policy_for(bool(spk and spk.track is not None), max_stretch, max_attempts, MAX_BORROW_BEFORE_S)
    t = segment.targets.get(language) if language else None
    if t is not None and t.redo is not None:
        policy = replace(policy, max_speedup=t.redo.max_speedup, max_tts_rate=t.redo.max_speedup, max_attempts=t.redo.max_attempts)
    return policy


def window_s(slot: Slot, policy: IsochronyPolicy) -> float:
    """Seconds a line may take: the slot plus the free time after it and before it (capped)."""
    return slot.duration_s + slot.free_after_s + min(slot.free_before_s, policy.max_borrow_before_s)


def estimate_duration_s(text: str, syllables_per_s: float | None, language: str | None = None) -> float:
    """Spoken duration of ``text`` (in ``language``, ISO 639-1, for the syllable rules) at
    ``syllables_per_s`` (default :data:`DEFAULT_SYLLABLES_PER_S`), seconds."""
    rate = syllables_per_s if syllables_per_s and syllables_per_s > 0 else DEFAULT_SYLLABLES_PER_S
    return count_syllables(text, language) / rate


#: ``shorten(too_long_text, budget_s) -> shorter text``: a re-translation request.
Shortener = Callable[[str, float], str]


def estimate_line(text: str, slot: Slot, policy: IsochronyPolicy, syllables_per_s: float | None,
                  shorten: Shortener | None, language: str | None = None) -> tuple[str, list[FitAttempt]]:
    """Pre-synthesis check (step 1 of the module docstring); ``language`` is the text's (ISO 639-1).

    Returns:
        ``(text, estimates)``: the text to synthesize (shortened when the translator could) and one
        :class:`FitAttempt` (stage ``"estimate"``) per check made.
    """
    win = window_s(slot, policy)
    history: list[FitAttempt] = []
    for attempt in range(policy.max_attempts):
        est = estimate_duration_s(text, syllables_per_s, language)
        needed = est / win if win > 0 else math.inf
        entry = FitAttempt(stage="estimate", text=text, duration_s=round(est, 3), window_s=round(win, 3),
                           needed_ratio=round(min(needed, 1e6), 3))
        history.append(entry)
        if needed <= policy.max_speedup:
            entry.action = "fit"
            break
        if shorten is None:
            entry.action = "cannot shorten (rule-based translator)"
            break
        if attempt + 1 >= policy.max_attempts:
            entry.action = "out of attempts"
            break
        entry.action = "re-translate shorter"
        text = shorten(text, round(win, 3))
    return text, history


@dataclass
class LineFit:
    """Result of :func:`fit_line`: the fitted audio, the final text and TTS rate, the speed-up limit
    that applied, every attempt, the voice-match settings of the kept synthesis (None: none) and the
    voice's natural speed."""

    fitted: FittedSpeech
    text: str
    tts_rate: float
    speedup_limit: float
    history: list[FitAttempt] = field(default_factory=list)
    match: dict | None = None
    natural_speed: float = 1.0

    @property
    def speedup(self) -> float:
        """Effective speed-up (:func:`lipdub.script.effective_speedup`)."""
        return effective_speedup(self.tts_rate, self.fitted.stretch_ratio, self.natural_speed)

    @property
    def syntheses(self) -> int:
        """TTS calls this fit made."""
        return sum(1 for h in self.history if h.stage == "synthesis")


def fit_line(text: str, slot: Slot, policy: IsochronyPolicy,
             synthesize: Callable[[str, float], tuple[Speech, dict | None]],
             shorten: Shortener | None, sample_rate_hz: int, max_backend_rate: float = 2.0,
             natural_speed: float = 1.0, start_rate: float = 1.0, min_backend_rate: float = 1.0) -> LineFit:
    """Post-synthesis loop (step 2 of the module docstring).

    Args:
        text: the line to speak.
        slot: its slot.
        policy: its limits.
        synthesize: ``(text, tts_rate) -> (speech, voice_match_settings_or_None)``, the TTS plus voice
            matching (which keeps the duration).
        shorten: re-translation (None: the translator cannot shorten).
        sample_rate_hz: rate of the fitted audio.
        max_backend_rate: the fastest rate the TTS backend accepts (1.0: it has no rate control).
        natural_speed: the TTS rate at which the voice speaks at the language's natural rate (>= 1):
            the limits apply to ``rate x stretch / natural_speed``.
        start_rate: the TTS rate of the first synthesis (a re-synthesis for intelligibility keeps the
            rate that fitted, or a lower one), ``min_backend_rate`` .. ``max_backend_rate``.
        min_backend_rate: the slowest rate the TTS backend accepts (<= 1.0; 1.0: none below normal). Below
            1.0 the speech is longer and the time-stretch takes up the rest: the limits still apply to
            the effective speed-up ``rate x stretch / natural_speed``.

    Returns:
        :class:`LineFit`. Its audio is never cut: when nothing else works it is stretched up to
        :data:`HARD_MAX_SPEEDUP` and any rest is reported as overrun.

    Raises:
        Whatever ``synthesize`` and ``shorten`` raise; StageFailed for silent speech.
    """
    win = window_s(slot, policy)
    nat = max(1.0, float(natural_speed))
    limit_rate = policy.max_speedup * nat  # the limit in TTS-rate units
    history: list[FitAttempt] = []
    max_rate = max(1.0, min(policy.max_tts_rate * nat, max_backend_rate))
    rate = min(max(min(1.0, float(min_backend_rate)), float(start_rate)), max_rate)
    attempt = 0
    while True:
        attempt += 1
        speech, match = synthesize(text, rate)
        trimmed, _ = trim_silence(np.asarray(speech.samples, dtype=np.float32), speech.sample_rate_hz)
        dur = trimmed.size / speech.sample_rate_hz
        needed = dur / win if win > 0 else math.inf
        entry = FitAttempt(stage="synthesis", text=text, duration_s=round(dur, 3), window_s=round(win, 3),
                           needed_ratio=round(min(needed, 1e6), 3), tts_rate=round(rate, 3))
        history.append(entry)
        speedup_left = limit_rate / rate
        last = attempt >= policy.max_attempts
        # within the limit: speak faster when the TTS still can (it sounds better than stretching), else stretch
        if needed <= 1.0 or (needed <= speedup_left and (needed < RESYNTH_MIN_RATIO or rate >= max_rate - 1e-3 or last)):
            entry.action = "fit"
            limit = speedup_left
            break
        if needed <= speedup_left and not last:
            entry.action = "re-synthesize faster"
            rate = min(max_rate, rate * needed)
            continue
        # does not fit at the limit
        if shorten is not None and not last:
            entry.action = "re-translate shorter"
            text = shorten(text, round(win, 3))
            rate = 1.0
            continue
        if rate < max_rate - 1e-3 and not last:
            entry.action = "re-synthesize faster"
            rate = max_rate
            continue
        entry.action = "out of attempts: stretched past the limit" if needed > speedup_left else "fit"
        limit = max(speedup_left, min(needed, HARD_MAX_SPEEDUP * nat / rate, HARD_MAX_SPEEDUP))
        break
    fitted = fit_speech(speech, slot, max_stretch=max(1.0, limit), sample_rate_hz=sample_rate_hz,
                        max_borrow_before_s=policy.max_borrow_before_s)
    return LineFit(fitted=fitted, text=text, tts_rate=rate, speedup_limit=policy.max_speedup, history=history, match=match,
                   natural_speed=nat)
