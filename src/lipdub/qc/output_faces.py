"""The face analysis of a lip-synced output without analysing the whole output again.

A lip-synced dub has the source's frames everywhere the lip-sync did not composite a mouth (the same
pictures, re-encoded), so its face tracks are the source's: same shots, same tracks, same boxes. Only
the frames the lip-sync changed (the plans of the lipsync stage, ``lipsync/<lang>/plans.json``) are
measured again on the output: Face Mesh on a crop around the source's landmark box of that frame
(:meth:`lipdub.faces.landmarks.FaceLandmarker.measure_at`, no detection pass); a changed frame where
no confirmed face is found counts as not measured (interpolated, ``SKIP_NO_FACE``), as in a full
analysis. Each changed track is then rebuilt exactly as the tracker builds one
(:func:`lipdub.faces.tracking.build_track`: One Euro smoothing, pose, mouth opening, skip flags).

``bench/qc_report.py`` compares the report's sync figures from this analysis with those from a full
:func:`lipdub.faces.analyze.analyze_video` of the output.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..contracts.faces import SKIP_NO_FACE, FaceAnalysis, FaceTrack
from ..faces.landmarks import FaceLandmarker, FaceObservation
from ..faces.tracking import TrackOptions, build_track
from ..media.colour import Picture
from ..media.prefetch import prefetched
from .visual import iter_selected_frames


def changed_frames(plans: dict) -> dict[int, np.ndarray]:
    """Track id -> int64 frames a lip-sync changed, from a lipsync stage's ``plans.json`` content."""
    out: dict[int, np.ndarray] = {}
    for p in plans.get("plans") or []:
        frames = np.asarray(p.get("frames") or [], np.int64)
        if len(frames):
            out[int(p["track"])] = np.union1d(out.get(int(p["track"]), np.zeros(0, np.int64)), frames)
    return out


def remeasured_frames(source: FaceAnalysis, changed: dict[int, np.ndarray]) -> dict[int, list[int]]:
    """Frame -> ids of the source's tracks on it that the lip-sync changed there: the frames
    :func:`output_analysis` measures again."""
    by_id = {t.id: t for t in source.tracks}
    wanted: dict[int, list[int]] = {}
    for tid, frames in changed.items():
        track = by_id.get(tid)
        if track is None:
            continue
        for f in frames:
            if track.index_of(int(f)) is not None:
                wanted.setdefault(int(f), []).append(tid)
    return wanted


def output_analysis(output: str | Path, source: FaceAnalysis, changed: dict[int, np.ndarray], frame_times_s: np.ndarray,
                    options: TrackOptions | None = None, frames=None, wanted: dict[int, list[int]] | None = None) -> FaceAnalysis:
    """The face analysis of ``output`` (a lip-synced video of the source ``source`` describes).

    Args:
        output: the output video (same frame count and size as the source).
        source: the source's face analysis (the faces stage).
        changed: track id -> frames the lip-sync changed (:func:`changed_frames`).
        frame_times_s: the output's frame times (s), float ``(n_frames,)``.
        options: the tracker's options (default: the faces stage's).
        frames: the output's frames ``(index, rgb or Picture)`` at :func:`remeasured_frames` (at least), in
            increasing order, decoded by the caller (one decode shared with the SSIM,
            :func:`lipdub.media.prefetch.fanned_out`); None: decoded here. Closed here.
        wanted: :func:`remeasured_frames` ``(source, changed)`` when the caller has it (it picked the
            frames to decode from it); None: computed here.

    Returns:
        A :class:`FaceAnalysis` with the source's shots and tracks, the changed tracks rebuilt from
        the output's measured landmarks; ``details['remeasured_frames']`` counts the frames measured.

    Raises:
        InputError: the output cannot be decoded.
    """
    opt = options or TrackOptions()
    by_id = {t.id: t for t in source.tracks}
    wanted = remeasured_frames(source, changed) if wanted is None else wanted
    measured = {tid: {} for tid in changed if tid in by_id}
    try:
        if wanted:
            if frames is None:
                frames = prefetched(iter_selected_frames(output, set(wanted), pictures=True))  # decoded ahead, beside Face Mesh
            with FaceLandmarker(max_faces=1) as lmk:
                for index, picture in frames:
                    for tid in wanted.get(index, ()):
                        track = by_id[tid]
                        measured[tid][index] = _measure(lmk, picture, track.boxes[track.index_of(index)])
    finally:
        if frames is not None:
            frames.close()
    tracks = [_rebuilt(t, measured[t.id], frame_times_s, source, opt) if measured.get(t.id) else t for t in source.tracks]
    details = {**source.details, "remeasured_frames": int(sum(len(m) for m in measured.values())),
               "method": "the source's face tracks; the frames the lip-sync changed measured again on the output"}
    return replace(source, tracks=tracks, details=details)


def _measure(lmk: FaceLandmarker, frame, box_px: np.ndarray) -> FaceObservation | None:
    """:meth:`FaceLandmarker.measure_at` of the face at ``box_px`` on ``frame``: an RGB array, or a
    :class:`lipdub.media.colour.Picture` of which only the region the landmarker reads is converted
    (:meth:`FaceLandmarker.crop_bounds`; the observation is shifted back to frame pixels)."""
    if not isinstance(frame, Picture):
        return lmk.measure_at(frame, box_px)
    x0, y0, side = lmk.crop_bounds(box_px)
    rgb, ox, oy = frame.region(x0, y0, x0 + side, y0 + side)
    if rgb.size == 0:
        return None
    shift = np.array([ox, oy, ox, oy], np.float64)
    obs = lmk.measure_at(rgb, np.asarray(box_px, np.float64) - shift)
    if obs is None:
        return None
    lm = obs.landmarks_px.copy()
    lm[:, 0] += ox
    lm[:, 1] += oy
    return replace(obs, box_px=(obs.box_px + shift.astype(np.float32)).astype(np.float32), landmarks_px=lm)


def _rebuilt(track: FaceTrack, obs: dict, frame_times_s: np.ndarray, source: FaceAnalysis, opt: TrackOptions) -> FaceTrack:
    """``track`` with the rows of ``obs`` (frame -> observation or None) replaced by the output's."""
    measured = (track.skip & SKIP_NO_FACE) == 0
    boxes = track.boxes.astype(np.float64).copy()
    lms = track.landmarks_raw.astype(np.float64).copy()
    conf = track.confidence.astype(np.float32).copy()
    for frame, o in obs.items():
        r = track.index_of(frame)
        if o is None:
            measured[r] = False
            continue
        measured[r] = True
        boxes[r], lms[r], conf[r] = o.box_px, o.landmarks_px, o.confidence
    if not measured.any():  # no face confirmed anywhere on the track: nothing measured
        return replace(track, skip=track.skip | SKIP_NO_FACE)
    times = np.asarray(frame_times_s, np.float64)[track.frames]
    return build_track(track.id, track.shot, track.start_frame, boxes, lms, measured, conf, times, source.width, source.height, opt)
