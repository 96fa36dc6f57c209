"""Shot boundaries: PySceneDetect's content detector (HSV-difference cut detection), and jump cuts
found on the faces.

A jump cut (two takes of the same set-up spliced, or a clip cut back into itself) changes little of
the picture: PySceneDetect's ``content_val`` rises from about 2 to 10 at such a cut in the shared
``th_retalking_face5`` clip cut back to its start, far below its threshold of 27, while camera or
head motion alone reaches 13-17 in other shared clips. The face, though, jumps: its landmarks move a
tenth of its inter-ocular distance or more in one frame, several times more than in the frames
around, and stay there. :func:`find_jump_cuts` finds those frames on the face tracks.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..contracts.faces import SKIP_NO_FACE, FaceAnalysis, Shot
from ..errors import InputError
from .tracking import LM_EYE_OUTER_IMAGE_LEFT, LM_EYE_OUTER_IMAGE_RIGHT

JUMP_MIN_IOD = 0.10  # a face moving a tenth of its inter-ocular distance in one frame ...
JUMP_MIN_RATIO = 8.0  # ... eight times the median motion of the 5 frames each side ...
JUMP_HOLD = 0.5  # ... and staying there (frame t+1 from t-1 at least half the jump: a one-frame mesh glitch comes back)
JUMP_CONTEXT = 5

log = logging.getLogger(__name__)


def detect_shots(path: str | Path, frame_count: int, threshold: float = 27.0, min_scene_len_frames: int = 15) -> list[Shot]:
    """Split a video into shots.

    Uses ``scenedetect.detect`` with ``ContentDetector(threshold, min_scene_len)``; the defaults are
    PySceneDetect's own (threshold 27, minimum scene length 15 frames). Frames are read by PySceneDetect
    in decode order, the same indices as :func:`lipdub.faces.analyze.iter_frames`.

    Args:
        path: the video.
        frame_count: frames in the video (from ingest); the last shot ends there.

    Returns:
        Shots covering ``[0, frame_count)`` in order; one shot when there is no cut.

    Raises:
        InputError: PySceneDetect cannot read the video.
    """
    from scenedetect import ContentDetector, detect

    try:
        scenes = detect(str(path), ContentDetector(threshold=threshold, min_scene_len=min_scene_len_frames))
    except Exception as exc:  # scenedetect raises its own error types per backend
        raise InputError(f"shot detection could not read {path} ({exc})", "check the file plays; re-export it if not") from exc
    starts = [int(getattr(s[0], "frame_num", None) if getattr(s[0], "frame_num", None) is not None else s[0].get_frames()) for s in scenes[1:]]
    cuts = sorted({f for f in starts if 0 < f < frame_count})
    bounds = [0, *cuts, frame_count]
    return [Shot(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def find_jump_cuts(analysis: FaceAnalysis, frame_times_s: np.ndarray, min_scene_len_frames: int = 15) -> list[int]:
    """Frames where a face track jumps: the first frame of a new shot that the content detector missed.

    Per track, over consecutive measured frames (not bridged), the motion of frame ``t`` is the
    median over the 478 raw landmarks of their displacement from ``t - 1`` over the inter-ocular
    distance, divided by the frame's duration in nominal frames (a variable-frame-rate gap is no
    jump). ``t`` is a jump cut when that motion is at least :data:`JUMP_MIN_IOD`, at least
    :data:`JUMP_MIN_RATIO` times the median motion of the :data:`JUMP_CONTEXT` frames each side, and
    ``t + 1`` is still at least :data:`JUMP_HOLD` of it away from ``t - 1``. Measured on the shared
    clips: the cut of ``th_retalking_face5`` cut back to its start moves 0.145 (15.9 times its
    surroundings), a jump cut in ``th_latentsync_demo2`` (frame 372) 0.139 (13.1 times); the largest
    ratio in the clips without a cut (face5, th2, voxceleb 00086 and 00015, demo1, the crowd) is
    5.2 (th2, 0.067).

    Args:
        analysis: the face analysis (its shots and tracks).
        frame_times_s: presentation time of each frame.
        min_scene_len_frames: no cut closer than this to a shot boundary or another cut.

    Returns:
        Sorted frame indices (the first frame after each jump).
    """
    t = np.asarray(frame_times_s, np.float64)
    nominal = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    found: set[int] = set()
    for track in analysis.tracks:
        lm = track.landmarks_raw[:, :, :2].astype(np.float64)
        iod = np.linalg.norm(lm[:, LM_EYE_OUTER_IMAGE_LEFT] - lm[:, LM_EYE_OUTER_IMAGE_RIGHT], axis=1)
        measured = (track.skip & SKIP_NO_FACE) == 0
        step = np.median(np.linalg.norm(np.diff(lm, axis=0), axis=2), axis=1) / np.maximum(iod[1:], 1e-6)
        frames = track.frames.astype(np.int64)
        dur = np.maximum(np.diff(t[frames]) / nominal, 1.0) if len(frames) > 1 else np.ones(0)
        motion = step / dur  # motion[i]: from row i to row i + 1
        ok = measured[1:] & measured[:-1]
        for i in np.flatnonzero(ok & (motion >= JUMP_MIN_IOD)):
            around = np.r_[motion[max(0, i - JUMP_CONTEXT):i], motion[i + 1:i + 1 + JUMP_CONTEXT]]
            if len(around) == 0 or motion[i] < JUMP_MIN_RATIO * max(float(np.median(around)), 1e-6):
                continue
            if i + 2 < len(lm) and measured[i + 2]:
                held = float(np.median(np.linalg.norm(lm[i + 2] - lm[i], axis=1))) / max(iod[i + 1], 1e-6)
                if held < JUMP_HOLD * step[i]:
                    continue
            found.add(int(frames[i + 1]))
    bounds = sorted({s.start_frame for s in analysis.shots} | {analysis.frame_count})
    cuts: list[int] = []
    for f in sorted(found):
        if all(abs(f - b) >= min_scene_len_frames for b in [*bounds, *cuts]):
            cuts.append(f)
    return cuts


def split_shots(shots: list[Shot], cuts: list[int]) -> list[Shot]:
    """``shots`` split at the frames ``cuts`` (each starts a new shot)."""
    bounds = sorted({s.start_frame for s in shots} | {s.end_frame for s in shots} | set(cuts))
    return [Shot(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
