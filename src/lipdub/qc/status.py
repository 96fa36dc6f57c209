"""``lipdub doctor`` rows of the quality report's optional parts."""

from __future__ import annotations

import importlib.util

from ..errors import LipdubError
from ..registry import BackendStatus
from .visual import vmaf_ffmpeg


def qc_status() -> list:
    """``lipdub doctor`` rows of the quality report's optional parts: VMAF (an FFmpeg with libvmaf),
    SyncNet scoring (torch + python_speech_features; the weights are the user's), the plots (matplotlib)
    and SSIM / PSNR (scikit-image)."""
    rows = []
    try:
        rows.append(BackendStatus("qc", "vmaf", True, vmaf_ffmpeg()))
    except LipdubError as exc:
        rows.append(BackendStatus("qc", "vmaf", False, str(exc)))
    for name, mods, hint in (("syncnet", ("torch", "python_speech_features"), "pip install python_speech_features; pass --syncnet syncnet_v2.model"),
                             ("plots", ("matplotlib",), "pip install 'lipdub[qc]'"),
                             ("ssim/psnr", ("skimage",), "pip install 'lipdub[qc]'")):
        missing = [m for m in mods if importlib.util.find_spec(m) is None]
        rows.append(BackendStatus("qc", name, not missing, f"missing {', '.join(missing)}: {hint}" if missing else "installed"))
    return rows
