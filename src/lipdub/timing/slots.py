"""Slots of the dubbed lines: the time each line may take, and the free time it may borrow."""

from __future__ import annotations

from ..script import Segment
from .fit import Slot

MIN_GAP_S = 0.08  # silence kept between two dubbed lines
MAX_BORROW_BEFORE_S = 0.25  # how early a line may start before its source slot


def compute_slots(segments: list[Segment], duration_s: float) -> dict[int, Slot]:
    """Slot of each segment with the free time it may borrow, keyed by segment id.

    The silence between two consecutive lines is shared so that no two fitted lines can overlap
    whatever each one borrows: the later line may start up to ``min(MAX_BORROW_BEFORE_S, gap/2)``
    early, the earlier one may run on into the rest, and ``MIN_GAP_S`` always stays silent. The last
    line may run on to 0.05 s before the end of the media (``duration_s``). A line that overruns
    even this (at its speed-up limit) delays the next ones: :mod:`lipdub.timing.placement`.
    """
    order = sorted(segments, key=lambda s: (s.start_s, s.id))
    slots = {}
    for i, seg in enumerate(order):
        prev_end = order[i - 1].end_s if i > 0 else 0.0
        gap_before = max(0.0, seg.start_s - prev_end)
        before = min(MAX_BORROW_BEFORE_S, max(0.0, gap_before / 2 - MIN_GAP_S / 2)) if i > 0 else min(MAX_BORROW_BEFORE_S, gap_before)
        if i + 1 < len(order):
            nxt = order[i + 1]
            gap_after = max(0.0, nxt.start_s - seg.end_s)
            next_before = min(MAX_BORROW_BEFORE_S, max(0.0, gap_after / 2 - MIN_GAP_S / 2))
            after = max(0.0, gap_after - next_before - MIN_GAP_S)
        else:
            after = max(0.0, duration_s - seg.end_s - 0.05)
        slots[seg.id] = Slot(start_s=seg.start_s, end_s=seg.end_s, free_before_s=round(before, 4), free_after_s=round(after, 4))
    return slots
