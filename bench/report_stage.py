"""CPU time of the report stage alone, re-run on finished dubs, and its figures against the report
the dub wrote first.

    .venv/bin/python bench/report_stage.py PROJECT [PROJECT ...] [--lang es] [--profile OUT.prof] [--warm]

Each ``PROJECT`` is a ``lipdub dub`` project directory (``OUT/<stem>.lipdub``). Its ``report:<lang>``
record is dropped from ``manifest.json`` and the dub is run again with the project's own
configuration: every other stage is reused, only the report is made again. The first time, the
report the dub wrote is kept as ``report/<lang>/report.first.json``; the new report's verdict-relevant
figures (lip sync of the dub, reference and floor, visemes, SSIM / PSNR / VMAF, intelligibility,
voice similarity, the verdict) are printed beside it. CPU time: user + system of this process and
its children (FFmpeg's VMAF) over the re-run (the reused stages' checks included, about 1 s).
A whole dub's report reuses the Whisper model the synthesize stage loaded, librosa (its numba
functions compiled) is imported by the align stage before, the resemblyzer encoder by the voices
stage and MediaPipe by the faces stage; here the report does all that itself unless ``--warm`` does
it before the run (then it is not counted, as in a whole dub).
``--profile``: cProfile of the re-run written there (one file per project, suffixed). Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import resource
import shutil
from pathlib import Path

from lipdub.config import DubConfig
from lipdub.pipeline.dubber import Dubber


def _cpu_s() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def figures(rep: dict) -> dict[str, object]:
    """The verdict-relevant figures of a report.json, flat."""
    out: dict[str, object] = {}
    sync = rep.get("sync") or {}
    for key in ("dub", "reference", "floor"):
        for f in ("offset_frames", "peak_correlation", "confidence"):
            out[f"sync {key} {f}"] = (sync.get(key) or {}).get(f)
    for i, row in enumerate(sync.get("per_segment") or []):
        out[f"sync segment {i} confidence"] = row.get("confidence")
    v = rep.get("visemes") or {}
    for f in ("bilabial_closed_share", "open_vowel_open_share"):
        out[f"visemes {f}"] = v.get(f)
    vis = rep.get("visual") or {}
    for f in ("ssim", "ssim_outside_mouth", "psnr_db", "psnr_outside_mouth_db", "vmaf", "frames_compared"):
        out[f"visual {f}"] = vis.get(f)
    intel = rep.get("intelligibility") or {}
    for f in ("dub_wer", "mean_line_wer"):
        out[f"intelligibility {f}"] = intel.get(f)
    for s in (rep.get("voice") or {}).get("speakers") or []:
        out[f"voice {s.get('speaker')}"] = s.get("similarity")
    out["verdict"] = rep.get("verdict")
    return out


def rerun(project: Path, lang: str, profile: Path | None, warm: bool) -> None:
    manifest = json.loads((project / "manifest.json").read_text())
    report_dir = project / "report" / lang
    first = report_dir / "report.first.json"
    if not first.exists():
        shutil.copyfile(report_dir / "report.json", first)
    manifest["stages"].pop(f"report:{lang}", None)
    (project / "manifest.json").write_text(json.dumps(manifest, indent=1))
    cfg = DubConfig(**{**manifest["config"], "project_dir": str(project)})
    dubber = Dubber(cfg)
    if warm:
        import librosa.feature  # noqa: F401 - imported (numba compiled) as the align stage of a whole dub has
        import librosa.sequence  # noqa: F401

        from lipdub.qc.intelligibility import load_whisper

        load_whisper(cfg.asr_model)
        from lipdub.faces.landmarks import FaceLandmarker
        from lipdub.voice.encoder import voice_encoder

        voice_encoder()  # the voices stage's resemblyzer encoder
        FaceLandmarker(max_faces=1).close()  # MediaPipe imported and its graphs' models loaded, as by the faces stage
    cpu0 = _cpu_s()
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    dubber.run()
    if prof:
        prof.disable()
        prof.dump_stats(str(profile.with_suffix(f".{project.name}.prof")))
    cpu_s = _cpu_s() - cpu0
    rec = json.loads((project / "manifest.json").read_text())["stages"][f"report:{lang}"]
    a, b = figures(json.loads(first.read_text())), figures(json.loads((report_dir / "report.json").read_text()))
    print(f"\n{project.name}: report re-run CPU {cpu_s:.2f} s, wall {rec['duration_s']:.2f} s")
    print(f"{'figure':<44}{'first report':>16}{'re-run':>16}{'change':>12}")
    for k in dict.fromkeys([*a, *b]):
        x, y = a.get(k), b.get(k)
        d = f"{y - x:+.4f}" if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool) else ""
        print(f"{k:<44}{str(x):>16}{str(y):>16}{d:>12}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("projects", nargs="+", type=Path)
    ap.add_argument("--lang", default="es")
    ap.add_argument("--profile", type=Path)
    ap.add_argument("--warm", action="store_true")
    args = ap.parse_args()
    for p in args.projects:
        rerun(p.resolve(), args.lang, args.profile, args.warm)


if __name__ == "__main__":
    main()
