"""Frames per second of the lip-sync compositor (align + piecewise-affine warp + colour + blend).

    .venv/bin/python bench/compositor_fps.py [--frames 100] [--poisson]

Makes 720p (720x1280) and 1080p (1080x1920) H.264 versions of the first frames of
th_latentsync_demo2_video.mp4 (a portrait single talking head) from ../shared/testdata (or
$LIPDUB_TESTDATA) with ffmpeg in a temporary directory, measures the landmarks with ``analyze_video``
(not timed), then times ``Compositor.composite`` for every frame with a donor taken from another
part of the same clip (frame ``(i + N/2) mod N``: a different mouth and a slightly different pose),
as the retrieval backend does. Only the compositor is timed (decoding and landmarks are not). Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import TESTDATA, scaled_clip

from lipdub.faces.analyze import analyze_video, iter_frames
from lipdub.lipsync.compositor import Compositor


def _run(label: str, path: Path, poisson: bool) -> None:
    analysis = analyze_video(path)
    track = max(analysis.tracks, key=lambda t: len(t.frames))
    frames = {i: rgb for i, rgb in iter_frames(path) if track.index_of(i) is not None}
    rows = [r for r in range(len(track.frames)) if not track.skip[r]]
    n = len(rows)
    comp = Compositor(poisson=poisson)
    times = []
    for j, r in enumerate(rows):
        d = rows[(j + n // 2) % n]
        target = frames[int(track.frames[r])]
        donor = frames[int(track.frames[d])]
        t0 = time.perf_counter()
        comp.composite(target, track.landmarks[r], donor, track.landmarks[d], key=track.id)
        times.append(time.perf_counter() - t0)
    t = np.array(times[1:] or times)  # the first call imports scipy's Delaunay
    iod = float(np.median(np.linalg.norm(track.landmarks[:, 263, :2] - track.landmarks[:, 33, :2], axis=1)))
    x0, y0, x1, y1 = comp.last.box
    print(f"{label:<22} {analysis.width}x{analysis.height}  {n:4d} frames  inter-ocular {iod:5.0f} px  "
          f"crop {x1 - x0}x{y1 - y0}  {1.0 / t.mean():6.1f} fps (mean {t.mean() * 1e3:5.1f} ms, "
          f"p95 {np.percentile(t, 95) * 1e3:5.1f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--poisson", action="store_true", help="also time Poisson blending")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    src = TESTDATA / "th_latentsync_demo2_video.mp4"
    print(f"cores: {os.cpu_count()}  (wall-clock time of Compositor.composite per face, one thread of Python)")
    with tempfile.TemporaryDirectory() as tmp:
        v720 = scaled_clip(src, Path(tmp) / "th_720p.mp4", 720, 1280, args.frames)
        v1080 = scaled_clip(src, Path(tmp) / "th_1080p.mp4", 1080, 1920, args.frames)
        for poisson in ([False, True] if args.poisson else [False]):
            tag = " poisson" if poisson else ""
            _run("talking head 720p" + tag, v720, poisson)
            _run("talking head 1080p" + tag, v1080, poisson)
        _run("th2 700x700", TESTDATA / "th2_retalking_face1.mp4", False)


if __name__ == "__main__":
    main()
