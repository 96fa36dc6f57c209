"""The subtitle cue."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cue:
    """One subtitle: ``text`` shown from ``start_s`` to ``end_s`` (seconds); lines are separated
    by ``"\\n"``."""

    start_s: float
    end_s: float
    text: str
