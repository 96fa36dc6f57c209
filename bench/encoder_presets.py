"""x264 presets and CRFs for the lip-sync render: encode time against SSIM to the source.

    .venv/bin/python bench/encoder_presets.py [CLIP ...] [--frames 250] [--grid medium:17,veryfast:17,...]

Each clip (default: th_latentsync_demo1_video.mp4 at its 1080x1920 and scaled to 720x1280, and
th2_retalking_face1.mp4, from ../shared/testdata or $LIPDUB_TESTDATA) is decoded once; its frames are
encoded by PyAV's libx264 exactly as ``lipdub.lipsync.render`` encodes untouched frames (yuv420p, the
source's time base), with one model thread per library as in a dub; printed per preset and CRF: the
encoder's CPU seconds and frames per CPU second, the output size, and the SSIM of the luma to the
source's (every 5th frame; ``lipdub.qc.visual.ssim_map``, skimage's figures). Prints figures; asserts
nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from _common import TESTDATA, scaled_clip
from lipdub.qc.visual import ssim_map
from lipdub.runtime import apply_thread_policy

DEFAULT_GRID = "medium:17,veryfast:17,veryfast:16,faster:17,superfast:17,superfast:16,superfast:15,ultrafast:17,ultrafast:15,ultrafast:13"


def _decode(path: Path, frames: int):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        out = []
        for i, f in enumerate(c.decode(s)):
            if i >= frames:
                break
            out.append(f.reformat(format="yuv420p"))
        return out, s.time_base, s.guessed_rate or s.average_rate or 25


def _encode(frames, time_base, rate, preset: str, crf: int) -> tuple[float, bytes]:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        st = out.add_stream("libx264", rate=rate)
        st.width, st.height, st.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        st.time_base = st.codec_context.time_base = time_base
        st.options = {"crf": str(crf), "preset": preset}
        c0 = time.process_time()
        for k, f in enumerate(frames):
            f.pts = k * int(round(1 / (rate * time_base))) if f.pts is None else f.pts
            f.pict_type = av.video.frame.PictureType.NONE
            for pkt in st.encode(f):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
        cpu = time.process_time() - c0
    return cpu, buf.getvalue()


def _ssim(src_frames, data: bytes, step: int = 5) -> float:
    vals = []
    with av.open(io.BytesIO(data)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % step == 0 and i < len(src_frames):
                a = cv2.cvtColor(src_frames[i].to_ndarray(format="rgb24"), cv2.COLOR_RGB2GRAY)
                b = cv2.cvtColor(f.to_ndarray(format="rgb24"), cv2.COLOR_RGB2GRAY)
                vals.append(ssim_map(a, b)[0])
    return float(np.mean(vals))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*")
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--grid", default=DEFAULT_GRID)
    args = ap.parse_args()
    threads = apply_thread_policy()
    grid = [(p.split(":")[0], int(p.split(":")[1])) for p in args.grid.split(",")]
    print(f"cores: {os.cpu_count()}  model threads: {threads}  load average: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        clips = [Path(c) for c in args.clips] or [
            TESTDATA / "th_latentsync_demo1_video.mp4",
            scaled_clip(TESTDATA / "th_latentsync_demo1_video.mp4", Path(tmp) / "demo1_720x1280.mp4", 720, 1280, args.frames, crf=16),
            TESTDATA / "th2_retalking_face1.mp4"]
        for clip in clips:
            frames, tb, rate = _decode(clip, args.frames)
            print(f"\n{clip.name}: {frames[0].width}x{frames[0].height}, {len(frames)} frames")
            print(f"{'preset':<11}{'crf':>4}{'cpu s':>8}{'fps/cpu':>9}{'MB':>7}{'SSIM':>9}")
            for preset, crf in grid:
                cpu, data = _encode(frames, tb, rate, preset, crf)
                print(f"{preset:<11}{crf:>4}{cpu:>8.2f}{len(frames) / cpu:>9.1f}{len(data) / 1e6:>7.2f}{_ssim(frames, data):>9.5f}", flush=True)


if __name__ == "__main__":
    main()
