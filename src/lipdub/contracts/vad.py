"""Stage 3, vad: speech regions of the analysis audio."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..registry import Registry


@dataclass(frozen=True, order=True)
class SpeechRegion:
    """A span of speech, seconds from the start of the source."""

    start_s: float
    end_s: float


class VoiceActivityDetector(Protocol):
    name: str

    def detect(self, audio: np.ndarray, sample_rate_hz: int) -> list[SpeechRegion]:
        """``audio``: float32 mono ``(n_samples,)``, 16000 Hz in the pipeline. Regions sorted, disjoint."""
        ...


VADS: Registry[VoiceActivityDetector] = Registry("vad")
VADS.register("silero", "lipdub.backends.vad.silero:SileroVad", "silero-vad (weights ship in the package)")
