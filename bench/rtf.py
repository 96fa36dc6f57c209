"""Real-time factor (processing seconds per media second) of each stage and of the whole dub.

    .venv/bin/python bench/rtf.py [CLIP] [--to es]

CLIP defaults to th_latentsync_demo2_video.mp4 from ../shared/testdata (or $LIPDUB_TESTDATA). The
dub runs in a fresh temporary project, then once more unchanged (every stage reused) to show the cost
of a re-run. Also printed: the CPU seconds (user + system, this process and its children) and the load
average before the run: on a shared machine the wall-clock RTF grows with the other jobs' load, the CPU
seconds much less. ``--tts`` / ``--option KEY=VALUE`` set DubConfig fields (e.g. ``--tts espeak-ng``,
``--option voice_search=0``). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from _common import TESTDATA
from lipdub.config import DubConfig
from lipdub.pipeline import dub


def _cpu_s() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip", nargs="?", default=str(TESTDATA / "th_latentsync_demo2_video.mp4"))
    ap.add_argument("--to", default="es")
    ap.add_argument("--separation", default="dfn")
    ap.add_argument("--tts", default="auto")
    ap.add_argument("--option", action="append", default=[], help="KEY=VALUE (JSON value) of DubConfig")
    args = ap.parse_args()
    clip = Path(args.clip)
    extra = {k: json.loads(v) if v[:1] in "0123456789-[{tfn\"" else v for k, v in (o.split("=", 1) for o in args.option)}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = DubConfig(input=clip, targets=args.to.split(","), output=Path(tmp), separation=args.separation, tts=args.tts, **extra)
        load = os.getloadavg()[0]
        t0, c0 = time.monotonic(), _cpu_s()
        result = dub(cfg)
        first_s, first_cpu = time.monotonic() - t0, _cpu_s() - c0
        t0 = time.monotonic()
        dub(cfg)
        rerun_s = time.monotonic() - t0
    media_s = result.stages["ingest"].media_duration_s or 0.0
    print(f"clip: {clip.name}  media duration: {media_s:.2f} s  cores: {os.cpu_count()}  load average before: {load:.1f}  "
          f"tts {args.tts} {extra}")
    print(f"{'stage':<16}{'backend':<16}{'time s':>9}{'RTF':>9}")
    for name, rec in result.stages.items():
        rtf = rec.duration_s / media_s if media_s else float('nan')
        print(f"{name:<16}{(rec.backend or ''):<16}{rec.duration_s:>9.2f}{rtf:>9.3f}")
    print(f"{'whole dub':<32}{first_s:>9.2f}{first_s / media_s:>9.3f}   (wall clock, model loading included)")
    print(f"{'whole dub, CPU s':<32}{first_cpu:>9.2f}{first_cpu / media_s:>9.3f}   (user + system, with child processes)")
    print(f"{'re-run unchanged':<32}{rerun_s:>9.2f}{rerun_s / media_s:>9.3f}   ({100 * rerun_s / first_s:.1f} % of the first run)")


if __name__ == "__main__":
    main()
