"""``lipdub lipsync`` beside the official Wav2Lip inference, whole processes, side by side in one run.

    .venv/bin/python bench/lipsync_vs_wav2lip.py [--frames 100] [--s3fd-frames 25] [--sizes 720,1080] [--s3fd-sizes 720]

Clips: the first --frames frames of the portrait talking head th_latentsync_demo2_video.mp4 (from
../shared/testdata or $LIPDUB_TESTDATA) scaled to 720x1280 and 1080x1920 (H.264); speech: the first
seconds of sp_en_jfk.flac at 16 kHz, as long as the clip. Each run is a fresh process, timed from
its start to its end (imports, model loading and writing the output included), its peak memory
from ``wait4``:

* ``lipdub lipsync VIDEO AUDIO -o OUT`` with the defaults (retrieval: face analysis, transcription
  and alignment of both soundtracks, plan, compositor, x264);
* the official Wav2Lip inference pipeline with random weights (``bench/_wav2lip_reference.py``, an
  equivalent built from its published layout: read every frame, mel, face boxes, the generator in
  batches of 128, paste, DIVX AVI, ffmpeg), (a) with the face box given (``--box``: the median box of
  lipdub's face track, padded as Wav2Lip pads, found beforehand and not timed), and (b) with its
  S3FD face detection (random weights) on a --s3fd-frames clip with as many frames of speech, as the
  official script runs on CPU (its memory grows with the frame size: 1080p is left out unless
  --s3fd-sizes names it).

Printed: frames per second of each (frames of the clip / wall-clock seconds), lipdub's speed-up over
each, peak RSS, and the load average. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from _common import TESTDATA, scaled_clip
from lipdub.audio import resample
from lipdub.backends.lipsync.wav2lip_model import Wav2Lip, save_checkpoint
from lipdub.faces.analyze import analyze_video

HERE = Path(__file__).resolve().parent
PY = sys.executable
LIPDUB = [PY, "-m", "lipdub"]


def _run(cmd: list[str]) -> tuple[float, float]:
    """Wall-clock seconds and peak RSS (MB) of one fresh process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])}
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed:\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def _speech(path: Path, seconds: float) -> Path:
    data, sr = sf.read(str(TESTDATA / "sp_en_jfk.flac"), dtype="float32")
    mono = data if data.ndim == 1 else data.mean(1)
    x = resample(mono, sr, 16000)[: int(round(seconds * 16000))]
    sf.write(str(path), x, 16000, subtype="PCM_16")
    return path


def _box(clip: Path) -> list[str]:
    """``TOP BOTTOM LEFT RIGHT`` of the main face (median landmark box), padded 0, 10, 0, 0 as Wav2Lip pads."""
    a = analyze_video(clip)
    t = max(a.tracks, key=lambda t: len(t.frames))
    x0, y0, x1, y1 = np.median(t.boxes, axis=0)
    return [str(int(max(0, y0))), str(int(min(a.height, y1 + 10))), str(int(max(0, x0))), str(int(min(a.width, x1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--s3fd-frames", type=int, default=25)
    ap.add_argument("--sizes", default="720,1080")
    ap.add_argument("--s3fd-sizes", default="720")
    args = ap.parse_args()
    sizes = {720: (720, 1280), 1080: (1080, 1920)}
    src = TESTDATA / "th_latentsync_demo2_video.mp4"
    print(f"cores: {os.cpu_count()}  load average: {os.getloadavg()[0]:.1f}  clip: {src.name}, {args.frames} frames; "
          f"S3FD runs on {args.s3fd_frames} frames")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = tmp / "wav2lip_random.pth"
        save_checkpoint(Wav2Lip(), ckpt)
        speech = _speech(tmp / "speech.wav", args.frames / 25)
        short = _speech(tmp / "speech_short.wav", args.s3fd_frames / 25)
        for size in (int(s) for s in args.sizes.split(",")):
            w, h = sizes[size]
            clip = scaled_clip(src, tmp / f"{h}p.mp4", w, h, args.frames, crf=18, audio=True)
            box = _box(clip)
            lip_s, lip_mb = _run([*LIPDUB, "lipsync", str(clip), str(speech), "-o", str(tmp / f"lipdub_{h}.mp4")])
            ref = [PY, str(HERE / "_wav2lip_reference.py"), "--checkpoint", str(ckpt), "--audio"]
            box_s, box_mb = _run([*ref, str(speech), "--face", str(clip), "--outfile", str(tmp / f"w2l_box_{h}.mp4"), "--box", *box])
            row = {"size": f"{w}x{h}", "lipdub": (args.frames / lip_s, lip_mb), "box": (args.frames / box_s, box_mb)}
            if str(size) in args.s3fd_sizes.split(","):
                few = scaled_clip(src, tmp / f"{h}p_{args.s3fd_frames}.mp4", w, h, args.s3fd_frames, crf=18, audio=True)
                det_s, det_mb = _run([*ref, str(short), "--face", str(few), "--outfile", str(tmp / f"w2l_s3fd_{h}.mp4")])
                row["s3fd"] = (args.s3fd_frames / det_s, det_mb)
            rows.append(row)
            print(f"  {row['size']}: done", flush=True)
    print(f"\n{'size':<11}{'lipdub fps':>11}{'MB':>7}{'Wav2Lip box fps':>17}{'MB':>7}{'x':>7}{'Wav2Lip S3FD fps':>18}{'MB':>7}{'x':>8}")
    for r in rows:
        lf, lm = r["lipdub"]
        bf, bm = r["box"]
        line = f"{r['size']:<11}{lf:>11.1f}{lm:>7.0f}{bf:>17.2f}{bm:>7.0f}{lf / bf:>7.1f}"
        if "s3fd" in r:
            sfps, sm = r["s3fd"]
            line += f"{sfps:>18.3f}{sm:>7.0f}{lf / sfps:>8.0f}"
        print(line)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other jobs on the machine)")


if __name__ == "__main__":
    main()
