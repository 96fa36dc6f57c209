"""Stage 2 backend ``none``: no separation.

The pipeline then has no M&E stem; the mixer ducks the original audio under the dub instead.
"""

from __future__ import annotations

import numpy as np

from ...contracts.separate import SeparationResult
from ...errors import InputError


class NoSeparator:
    """Returns no stems (``dialogue=None``, ``music_effects=None``); needs nothing installed."""

    name = "none"

    def __init__(self) -> None:
        pass

    @classmethod
    def check(cls) -> str:
        """Always usable."""
        return "no separation (original audio is ducked under the dub)"

    def separate(self, mix: np.ndarray, sample_rate_hz: int) -> SeparationResult:
        """Validate ``mix`` (float32 ``(n_samples, n_channels)``) and return empty stems.

        Raises:
            InputError: ``mix`` is empty.
        """
        if np.asarray(mix).shape[0] == 0:
            raise InputError("separate: the mix is empty", "check the extracted audio")
        return SeparationResult(dialogue=None, music_effects=None, delay_samples=0)
