"""The QC report of one dubbed language, built from the project's stage records and script.

Figures come from what the stages measured (DESIGN.md section 4): loudness and true peak of the mix
(ITU-R BS.1770-4 through pyloudnorm, in the ``mix:<lang>`` record), each line's fit (stretch ratio,
overrun, in ``script.json``), the lip-sync plan (``lipsync:<lang>`` record) and per-stage timings
(RTF). Thresholds turn them into pass / warn / fail:

- integrated loudness within 1 LU of the target: pass; within 2 LU: warn; else fail.
- true peak at most the ceiling (+0.1 dB measurement tolerance): pass; else fail.
- timing: share of speech placed with a stretch <= 1.25 and no overrun; >= 90 %: pass, >= 70 %: warn.
"""

from __future__ import annotations

from typing import Any

from ..project import Manifest
from ..script import Script

STRETCH_OK = 1.25  # DESIGN.md section 4: "share of speech that fits without a stretch above 1.25"


def _verdict(ok: bool, warn: bool = False) -> str:
    return "pass" if ok else "warn" if warn else "fail"


def build_report(manifest: Manifest, script: Script | None, language: str) -> dict[str, Any]:
    """QC report of ``language``: ``{"language", "stages", "loudness", "timing", "lipsync", "checks"}``.

    ``stages`` lists each stage's backend, duration (s) and RTF; ``checks`` maps a check name to
    ``{"value", "threshold", "verdict"}``. Missing stages (not run yet) leave their sections ``None``.
    """
    L = language
    cfg = manifest.config or {}
    stages = [{"stage": name, "backend": rec.backend, "duration_s": rec.duration_s,
               "rtf": round(rec.rtf, 4) if rec.rtf is not None else None}
              for name, rec in manifest.stages.items() if ":" not in name or name.endswith(f":{L}")]
    checks: dict[str, Any] = {}
    loudness = None
    mix = manifest.stages.get(f"mix:{L}")
    if mix is not None:
        d = mix.details
        loudness = {k: d.get(k) for k in ("integrated_lufs", "true_peak_dbtp", "loudness_range_lu", "gain_db", "limiter_max_reduction_db")}
        target, ceiling = float(cfg.get("target_lufs", -24.0)), float(cfg.get("true_peak_dbtp", -2.0))
        if d.get("integrated_lufs") is not None:
            dev = abs(float(d["integrated_lufs"]) - target)
            checks["integrated_loudness_lufs"] = {"value": d["integrated_lufs"], "threshold": f"{target} +- 1 LU (warn 2)",
                                                  "verdict": _verdict(dev <= 1.0, dev <= 2.0)}
        if d.get("true_peak_dbtp") is not None:
            checks["true_peak_dbtp"] = {"value": d["true_peak_dbtp"], "threshold": f"<= {ceiling}",
                                        "verdict": _verdict(float(d["true_peak_dbtp"]) <= ceiling + 0.1)}
    timing = None
    if script is not None:
        lines = []
        for seg in script.segments:
            t = seg.targets.get(L)
            if t is None or t.fit is None:
                continue
            f = t.fit
            lines.append({"segment": seg.id, "speaker": seg.speaker, "slot_s": [f.slot_start_s, f.slot_end_s],
                          "placed_s": [f.placed_start_s, f.placed_end_s], "stretch_ratio": f.stretch_ratio,
                          "overrun_s": f.overrun_s, "fits": f.stretch_ratio <= STRETCH_OK and f.overrun_s <= 0.01})
        if lines:
            total = sum(x["placed_s"][1] - x["placed_s"][0] for x in lines) or 1e-9
            fit_s = sum(x["placed_s"][1] - x["placed_s"][0] for x in lines if x["fits"])
            share = round(fit_s / total, 4)
            timing = {"lines": lines, "share_fitting": share}
            checks["timing_share_fitting"] = {"value": share, "threshold": ">= 0.9 (warn 0.7)", "verdict": _verdict(share >= 0.9, share >= 0.7)}
    ls = manifest.stages.get(f"lipsync:{L}")
    lipsync = ls.details if ls is not None else None
    render = manifest.stages.get(f"render:{L}")
    return {"language": L, "rendered": render is not None, "stages": stages, "loudness": loudness,
            "timing": timing, "lipsync": lipsync, "checks": checks,
            "verdict": ("fail" if any(c["verdict"] == "fail" for c in checks.values())
                        else "warn" if any(c["verdict"] == "warn" for c in checks.values()) else "pass") if checks else None}
