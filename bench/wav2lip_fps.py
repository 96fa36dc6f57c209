"""Frames per second of the ``wav2lip`` lip-sync backend beside ``retrieval``, at 720p.

    .venv/bin/python bench/wav2lip_fps.py [--frames 150] [--checkpoint wav2lip.pth] [--device auto] [--batch-size 16]

Makes a 720x1280 H.264 copy of the first frames of the portrait talking head
th_latentsync_demo2_video.mp4 (../shared/testdata or $LIPDUB_TESTDATA), analyses the faces (not
timed), then times, driving the face with the clip's own audio reversed:

* generator: the Wav2Lip generator alone on 96x96 crops held in memory (batches of --batch-size);
* plan + render: the backend's plan and ``render_lipsync`` (decode twice, generator, compositor,
  x264 veryfast encode), per frame of the clip, for ``retrieval`` and ``wav2lip``.

Without --checkpoint a random-weight generator is used: the speed does not depend on the weights.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import TESTDATA, scaled_clip

from lipdub.backends.lipsync.retrieval import RetrievalBackend
from lipdub.backends.lipsync.wav2lip import Wav2LipBackend
from lipdub.backends.lipsync.wav2lip_model import Wav2Lip, save_checkpoint
from lipdub.faces.analyze import analyze_video
from lipdub.lipsync.render import render_lipsync
from lipdub.media.probe import decode_audio, probe, video_frame_times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    src = TESTDATA / "th_latentsync_demo2_video.mp4"
    print(f"cores: {os.cpu_count()}  torch threads: {torch.get_num_threads()}  clip: {src.name}, first {args.frames} frames at 720x1280")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint
        if ckpt is None:
            ckpt = Path(tmp) / "random.pth"
            save_checkpoint(Wav2Lip(), ckpt)
        clip = scaled_clip(src, Path(tmp) / "720p.mp4", 720, 1280, args.frames, crf=18, audio=True)
        analysis = analyze_video(clip)
        track = max(analysis.tracks, key=lambda t: len(t.frames))
        times = video_frame_times(clip)
        _, audio = decode_audio(clip, probe(clip))
        frames = track.frames[track.skip == 0].astype(np.int64)
        w2l = Wav2LipBackend(checkpoint=ckpt, device=args.device, batch_size=args.batch_size)
        print(f"wav2lip device: {w2l.device}  half: {w2l.half}  batch: {w2l.batch_size}  planned frames: {len(frames)}")

        # generator alone
        rng = np.random.default_rng(0)
        faces = rng.integers(0, 256, (args.batch_size, 96, 96, 3), dtype=np.uint8)
        mels = rng.uniform(-4, 4, (args.batch_size, 1, 80, 16)).astype(np.float32)
        w2l.generate(faces, mels)  # warm-up
        reps = max(1, 64 // args.batch_size)
        t0 = time.perf_counter()
        for _ in range(reps):
            w2l.generate(faces, mels)
        gen_fps = reps * args.batch_size / (time.perf_counter() - t0)

        rows = []
        for name, backend in (("retrieval", RetrievalBackend()), ("wav2lip", w2l)):
            t0 = time.perf_counter()
            plan = backend.plan(analysis, track, frames, times, audio, audio[::-1].copy(), 16000, None)
            plan_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            render_lipsync(clip, analysis, [(plan, track)], Path(tmp) / f"{name}.mp4")
            render_s = time.perf_counter() - t0
            rows.append((name, len(frames) / plan_s, analysis.frame_count / render_s, analysis.frame_count / (plan_s + render_s)))
        print(f"wav2lip generator alone: {gen_fps:.1f} faces/s")
        print(f"{'backend':<12}{'plan fps':>10}{'render fps':>12}{'plan+render fps':>17}")
        for name, p, r, t in rows:
            print(f"{name:<12}{p:>10.1f}{r:>12.1f}{t:>17.1f}")


if __name__ == "__main__":
    main()
