"""Helpers for tests that need media the shared clips do not cover (made with ffmpeg from them)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from lipdub.faces.analyze import analyze_video, iter_frames
from lipdub.tools import ffmpeg_exe


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-y", "-v", "error", *args], check=True)


def count_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for p in c.demux(c.streams.video[0]) if p.size and p.pts is not None)


def main_track_clip(path: Path):
    """``(frames, track)``: the RGB frames (uint8 ``(T, H, W, 3)``) of the face track of ``path`` on
    screen longest, and that :class:`~lipdub.faces.tracking.FaceTrack` (landmarks, mouth opening)."""
    analysis = analyze_video(path)
    assert analysis.tracks, f"no face found in {path.name}"
    track = max(analysis.tracks, key=lambda t: len(t.frames))
    frames = np.stack([rgb for i, rgb in iter_frames(path) if track.index_of(i) is not None])
    return frames, track
