"""A long-form run: a 10-minute 1080p25 episode dubbed end to end, with its peak memory and RTF.

    .venv/bin/python bench/longform.py [--minutes 10] [--size 1920x1080] [--to es] [--keep DIR]

The episode is built from the English talking-head clips of ../shared/testdata (or $LIPDUB_TESTDATA)
by ``_common.episode`` (scaled, pillar-boxed, concatenated with their speech, repeated to the length),
then dubbed with the defaults (source language given as English: the clips are English), report
included. A thread samples the process's resident memory (``/proc/self/statm``) every 0.2 s; printed:
each stage's time, RTF and the peak RSS while it ran (also as each stage finishes), the whole run's
wall-clock and CPU time and RTF, the process's peak RSS (``ru_maxrss``) and its child processes'
(ffmpeg, VMAF), and the load average.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

from _common import episode
from lipdub.config import DubConfig
from lipdub.pipeline import PipelineHooks, dub

PAGE = os.sysconf("SC_PAGE_SIZE")


class MemoryHooks(PipelineHooks):
    """Peak RSS (MB) while each stage ran, from a sampling thread."""

    def __init__(self) -> None:
        self.running: dict[str, float] = {}
        self.peaks: dict[str, float] = {}
        self.stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self.stop.is_set():
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * PAGE / 2**20
            for s in list(self.running):
                self.running[s] = max(self.running[s], rss)
            time.sleep(0.2)

    def stage_started(self, stage, total=None):
        self.running[stage] = 0.0

    def stage_finished(self, stage, record, skipped):
        self.peaks[stage] = self.running.pop(stage, 0.0)
        if not skipped:  # as it happens, so a run stopped early still tells what it measured
            print(f"{time.strftime('%H:%M:%S')} {stage}: {record.duration_s:.1f} s, peak RSS {self.peaks[stage]:.0f} MB, "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--to", default="es")
    ap.add_argument("--keep", type=Path, default=None, help="build / keep the episode and the dub here")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        src = root / f"episode_{args.minutes:g}min_{h}p.mp4"
        if not src.exists():
            t0 = time.monotonic()
            episode(src, args.minutes * 60, w, h)
            print(f"episode built in {time.monotonic() - t0:.0f} s: {src}")
        hooks = MemoryHooks()
        cfg = DubConfig(input=src, targets=args.to.split(","), output=root / "out", source_language="en")
        load0 = os.getloadavg()[0]
        t0 = time.monotonic()
        result = dub(cfg, hooks)
        wall = time.monotonic() - t0
        hooks.stop.set()
        media_s = result.stages["ingest"].media_duration_s or args.minutes * 60
        print(f"episode: {args.minutes:g} min {w}x{h} 25 fps  cores: {os.cpu_count()}  load average at start {load0:.1f}, "
              f"at end {os.getloadavg()[0]:.1f}")
        print(f"{'stage':<16}{'time s':>9}{'RTF':>8}{'peak RSS MB':>13}")
        for name, rec in result.stages.items():
            print(f"{name:<16}{rec.duration_s:>9.1f}{rec.duration_s / media_s:>8.3f}{hooks.peaks.get(name, float('nan')):>13.0f}")
        cpu = sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))
        print(f"CPU time (this process and its children, user + system): {cpu:.0f} s")
        me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"whole dub: {wall:.0f} s wall, RTF {wall / media_s:.2f} (stages overlap: the video branch runs beside the audio branch)")
        print(f"peak RSS: this process {me:.0f} MB, largest child process {kids:.0f} MB")
        first = args.to.split(",")[0]
        print(f"verdict of the report: {result.stages['report:' + first].details.get('verdict')}")


if __name__ == "__main__":
    main()
