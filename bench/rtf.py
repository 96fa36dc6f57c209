"""Real-time factor (processing seconds per media second) of each stage and of the whole dub.

    .venv/bin/python bench/rtf.py [CLIP ...] [--to es] [--from en] [--separation dfn] [--no-episode]
                                  [--tts auto] [--option KEY=VALUE ...]

Without CLIP: th_latentsync_demo1_video.mp4 (10 s, 1080x1920 portrait talking head, from
../shared/testdata or $LIPDUB_TESTDATA; its speech is Russian, which no installed translator takes,
so the source language is given as English and Whisper writes English) and a 60 s 1280x720 episode
built from the English talking-head clips (``_common.episode``). Each dub runs with the defaults
(report included) in a fresh temporary project, then once more unchanged (every stage reused).
Printed per stage: when it started and ended (seconds from the start of the dub: the video branch
runs beside the audio branch), its time and RTF, and its share of the CPU time (the CPU time between
two progress events split evenly over the stages running then); then the whole dub's wall-clock time and RTF (model
loading included, imports excluded), its CPU time (all threads and child processes), the load
average before and after (other jobs on the machine), and the re-run's time. ``--tts`` /
``--option KEY=VALUE`` set DubConfig fields (e.g. ``--tts espeak-ng``, ``--option voice_search=0``).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from _common import TESTDATA, episode
from lipdub.config import DubConfig
from lipdub.pipeline import PipelineHooks, dub


class Clock(PipelineHooks):
    """Start and end of each stage, seconds from the hooks' creation, and each stage's share of the
    process's CPU time (the CPU time between two hook calls is split evenly over the stages running)."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.start: dict[str, float] = {}
        self.end: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._running: set[str] = set()
        self._last = _cpu_s()

    def _account(self) -> None:
        now = _cpu_s()
        for s in self._running:
            self.cpu[s] = self.cpu.get(s, 0.0) + (now - self._last) / len(self._running)
        self._last = now

    def stage_started(self, stage, total=None):
        self._account()
        self._running.add(stage)
        self.start[stage] = time.monotonic() - self.t0

    def stage_progress(self, stage, done, total):
        self._account()

    def stage_finished(self, stage, record, skipped):
        self._account()
        self._running.discard(stage)
        self.end[stage] = time.monotonic() - self.t0


def _cpu_s() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bench(clip: Path, args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        extra = {k: json.loads(v) if v[:1] in "0123456789-[{tfn\"" else v for k, v in (o.split("=", 1) for o in args.option)}
        cfg = DubConfig(input=clip, targets=args.to.split(","), output=Path(tmp), separation=args.separation,
                        source_language=args.source, tts=args.tts, **extra)
        load0, cpu0 = os.getloadavg()[0], _cpu_s()
        clock = Clock()
        result = dub(cfg, clock)
        first_s, cpu_s, load1 = time.monotonic() - clock.t0, _cpu_s() - cpu0, os.getloadavg()[0]
        t0 = time.monotonic()
        dub(cfg)
        rerun_s = time.monotonic() - t0
    media_s = result.stages["ingest"].media_duration_s or 0.0
    print(f"\nclip: {clip.name}  media duration: {media_s:.2f} s  cores: {os.cpu_count()}")
    print(f"{'stage':<16}{'backend':<22}{'start s':>8}{'end s':>8}{'time s':>8}{'RTF':>8}{'CPU s':>8}")
    for name, rec in result.stages.items():
        print(f"{name:<16}{(rec.backend or '')[:21]:<22}{clock.start.get(name, 0):>8.2f}{clock.end.get(name, 0):>8.2f}"
              f"{rec.duration_s:>8.2f}{rec.duration_s / media_s:>8.3f}{clock.cpu.get(name, 0.0):>8.2f}")
    print(f"{'whole dub':<38}{first_s:>24.2f}{first_s / media_s:>8.3f}   wall clock, model loading included")
    print(f"{'CPU time':<38}{cpu_s:>24.2f}{cpu_s / media_s:>8.3f}   all threads and child processes")
    print(f"{'re-run unchanged':<38}{rerun_s:>24.2f}{rerun_s / media_s:>8.3f}   ({100 * rerun_s / first_s:.1f} % of the first run)")
    print(f"load average (1 min) before {load0:.1f}, after {load1:.1f} on {os.cpu_count()} cores")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*")
    ap.add_argument("--to", default="es")
    ap.add_argument("--from", dest="source", default="en")
    ap.add_argument("--separation", default="dfn")
    ap.add_argument("--no-episode", action="store_true", help="without CLIP: only the 10 s clip")
    ap.add_argument("--tts", default="auto")
    ap.add_argument("--option", action="append", default=[], help="KEY=VALUE (JSON value) of DubConfig")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clips = [Path(c) for c in args.clips] or [TESTDATA / "th_latentsync_demo1_video.mp4"]
        if not args.clips and not args.no_episode:
            clips.append(episode(Path(tmp) / "episode_60s_720p.mp4", 60, 1280, 720))
        for clip in clips:
            bench(clip, args)


if __name__ == "__main__":
    main()
