"""Timing figures of a dub (DESIGN.md section 4): per segment stretch ratio, overrun and overlap, the
share of segments fitted without a stretch above the limit, and subtitle timing within the video.

All figures come from the fit reports in ``script.json`` (:class:`lipdub.script.FitReport`), which the
synthesize stage writes for each line; times are seconds from the start of the video.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..script import Script, target_cues
from .thresholds import Thresholds, worst


@dataclass
class SegmentTiming:
    """Timing of one dubbed line.

    ``stretch_ratio`` is the rubberband time-stretch, ``tts_rate`` the TTS's speaking rate and
    ``natural_speed`` the rate at which the voice speaks the language naturally; ``speedup`` is the
    effective speed-up, ``FitReport.speedup`` (:func:`lipdub.script.effective_speedup`: TTS rate x
    stretch / natural speed, the one definition of the fit, this report and the studio), judged against ``speedup_limit``: the limit that applied to the line (``FitReport.max_stretch``,
    off-screen lines may get more; for a line re-fitted by ``--redo-failed`` the limit it had before,
    ``redo`` saying what was asked), else ``thresholds.stretch_ratio.pass_at``. ``overlap_s``: how far
    the line runs into the next placed line; ``delayed_s``: how much later than its own fit the line
    was placed, because the line before it overran into its slot (``FitReport.delayed_s``, 0.0: placed
    where it was fitted).
    """

    id: int
    speaker: str
    start_s: float
    end_s: float
    placed_start_s: float | None
    placed_end_s: float | None
    stretch_ratio: float | None
    tts_rate: float | None
    natural_speed: float | None
    speedup: float | None
    speedup_limit: float | None
    overrun_s: float | None
    overlap_s: float
    text: str
    delayed_s: float = 0.0
    redo: dict | None = None
    verdict: str = "n/a"
    reasons: list[str] = field(default_factory=list)


@dataclass
class TimingFigures:
    """Timing of all lines of one language.

    Attributes:
        fit_share: share of dubbed segments whose speed-up is within its limit and whose overrun passes
            (the segments whose speed-up and overrun verdicts are both ``pass``).
        over_limit: ids of the segments whose speed-up is above their limit (warn or fail).
        fit_share_of_speech: the same weighted by source segment duration.
        max_stretch_ratio / max_overrun_s / max_overlap_s: worst line.
        subtitle_outside_s: the largest distance (s) a subtitle cue lies outside ``[0, duration_s]``.
    """

    segments: list[SegmentTiming]
    fit_share: float | None
    over_limit: list[int]
    fit_share_of_speech: float | None
    max_stretch_ratio: float | None
    max_overrun_s: float | None
    max_overlap_s: float
    subtitle_outside_s: float
    subtitle_cues: int
    duration_s: float

    def as_dict(self) -> dict:
        return asdict(self)


def timing_figures(script: Script, language: str, duration_s: float, thresholds: Thresholds) -> TimingFigures:
    """Timing of ``language``'s lines of ``script`` in a video of ``duration_s`` seconds, each segment
    judged by ``thresholds`` (stretch_ratio, overrun_s, overlap_s)."""
    rows: list[SegmentTiming] = []
    for s in script.segments:
        t = s.targets.get(language)
        if t is None:
            continue
        f = t.fit
        rows.append(SegmentTiming(
            id=s.id, speaker=s.speaker, start_s=s.start_s, end_s=s.end_s,
            placed_start_s=f.placed_start_s if f else None, placed_end_s=f.placed_end_s if f else None,
            stretch_ratio=round(f.stretch_ratio, 4) if f else None,
            tts_rate=round(f.tts_rate, 4) if f else None, natural_speed=round(f.natural_speed, 4) if f else None,
            speedup=f.speedup if f else None,
            speedup_limit=(t.redo.base_speedup_limit if t.redo is not None else
                           (getattr(f, "max_stretch", None) or thresholds.stretch_ratio.pass_at)) if f else None,
            overrun_s=round(f.overrun_s, 4) if f else None,
            overlap_s=0.0, text=t.text, delayed_s=round(f.delayed_s, 4) if f else 0.0, redo=t.redo.model_dump() if t.redo is not None else None))
    placed = sorted((r for r in rows if r.placed_start_s is not None), key=lambda r: r.placed_start_s)
    for a, b in zip(placed, placed[1:]):
        a.overlap_s = round(max(0.0, a.placed_end_s - b.placed_start_s), 4)
    for r in rows:
        st = thresholds.stretch_ratio
        if r.speedup_limit is not None and r.speedup_limit != st.pass_at:  # this line's own limit, same warn margin
            margin = None if st.warn_at is None else st.warn_at - st.pass_at
            st = st.model_copy(update={"pass_at": r.speedup_limit, "warn_at": None if margin is None else r.speedup_limit + margin})
        checks = {"speed-up": (st, r.speedup),
                  "overrun": (thresholds.overrun_s, r.overrun_s),
                  "overlap with the next line": (thresholds.overlap_s, r.overlap_s)}
        vs = []
        for name, (th, value) in checks.items():
            v = th.judge(value)
            vs.append(v)
            if v in ("warn", "fail"):
                r.reasons.append(f"{name} {value:g} {th.unit} ({v}: {th.describe()})")
        if r.placed_start_s is None:
            vs.append("fail")
            r.reasons.append("no speech was synthesized for this line")
        r.verdict = worst(vs)
    fitted = [r for r in rows if r.stretch_ratio is not None]
    ok = [r for r in fitted if r.speedup <= (r.speedup_limit or thresholds.stretch_ratio.pass_at) + 1e-6
          and thresholds.overrun_s.judge(r.overrun_s) == "pass"]
    total_s = sum(r.end_s - r.start_s for r in fitted)
    cues = target_cues(script, language)
    outside = max([max(0.0, c.end_s - duration_s, -c.start_s) for c in cues], default=0.0)
    return TimingFigures(
        segments=rows,
        fit_share=round(len(ok) / len(fitted), 4) if fitted else None,
        over_limit=[r.id for r in fitted if r.speedup > (r.speedup_limit or thresholds.stretch_ratio.pass_at) + 1e-6],
        fit_share_of_speech=round(sum(r.end_s - r.start_s for r in ok) / total_s, 4) if total_s > 0 else None,
        max_stretch_ratio=max((r.stretch_ratio for r in fitted), default=None),
        max_overrun_s=max((r.overrun_s for r in fitted), default=None),
        max_overlap_s=max((r.overlap_s for r in rows), default=0.0),
        subtitle_outside_s=round(outside, 3), subtitle_cues=len(cues), duration_s=round(duration_s, 3),
    )
