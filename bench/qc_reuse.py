"""The quality report of a lip-synced dub with the output's faces measured on the changed frames only
(what the report stage does) against a full face analysis of the output: same figures?

    .venv/bin/python bench/qc_reuse.py [PROJECT OUTPUT --lang es]

Without arguments, th_latentsync_demo1_video.mp4 (../shared/testdata or $LIPDUB_TESTDATA) is dubbed to
Spanish first (defaults, source language given as English). Then the report is built twice on the
same output: (a) ``output_analysis`` from :func:`lipdub.qc.output_faces.output_analysis` (the
source's tracks, the lip-synced frames measured again), (b) a full ``analyze_video`` of the output.
Printed: the time of each face analysis, and side by side the lip-sync figures (dub, reference,
floor: offset, peak correlation, confidence), the viseme shares, the visual figures and the verdict.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import TESTDATA
from lipdub.config import DubConfig
from lipdub.contracts.faces import FaceAnalysis
from lipdub.faces.analyze import analyze_video
from lipdub.media.probe import video_frame_times
from lipdub.pipeline import dub
from lipdub.qc.output_faces import changed_frames, output_analysis
from lipdub.qc.report import build_report
from lipdub.runtime import apply_thread_policy


def _rows(data: dict) -> dict[str, object]:
    out: dict[str, object] = {}
    for key in ("dub", "reference", "floor"):
        s = (data.get("sync") or {}).get(key) or {}
        for f in ("offset_frames", "peak_correlation", "confidence"):
            out[f"sync {key} {f}"] = s.get(f)
    v = data.get("visemes") or {}
    for f in ("bilabial_closed_share", "open_vowel_open_share"):
        out[f"visemes {f}"] = v.get(f)
    for f in ("ssim", "ssim_outside_mouth", "psnr_outside_mouth_db", "vmaf"):
        out[f"visual {f}"] = (data.get("visual") or {}).get(f)
    out["verdict"] = data.get("verdict")
    return out


def compare(project: Path, output: Path, lang: str) -> None:
    apply_thread_policy()
    source = FaceAnalysis.load(project / "faces")
    plans = json.loads((project / f"lipsync/{lang}/plans.json").read_text())
    t0 = time.monotonic()
    derived = output_analysis(output, source, changed_frames(plans), video_frame_times(output))
    t_derived = time.monotonic() - t0
    t0 = time.monotonic()
    full = analyze_video(output)
    t_full = time.monotonic() - t0
    a = _rows(build_report(output, project_dir=project, language=lang, output_analysis=derived).data)
    b = _rows(build_report(output, project_dir=project, language=lang, output_analysis=full).data)
    print(f"output faces: changed frames measured again {t_derived:.1f} s ({derived.details['remeasured_frames']} frames), "
          f"full analysis {t_full:.1f} s ({full.frame_count} frames)")
    print(f"{'figure':<42}{'changed frames':>16}{'full analysis':>16}")
    for k in a:
        print(f"{k:<42}{str(a[k]):>16}{str(b[k]):>16}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("project", nargs="?", type=Path)
    ap.add_argument("output", nargs="?", type=Path)
    ap.add_argument("--lang", default="es")
    args = ap.parse_args()
    if args.project is not None:
        compare(args.project, args.output, args.lang)
        return
    with tempfile.TemporaryDirectory() as tmp:
        clip = TESTDATA / "th_latentsync_demo1_video.mp4"
        res = dub(DubConfig(input=clip, targets=[args.lang], output=Path(tmp), source_language="en"))
        compare(res.project_dir, res.outputs[args.lang].media, args.lang)


if __name__ == "__main__":
    main()
