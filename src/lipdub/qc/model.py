"""The quality report's data model: judged figures (:class:`Check`), the built :class:`Report`, and
the helpers that make figures JSON-safe and embed PNGs in the page."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .thresholds import Verdict

REPORT_VERSION = 2  # 2: intelligibility group; one effective speed-up (TTS rate x stretch / natural speed)


@dataclass
class Check:
    """One judged figure: ``value`` in ``unit`` against ``threshold`` (text), with its ``verdict``."""

    group: str
    name: str
    label: str
    value: float | None
    unit: str
    verdict: Verdict
    threshold: str
    source: str
    note: str = ""

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("group", "name", "label", "value", "unit", "verdict", "threshold", "source", "note")}


@dataclass
class Report:
    """A built report: ``data`` is what goes to report.json; ``thumbnails`` are PNG bytes of the
    worst-sync frames ``(frame, time_s, png)`` embedded in the HTML page."""

    data: dict
    thumbnails: list[tuple[int, float, bytes]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return self.data["verdict"]


def json_safe(x: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return json_safe(x.tolist())
    return x


def judge(group: str, name: str, label: str, value, th, note: str = "") -> Check:
    """A :class:`Check` of ``value`` against threshold ``th`` (a :class:`~lipdub.qc.thresholds.Threshold`)."""
    v = None if value is None else float(value)
    if v is not None and math.isfinite(v):
        v = float(f"{v:.6g}")  # no float noise (0.0282, not 0.028200000000000003)
    return Check(group, name, label, v, th.unit, th.judge(v), th.describe(), th.source, note)


def encode_png(png: bytes) -> str:
    """``data:`` URI of PNG bytes (for the self-contained page)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
