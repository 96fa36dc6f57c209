"""External programs lipdub drives: FFmpeg (muxing, encoding)."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache

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


def run_ffmpeg(args: list[str], what: str) -> None:
    """Run ``ffmpeg -nostdin -y -v error ARGS``.

    Raises:
        StageFailed: ffmpeg exited non-zero; the message carries its last error line.
    """
    cmd = [ffmpeg_exe(), "-nostdin", "-y", "-hide_banner", "-v", "error", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise StageFailed(f"ffmpeg failed while {what}: {last}", "run with --debug to see the full command")
