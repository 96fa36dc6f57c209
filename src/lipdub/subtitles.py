"""Subtitle files: SRT (``srt`` package) and WebVTT (``webvtt-py``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path


@dataclass(frozen=True)
class Cue:
    """One subtitle: ``text`` shown from ``start_s`` to ``end_s`` (seconds)."""

    start_s: float
    end_s: float
    text: str


def write_srt(cues: list[Cue], path: str | os.PathLike) -> Path:
    """Write an SRT file (UTF-8), cues sorted by start, empty texts dropped."""
    import srt

    subs = [
        srt.Subtitle(index=i + 1, start=timedelta(seconds=c.start_s), end=timedelta(seconds=max(c.end_s, c.start_s + 0.2)), content=c.text.strip())
        for i, c in enumerate(sorted((c for c in cues if c.text.strip()), key=lambda c: c.start_s))
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(srt.compose(subs), encoding="utf-8")
    return path


def write_vtt(cues: list[Cue], path: str | os.PathLike) -> Path:
    """Write a WebVTT file (UTF-8) through webvtt-py."""
    import webvtt

    vtt = webvtt.WebVTT()
    for c in sorted((c for c in cues if c.text.strip()), key=lambda c: c.start_s):
        vtt.captions.append(webvtt.Caption(_ts(c.start_s), _ts(max(c.end_s, c.start_s + 0.2)), c.text.strip()))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vtt.save(str(path))
    return path


def _ts(t_s: float) -> str:
    ms = int(round(t_s * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"
