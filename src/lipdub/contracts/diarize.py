"""Stage 4, diarize: who speaks when, and how many speakers there are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..registry import Registry
from .vad import SpeechRegion


@dataclass(frozen=True, order=True)
class SpeakerTurn:
    """One speaker turn: ``speaker`` (``"SPEAKER_00"``, ...) speaks from ``start_s`` to ``end_s``."""

    start_s: float
    end_s: float
    speaker: str


class Diarizer(Protocol):
    name: str

    def diarize(
        self,
        audio: np.ndarray,
        sample_rate_hz: int,
        regions: list[SpeechRegion],
        num_speakers: int | None = None,
    ) -> list[SpeakerTurn]:
        """``audio``: float32 mono 16 kHz. ``num_speakers`` None = estimate the count.

        Returns turns sorted by start; labels ``SPEAKER_00``.. numbered by first appearance.
        """
        ...


DIARIZERS: Registry[Diarizer] = Registry("diarize")
DIARIZERS.register("resemblyzer", "lipdub.backends.diarize.resemblyzer:ResemblyzerDiarizer", "resemblyzer d-vectors + agglomerative clustering")
