"""Viseme check of a lip-synced output (DESIGN.md section 4): do the lips close on p, b, m and open on
open vowels, where the dub says them?

For every dub line, from the phoneme timings of its speech (the TTS's, or aligned by
:mod:`lipdub.lipsync.align`) and the mouth opening measured on the *output* frames (inner-lip gap
13-14 over the outer eye-corner distance 33-263, :func:`lipdub.faces.tracking.mouth_opening`, of the
*measured* landmarks ``FaceTrack.landmarks_raw``: the smoothed track lags the picture by about a frame
while the mouth moves, and a p lasts two or three frames), each frame read at the middle of its display
interval:

* a bilabial stop or nasal (p, b, m; the p of ``pf`` too) counts as *closed* when the smallest opening
  over the frames of its span (widened by ``tolerance_s`` either side) is at most ``closed_max_iod``;
* an open vowel (:func:`lipdub.lipsync.visemes.is_open_vowel`: a, ɑ, ɐ, æ, ɒ) counts as *open* when the
  largest opening over its frames is at least ``open_min_iod``.

Frames where the face was not measured (``skip`` has ``SKIP_NO_FACE``) or outside the track are not
used; a phoneme with no usable frame is not counted. Default thresholds follow the measure's scale
(closed lips read 0.00-0.03 from landmark noise, vowels in running speech 0.05-0.25), not any clip.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..contracts.faces import SKIP_NO_FACE, FaceTrack
from ..errors import InputError
from ..faces.tracking import mouth_opening
from ..lipsync.visemes import as_timings, is_open_vowel, stop_closure_starts, viseme_segments
from ..media.probe import display_centres

CLOSED_MAX_IOD = 0.035
OPEN_MIN_IOD = 0.07
TOLERANCE_S = 0.040


@dataclass
class LineVisemes:
    """Viseme check of one dub line (``start_s``/``end_s`` on the output timeline).

    ``bilabial_closed_share`` / ``open_vowel_open_share`` are None when the line has no such phoneme."""

    start_s: float
    end_s: float
    n_bilabial: int
    n_bilabial_closed: int
    n_open_vowel: int
    n_open_vowel_open: int
    text: str = ""

    @property
    def bilabial_closed_share(self) -> float | None:
        return self.n_bilabial_closed / self.n_bilabial if self.n_bilabial else None

    @property
    def open_vowel_open_share(self) -> float | None:
        return self.n_open_vowel_open / self.n_open_vowel if self.n_open_vowel else None


@dataclass
class VisemeCheck:
    """The check over a whole output: per-line results and the totals (shares None when no such
    phoneme was measurable), with the thresholds used."""

    lines: list[LineVisemes] = field(default_factory=list)
    closed_max_iod: float = CLOSED_MAX_IOD
    open_min_iod: float = OPEN_MIN_IOD
    tolerance_s: float = TOLERANCE_S
    track: int | None = None

    @property
    def n_bilabial(self) -> int:
        return sum(l.n_bilabial for l in self.lines)

    @property
    def n_open_vowel(self) -> int:
        return sum(l.n_open_vowel for l in self.lines)

    @property
    def bilabial_closed_share(self) -> float | None:
        n = self.n_bilabial
        return sum(l.n_bilabial_closed for l in self.lines) / n if n else None

    @property
    def open_vowel_open_share(self) -> float | None:
        n = self.n_open_vowel
        return sum(l.n_open_vowel_open for l in self.lines) / n if n else None

    def as_dict(self) -> dict:
        """JSON-ready figures (for the report)."""
        return {
            "track": self.track, "closed_max_iod": self.closed_max_iod, "open_min_iod": self.open_min_iod,
            "tolerance_s": self.tolerance_s, "n_bilabial": self.n_bilabial, "bilabial_closed_share": self.bilabial_closed_share,
            "n_open_vowel": self.n_open_vowel, "open_vowel_open_share": self.open_vowel_open_share,
            "lines": [{**asdict(l), "bilabial_closed_share": l.bilabial_closed_share,
                       "open_vowel_open_share": l.open_vowel_open_share} for l in self.lines],
        }


def _span_values(t: np.ndarray, values: np.ndarray, start_s: float, end_s: float, tol_s: float, frame_s: float) -> np.ndarray:
    """Values of the frames in ``[start - tol, end + tol)``; a span shorter than a frame gets at least
    the frame nearest its middle."""
    sel = np.flatnonzero((t >= start_s - tol_s) & (t < end_s + tol_s))
    if len(sel) == 0 and len(t):
        mid = 0.5 * (start_s + end_s)
        i = int(np.argmin(np.abs(t - mid)))
        if abs(t[i] - mid) <= 0.5 * (end_s - start_s) + tol_s + 0.5 * frame_s:
            sel = np.array([i])
    v = values[sel]
    return v[np.isfinite(v)]


def viseme_check(
    track: FaceTrack,
    frame_times_s: np.ndarray,
    phonemes,
    lines=None,
    *,
    audio: np.ndarray | None = None,
    sample_rate_hz: int | None = None,
    closed_max_iod: float = CLOSED_MAX_IOD,
    open_min_iod: float = OPEN_MIN_IOD,
    tolerance_s: float = TOLERANCE_S,
) -> VisemeCheck:
    """Check the output mouth of ``track`` against the dub's ``phonemes``.

    Args:
        track: the face track of the output's face analysis (the re-animated speaker).
        frame_times_s: float ``(frame_count,)`` presentation time of every output frame (seconds).
        phonemes: the dub's phoneme timings on the output timeline (``(start_s, end_s, phoneme)``,
            :class:`~lipdub.contracts.synthesize.PhonemeTiming` or dicts with those keys).
        lines: the dub lines ``(start_s, end_s)`` or ``(start_s, end_s, text)`` to report apart (a
            phoneme belongs to the line containing its middle); None: one line over all phonemes.
        audio, sample_rate_hz: the dub's speech on the output timeline (optional): a p or b then counts
            from its closure, the silence before its burst (:func:`lipdub.lipsync.visemes.stop_closure_starts`),
            as the planner does; without it, from its event.
        closed_max_iod, open_min_iod: thresholds on the mouth opening (inter-ocular units).
        tolerance_s: widening of each phoneme's span, seconds.

    Returns:
        :class:`VisemeCheck`.

    Raises:
        InputError: frame times do not cover the track; thresholds not 0 <= closed < open.
    """
    t_all = np.asarray(frame_times_s, np.float64)
    if track.end_frame > len(t_all):
        raise InputError(f"frame times cover {len(t_all)} frames but track {track.id} ends at frame {track.end_frame}",
                         "pass the output video's frame times")
    if not 0 <= closed_max_iod < open_min_iod:
        raise InputError(f"viseme check thresholds closed {closed_max_iod} / open {open_min_iod} must satisfy 0 <= closed < open",
                         "use the defaults")
    t = display_centres(t_all, track.frames)
    measured = (np.asarray(track.skip) & SKIP_NO_FACE) == 0
    opening = np.where(measured, mouth_opening(track.landmarks_raw).astype(np.float64), np.nan)
    frame_s = float(np.median(np.diff(t))) if len(t) > 1 else 0.04
    seg = viseme_segments(phonemes)
    if audio is not None and sample_rate_hz:
        seg = stop_closure_starts(seg, audio, int(sample_rate_hz))
    timings = as_timings(phonemes)
    spans = [(float(l[0]), float(l[1]), str(l[2]) if len(l) > 2 else "") for l in lines] if lines else \
        ([(timings[0][0], timings[-1][1], "")] if timings else [])
    out = [LineVisemes(s, e, 0, 0, 0, 0, text) for s, e, text in spans]
    for k in range(len(seg)):
        s, e, ph = float(seg.start_s[k]), float(seg.end_s[k]), seg.phoneme[k]
        line = next((i for i, (a, b, _x) in enumerate(spans) if a <= 0.5 * (s + e) < b), None)
        if line is None:
            continue
        if seg.closure[k]:
            v = _span_values(t, opening, s, e, tolerance_s, frame_s)
            if len(v):
                out[line].n_bilabial += 1
                out[line].n_bilabial_closed += int(v.min() <= closed_max_iod)
        elif is_open_vowel(ph):
            v = _span_values(t, opening, s, e, tolerance_s, frame_s)
            if len(v):
                out[line].n_open_vowel += 1
                out[line].n_open_vowel_open += int(v.max() >= open_min_iod)
    return VisemeCheck(out, closed_max_iod, open_min_iod, tolerance_s, track.id)
