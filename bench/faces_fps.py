"""Frames per second of the face analysis core (decode + detect + landmarks + tracking).

    .venv/bin/python bench/faces_fps.py [--frames 200]

Makes 720p (720x1280) and 1080p (1080x1920) H.264 versions of the first frames of
th_latentsync_demo2_video.mp4 (a portrait single talking head) from ../shared/testdata (or
$LIPDUB_TESTDATA) with ffmpeg in a temporary directory, then times ``analyze_video`` on them and on the
1080p crowd clip mf_facenet_crowd.mp4 (with max_faces=4 and 8). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

from _common import TESTDATA, scaled_clip

from lipdub.faces.analyze import analyze_video


def _run(label: str, path: Path, **kw) -> None:
    t0 = time.perf_counter()
    a = analyze_video(path, **kw)
    wall_s = time.perf_counter() - t0
    faces = max((len(a.tracks_at(f)) for f in range(a.frame_count)), default=0)
    print(f"{label:<28} {a.width}x{a.height}  {a.frame_count:4d} frames  {a.frame_count / wall_s:6.1f} fps  "
          f"tracks {len(a.tracks):2d}  max faces/frame {faces}  "
          f"detector runs {a.details['detector_runs']}  mesh runs {a.details['mesh_runs']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=200)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    src = TESTDATA / "th_latentsync_demo2_video.mp4"
    print(f"cores: {os.cpu_count()}  (wall-clock fps of analyze_video, decoding included)")
    with tempfile.TemporaryDirectory() as tmp:
        v720 = scaled_clip(src, Path(tmp) / "th_720p.mp4", 720, 1280, args.frames)
        v1080 = scaled_clip(src, Path(tmp) / "th_1080p.mp4", 1080, 1920, args.frames)
        _run("talking head 720p", v720)
        _run("talking head 1080p", v1080)
    _run("crowd 1080p, max_faces=4", TESTDATA / "mf_facenet_crowd.mp4")
    _run("crowd 1080p, max_faces=8", TESTDATA / "mf_facenet_crowd.mp4", max_faces=8)


if __name__ == "__main__":
    main()
