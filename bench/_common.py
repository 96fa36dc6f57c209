"""Shared by the bench scripts: where the test clips are, and scaled copies of a clip."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lipdub.tools import ffmpeg_exe

TESTDATA = Path(os.environ.get("LIPDUB_TESTDATA", Path(__file__).resolve().parents[2] / "shared" / "testdata"))


def scaled_clip(src: Path, dst: Path, width: int, height: int, frames: int, *, crf: int = 20, audio: bool = False) -> Path:
    """The first ``frames`` frames of ``src`` scaled to ``width`` x ``height`` (H.264 veryfast at ``crf``;
    AAC audio kept when ``audio``) written to ``dst``."""
    audio_args = ["-c:a", "aac"] if audio else ["-an"]
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-y", "-v", "error", "-i", str(src), "-frames:v", str(frames),
         "-vf", f"scale={width}:{height}", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), *audio_args, str(dst)],
        check=True,
    )
    return dst
