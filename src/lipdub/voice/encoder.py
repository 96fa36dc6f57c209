"""The speaker encoder shared by diarization, voice profiles and the voice-similarity check: the
resemblyzer d-vector model (GE2E, Wan et al. 2018; the weights ship in the Resemblyzer wheel),
loaded once per process."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ..errors import MissingWeights
from ..registry import require_module

_lock = threading.Lock()
_encoder: Any = None


def resemblyzer_module() -> tuple[Any, Path]:
    """The imported ``resemblyzer`` module and the path of its bundled ``pretrained.pt``.

    Raises:
        BackendUnavailable: resemblyzer or torch is not installed.
        MissingWeights: the wheel's ``pretrained.pt`` is missing.
    """
    require_module("torch", "torch")
    module = require_module("resemblyzer", "Resemblyzer")
    weights = Path(module.__file__).resolve().parent / "pretrained.pt"
    if not weights.is_file():
        raise MissingWeights(
            f"resemblyzer encoder weights not found at {weights}",
            "reinstall Resemblyzer (its wheel ships pretrained.pt): pip install --force-reinstall Resemblyzer",
        )
    return module, weights


def voice_encoder() -> Any:
    """The process-wide ``resemblyzer.VoiceEncoder`` on the CPU, in eval mode (created on first use).

    Raises:
        BackendUnavailable / MissingWeights: see :func:`resemblyzer_module`.
    """
    global _encoder
    with _lock:
        if _encoder is None:
            module, weights = resemblyzer_module()
            enc = module.VoiceEncoder(device="cpu", verbose=False, weights_fpath=weights)
            enc.eval()
            _encoder = enc
        return _encoder
