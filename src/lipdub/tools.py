"""External programs lipdub drives: FFmpeg (muxing, encoding), and how every child process is run.

Children die with lipdub: each one is started in lipdub's process group (so ``kill -- -PGID`` ends
them all) and, on Linux, with ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` set between fork and exec, so that
even ``kill -9`` of lipdub alone kills its ffmpeg (issue 16: it kept running). See prctl(2).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
from functools import lru_cache
from typing import Any, Callable

from .errors import BackendUnavailable, StageFailed


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: ``$LIPDUB_FFMPEG``, then ``ffmpeg`` on PATH, then imageio-ffmpeg's.

    Raises:
        BackendUnavailable: none found.
    """
    env = os.environ.get("LIPDUB_FFMPEG")
    if env:
        return env
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:
        raise BackendUnavailable("ffmpeg was not found", "apt-get install ffmpeg (or pip install imageio-ffmpeg)") from exc


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None  # looked up before any fork


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive SIGKILL when this process dies (Linux
    ``PR_SET_PDEATHSIG``, kept across exec), exiting at once if it already has; None elsewhere."""
    if _PRCTL is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # lipdub died between fork and prctl
            os._exit(1)

    return preexec


def run_child(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, **kwargs)`` for a child that dies with lipdub (:func:`die_with_parent`,
    same process group); every external program lipdub runs goes through here."""
    return subprocess.run(cmd, preexec_fn=die_with_parent(), **kwargs)


def run_ffmpeg(args: list[str], what: str) -> None:
    """Run ``ffmpeg -nostdin -y -v error ARGS``.

    Raises:
        StageFailed: ffmpeg exited non-zero; the message carries its last error line.
    """
    cmd = [ffmpeg_exe(), "-nostdin", "-y", "-hide_banner", "-v", "error", *args]
    proc = run_child(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise StageFailed(f"ffmpeg failed while {what}: {last}", "run with --debug to see the full command")
