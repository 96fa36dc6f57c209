"""Helpers for tests that need media the shared clips do not cover (made with ffmpeg from them)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lipdub.tools import ffmpeg_exe


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-y", "-v", "error", *args], check=True)


def count_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for p in c.demux(c.streams.video[0]) if p.size and p.pts is not None)
