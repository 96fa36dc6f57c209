"""Cost of the quality report, phase by phase, and the detection of a shifted soundtrack.

Usage: ``python bench/qc_report.py [CLIP.mp4 | OUTPUT --project DIR]``.

Without a project: ``CLIP`` (default ``th2_retalking_face1.mp4`` of the test data) with its own audio
delayed by 0..6 video frames (median frame duration)
(silence prepended, video copied): the landmark AV offset read for each delay, and the seconds each
phase of :func:`lipdub.qc.report.build_report` takes (audio, faces of the output, lip sync, visual
fidelity incl. VMAF). With an output and its project directory (e.g. a ``lipdub dub`` result): the
phase timings and the verdict of that report.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from _common import TESTDATA

from lipdub.media.probe import decode_audio, probe, video_frame_times
from lipdub.qc.report import build_report
from lipdub.tools import ffmpeg_exe


def timed_report(output: Path, **kw):
    marks = [("start", time.monotonic())]
    rep = build_report(output, progress=lambda msg: marks.append((msg, time.monotonic())), **kw)
    marks.append(("end", time.monotonic()))
    phases = [(marks[i][0], marks[i + 1][1] - marks[i][1]) for i in range(1, len(marks) - 1)]
    return rep, phases, marks[-1][1] - marks[0][1]


def shifted(src: Path, frames: int, tmp: Path) -> Path:
    dt = float(np.median(np.diff(video_frame_times(src))))
    mix, _ = decode_audio(src, probe(src))
    n = int(round(frames * dt * 48000))
    sf.write(tmp / f"a{frames}.wav", np.concatenate([np.zeros((n, mix.shape[1]), np.float32), mix])[: len(mix)], 48000)
    out = tmp / f"shift{frames}.mp4"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-y", "-v", "error", "-i", str(src), "-i", str(tmp / f"a{frames}.wav"), "-map", "0:v",
                    "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "192k", str(out)], check=True)
    return out


def main() -> None:
    if len(sys.argv) >= 4 and sys.argv[2] == "--project":
        rep, phases, total = timed_report(Path(sys.argv[1]), project_dir=Path(sys.argv[3]))
        for name, s in phases:
            print(f"{name:24s} {s:7.1f} s")
        print(f"{'total':24s} {total:7.1f} s   verdict {rep.verdict}")
        return
    src = Path(sys.argv[1]) if len(sys.argv) == 2 else TESTDATA / "th2_retalking_face1.mp4"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for k in range(0, 7):
            out = shifted(src, k, tmp)
            kw = {"source": src} if k == 5 else {}
            rep, phases, total = timed_report(out, vmaf=k == 5, **kw)
            s = rep.data["sync"]["dub"]
            off = next(c for c in rep.data["checks"] if c["name"] == "sync_offset_frames")
            line = (f"delay {k} frames: offset {s['offset_frames']:+d}, peak {s['peak_correlation']:.3f}, confidence {s['confidence']:.3f}, "
                    f"offset verdict {off['verdict']}, overall {rep.verdict}")
            print(line + f", report {total:.1f} s")
            if k == 5:
                for name, sec in phases:
                    print(f"    {name:24s} {sec:6.1f} s")


if __name__ == "__main__":
    main()
