"""Placement of the fitted lines on the dub's timeline: a line that still overruns its slot pushes
the lines after it later (the ripple), so that no two lines are spoken at once unless the source
has them so.

Each line's own fit (:func:`lipdub.timing.fit.fit_speech`) stays inside its slot and the free time
:func:`lipdub.timing.slots.compute_slots` lets it borrow, so two fitted lines never overlap, except
when a line cannot fit even at its speed-up limit: speech is never cut, and what is left is its
``overrun_s``, heard over the next line. The rule (:func:`ripple_starts`), applied in source order:

* a line B must start after every earlier line A it is not spoken over by design: when A's placed
  end plus the silence the source keeps between them (``min(MIN_GAP_S, source gap)``) runs past B's
  start, B starts at A's placed end + :data:`~lipdub.timing.slots.MIN_GAP_S`;
* spoken over by design (:func:`spoken_over_by_design`): A and B are different speakers whose
  source segments overlap (crosstalk): they overlap in the dub as in the source;
* a delayed line uses its own free time after the slot, then its own speed-up left below its limit
  (:func:`squeezed`: the synthesize stage speeds it up further, before it is heard); what still runs
  past is its ``overrun_s``, which may delay the next line in turn.

:func:`place_fits` applies the rule to the fit records of a script, from each line's own fit
(``placed_start_s - delayed_s``), so it gives the same placement however often it runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..contracts.synthesize import PhonemeTiming
from ..script import FitReport, Segment
from .fit import OVERRUN_TOLERANCE_S, RATIO_TOLERANCE, FittedSpeech, Slot, time_stretch
from .slots import MIN_GAP_S


@dataclass(frozen=True)
class LineSpan:
    """One dubbed line for :func:`ripple_starts`, seconds from the start of the source.

    Attributes:
        speaker: its speaker id.
        source_start_s, source_end_s: its source segment.
        start_s: where its own fit places it.
        duration_s: its fitted audio's duration, >= 0.
    """

    speaker: str
    source_start_s: float
    source_end_s: float
    start_s: float
    duration_s: float


def spoken_over_by_design(a: LineSpan, b: LineSpan) -> bool:
    """Whether ``a`` and ``b`` may be heard at once: different speakers whose source segments overlap."""
    return a.speaker != b.speaker and a.source_start_s < b.source_end_s and b.source_start_s < a.source_end_s


def ripple_starts(lines: list[LineSpan]) -> list[float]:
    """Start of each line (input order), seconds, after the ripple of the module docstring.

    Lines are taken in source order (start, end, input index); a line is only ever moved later,
    never earlier, and a line no earlier line runs into keeps ``start_s``. Overlaps of less than
    :data:`~lipdub.timing.fit.OVERRUN_TOLERANCE_S` (sample rounding) are left.
    """
    order = sorted(range(len(lines)), key=lambda i: (lines[i].source_start_s, lines[i].source_end_s, i))
    starts = [ln.start_s for ln in lines]
    done: list[int] = []
    for i in order:
        b, start = lines[i], starts[i]
        for j in sorted(done, key=lambda k: starts[k] + lines[k].duration_s):  # by placed end: one pass settles it
            a = lines[j]
            if spoken_over_by_design(a, b):
                continue
            end_a = starts[j] + a.duration_s
            kept_gap_s = min(MIN_GAP_S, max(0.0, b.source_start_s - a.source_end_s))
            if end_a + kept_gap_s > start + OVERRUN_TOLERANCE_S:
                start = end_a + MIN_GAP_S
        starts[i] = start
        done.append(i)
    return starts


def placed_fit(fit: FitReport, slot: Slot, start_s: float) -> FitReport:
    """``fit`` (a line's own fit, or an earlier placement of it) placed at ``start_s``: ``delayed_s``
    is how much later than its own fit it starts; borrowed time and ``overrun_s`` are measured
    against ``slot`` (its free time after) from the new placement. Unchanged when nothing moves."""
    own_start = fit.placed_start_s - fit.delayed_s
    delayed = start_s - own_start
    if abs(delayed) <= 1e-9 and fit.delayed_s == 0.0:
        return fit
    duration = fit.placed_end_s - fit.placed_start_s
    end = start_s + duration
    overrun = end - (slot.end_s + slot.free_after_s)
    return fit.model_copy(update={
        "placed_start_s": start_s, "placed_end_s": end, "delayed_s": round(max(0.0, delayed), 6),
        "borrowed_before_s": max(0.0, min(slot.start_s - start_s, slot.free_before_s)),
        "borrowed_after_s": min(max(0.0, end - slot.end_s), slot.free_after_s),
        "overrun_s": overrun if overrun > OVERRUN_TOLERANCE_S else 0.0,
    })


def place_fits(segments: list[Segment], language: str, slots: dict[int, Slot]) -> list[int]:
    """Place every fitted line of ``language`` in ``segments`` by :func:`ripple_starts` from its own
    fit, setting ``targets[language].fit`` in place; ``slots`` (:func:`lipdub.timing.slots.compute_slots`,
    keyed by segment id) gives each line's free time. Returns the ids of the delayed lines."""
    fitted = [s for s in segments if language in s.targets and s.targets[language].fit is not None and s.id in slots]
    spans = []
    for s in fitted:
        f = s.targets[language].fit
        spans.append(LineSpan(s.speaker, s.start_s, s.end_s, f.placed_start_s - f.delayed_s, f.placed_end_s - f.placed_start_s))
    delayed = []
    for s, start in zip(fitted, ripple_starts(spans)):
        t = s.targets[language]
        t.fit = placed_fit(t.fit, slots[s.id], start)
        if t.fit.delayed_s > 0 and not math.isclose(t.fit.delayed_s, 0.0, abs_tol=1e-6):
            delayed.append(s.id)
    return delayed


def squeezed(fitted: FittedSpeech, slot: Slot, start_s: float, max_extra: float) -> FittedSpeech:
    """``fitted`` sped up so that, started at ``start_s`` (a delay), it ends by the end of ``slot``
    plus its free time after, by at most ``max_extra`` more (>= 1: the line's speed-up limit over its
    speed-up; rubberband, :func:`~lipdub.timing.fit.time_stretch`, on the fitted audio).

    Its own placement (``placed_start_s``) is kept: :func:`place_fits` moves it; ``placed_end_s``,
    ``stretch_ratio`` (multiplied), the phoneme times, ``borrowed_after_s`` and ``overrun_s`` (at its
    own placement) follow the shorter audio. Returned unchanged
    when it already ends in time or ``max_extra`` leaves nothing.
    """
    room_s = slot.end_s + slot.free_after_s - start_s
    needed = fitted.duration_s / room_s if room_s > 0 else math.inf
    ratio = min(needed, max_extra)
    if ratio <= 1.0 + RATIO_TOLERANCE:
        return fitted
    audio = time_stretch(fitted.samples, fitted.sample_rate_hz, ratio)
    out_s = audio.size / fitted.sample_rate_hz
    phonemes = None if fitted.phonemes is None else [
        PhonemeTiming(start_s=min(p.start_s / ratio, out_s), end_s=min(p.end_s / ratio, out_s), phoneme=p.phoneme) for p in fitted.phonemes]
    end = fitted.placed_start_s + out_s
    overrun = end - (slot.end_s + slot.free_after_s)
    return replace(fitted, samples=audio, placed_end_s=end, stretch_ratio=fitted.stretch_ratio * ratio, phonemes=phonemes,
                   borrowed_after_s=min(max(0.0, end - slot.end_s), slot.free_after_s),
                   overrun_s=overrun if overrun > OVERRUN_TOLERANCE_S else 0.0)
