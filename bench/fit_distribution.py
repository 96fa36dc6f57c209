"""Timing fit of a dub (issue 6, closed-loop isochrony): the distribution of speed-ups, truncation, overlaps.

    .venv/bin/python bench/fit_distribution.py [CLIP] [--to es] [--tts espeak-ng] [--project DIR]

CLIP defaults to th_latentsync_demo2_video.mp4 (one on-screen speaker, 20 s). The dub runs up to the
mix (no lip-sync, no render). Per segment: slot, synthesized and placed durations, TTS rate,
rubberband stretch and the effective speed-up (rate x stretch), attempts and what the loop did.
Then: the share of segments whose effective speed-up is <= 1.25 (and of the rubberband stretch
alone), a histogram, truncated segments (placed audio shorter than the trimmed synthesis divided by
the speed-up: speech cut off) and overlapping placed segments. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _common import TESTDATA

from lipdub.config import DubConfig
from lipdub.pipeline import Dubber
from lipdub.script import Script


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip", nargs="?", default=str(TESTDATA / "th_latentsync_demo2_video.mp4"))
    ap.add_argument("--to", default="es")
    ap.add_argument("--tts", default="espeak-ng")
    ap.add_argument("--translator", default="apertium")
    ap.add_argument("--project", default=None)
    ap.add_argument("--limit", type=float, default=1.25)
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="lipdub-fit-"))
    cfg = DubConfig(input=Path(args.clip), targets=[args.to], output=out, project_dir=Path(args.project) if args.project else out / "project",
                    tts=args.tts, translator=args.translator, lipsync="none", max_stretch=args.limit)
    dubber = Dubber(cfg)
    dubber.run(until="mix")
    script = Script.load(dubber.project.root / "script.json")
    L = args.to
    rows, placed = [], []
    print(f"{'id':>3} {'on':>3} {'slot s':>6} {'synth s':>7} {'placed s':>8} {'rate':>5} {'stretch':>7} {'speedup':>7} {'borrow b/a':>11} {'ovr s':>5} tries  text")
    for seg in script.segments:
        t = seg.targets.get(L)
        if t is None or t.fit is None:
            continue
        f = t.fit
        speedup = f.speedup  # TTS rate x stretch / natural speed (lipdub.script.effective_speedup)
        last = f.history[-1] if f.history else None
        trimmed_last = last.duration_s if last else f.trimmed_duration_s
        expected_s = trimmed_last / f.stretch_ratio
        truncated = (f.placed_end_s - f.placed_start_s) < expected_s - 0.02
        rows.append((speedup, f.stretch_ratio, truncated, f.overrun_s))
        placed.append((f.placed_start_s, f.placed_end_s, seg.id))
        print(f"{seg.id:3d} {'y' if f.on_screen else 'n':>3} {f.slot_end_s - f.slot_start_s:6.2f} {trimmed_last:7.2f} {f.placed_end_s - f.placed_start_s:8.2f} "
              f"{f.tts_rate:5.2f} {f.stretch_ratio:7.3f} {speedup:7.3f} {f.borrowed_before_s:5.2f}/{f.borrowed_after_s:5.2f} {f.overrun_s:5.2f} {f.attempts:5d}  "
              f"{t.text[:50]}{' (shortened)' if t.shortened_from else ''}")
    sp = np.array([r[0] for r in rows])
    st = np.array([r[1] for r in rows])
    placed.sort()
    overlaps = [(a[2], b[2], round(a[1] - b[0], 3)) for a, b in zip(placed, placed[1:]) if a[1] > b[0] + 1e-6]
    n = len(rows)
    print(f"\n{n} segments, TTS {args.tts}, translator {args.translator}")
    print(f"effective speed-up (TTS rate x stretch) <= {args.limit}: {np.sum(sp <= args.limit + 1e-3)}/{n} = {100 * np.mean(sp <= args.limit + 1e-3):.1f} %")
    print(f"rubberband stretch alone <= {args.limit}: {np.sum(st <= args.limit + 1e-3)}/{n} = {100 * np.mean(st <= args.limit + 1e-3):.1f} %")
    print("speed-up percentiles p50/p90/max: " + " / ".join(f"{v:.3f}" for v in (np.median(sp), np.percentile(sp, 90), sp.max())))
    edges = [1.0, 1.001, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.5, 2.01]
    hist, _ = np.histogram(sp, bins=edges)
    print("histogram of speed-ups: " + ", ".join(f"[{a:.2f},{b:.2f}): {h}" for a, b, h in zip(edges, edges[1:], hist)))
    print(f"truncated segments: {sum(r[2] for r in rows)}; segments with overrun > 10 ms: {sum(r[3] > 0.01 for r in rows)}; overlapping pairs: {len(overlaps)} {overlaps}")


if __name__ == "__main__":
    main()
