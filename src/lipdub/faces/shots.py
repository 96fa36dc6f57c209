"""Shot boundaries with PySceneDetect's content detector (HSV-difference cut detection)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..contracts.faces import Shot
from ..errors import InputError

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
