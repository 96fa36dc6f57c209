"""The job page's summary of one dubbed language, read from the project's manifest (and the QC report).

Nothing is judged here: the verdict and the checks are those of the quality report that the
``report:<lang>`` stage wrote (:mod:`lipdub.qc.report`, ``<project>/report/<lang>/report.json``), so
the page and the downloadable report always agree. Until that stage has run, the summary carries the
measured figures the earlier stages recorded (the mix's loudness, the lip-sync plan, stage timings)
with ``verdict`` None and no checks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..project import Manifest


def summarize_manifest(manifest: Manifest, project_root: Path, language: str) -> dict[str, Any]:
    """Summarise what the manifest (and the QC report, once written) says about ``language``.

    Measures and judges nothing itself (the quality report of :mod:`lipdub.qc.report` does).

    Returns:
        ``{"language", "rendered", "stages", "loudness", "lipsync", "verdict", "reasons", "checks"}``:
        ``stages`` lists each stage's backend, duration (s) and RTF; ``loudness`` the mix's measured
        integrated loudness (LUFS), true peak (dBTP) and loudness range (LU); ``checks`` maps each QC
        check name to ``{"label", "value", "unit", "threshold", "verdict", "source", "note"}`` from the QC
        report (empty, with ``verdict`` None, before the report stage ran).
    """
    L = language
    stages = [{"stage": name, "backend": rec.backend, "duration_s": rec.duration_s,
               "rtf": round(rec.rtf, 4) if rec.rtf is not None else None}
              for name, rec in manifest.stages.items() if ":" not in name or name.endswith(f":{L}")]
    mix = manifest.stages.get(f"mix:{L}")
    loudness = ({k: mix.details.get(k) for k in ("integrated_lufs", "true_peak_dbtp", "loudness_range_lu", "gain_db")}
                if mix is not None else None)
    ls = manifest.stages.get(f"lipsync:{L}")
    out: dict[str, Any] = {"language": L, "rendered": manifest.stages.get(f"render:{L}") is not None, "stages": stages,
                           "loudness": loudness, "lipsync": ls.details if ls is not None else None,
                           "verdict": None, "reasons": [], "checks": {}}
    path = project_root / "report" / L / "report.json"
    if manifest.stages.get(f"report:{L}") is not None and path.is_file():
        qc = json.loads(path.read_text(encoding="utf-8"))
        out["verdict"], out["reasons"] = qc.get("verdict"), qc.get("reasons", [])
        out["checks"] = {c["name"]: {k: c.get(k) for k in ("label", "value", "unit", "threshold", "verdict", "source", "note")}
                         for c in qc.get("checks", [])}
    return out
