"""Real-time factor (processing seconds per media second) of each stage and of the whole dub.

    .venv/bin/python bench/rtf.py [CLIP] [--to es]

CLIP defaults to th_latentsync_demo2_video.mp4 from ../shared/testdata (or $LIPDUB_TESTDATA). The
dub runs in a fresh temporary project, then once more unchanged (every stage reused) to show the cost
of a re-run. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import TESTDATA

from lipdub.config import DubConfig
from lipdub.pipeline import dub


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip", nargs="?", default=str(TESTDATA / "th_latentsync_demo2_video.mp4"))
    ap.add_argument("--to", default="es")
    ap.add_argument("--separation", default="dfn")
    args = ap.parse_args()
    clip = Path(args.clip)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = DubConfig(input=clip, targets=args.to.split(","), output=Path(tmp), separation=args.separation)
        t0 = time.monotonic()
        result = dub(cfg)
        first_s = time.monotonic() - t0
        t0 = time.monotonic()
        dub(cfg)
        rerun_s = time.monotonic() - t0
    media_s = result.stages["ingest"].media_duration_s or 0.0
    print(f"clip: {clip.name}  media duration: {media_s:.2f} s  cores: {os.cpu_count()}")
    print(f"{'stage':<16}{'backend':<16}{'time s':>9}{'RTF':>9}")
    for name, rec in result.stages.items():
        rtf = rec.duration_s / media_s if media_s else float('nan')
        print(f"{name:<16}{(rec.backend or ''):<16}{rec.duration_s:>9.2f}{rtf:>9.3f}")
    print(f"{'whole dub':<32}{first_s:>9.2f}{first_s / media_s:>9.3f}   (wall clock, model loading included)")
    print(f"{'re-run unchanged':<32}{rerun_s:>9.2f}{rerun_s / media_s:>9.3f}   ({100 * rerun_s / first_s:.1f} % of the first run)")


if __name__ == "__main__":
    main()
