"""Stage 10, faces: shots, face tracks, 478 dense landmarks, head pose, mouth opening, skip flags,
and which track is speaking (DESIGN.md section 1).

Data model shared by the lip-sync stage, the compositor and the quality report. Frame indices are
0-based decode order; pixel coordinates are in the *displayed* frame (rotation metadata applied).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

N_LANDMARKS = 478  # MediaPipe Face Mesh with refined irises (468 face + 10 iris points)

# Skip reasons (bitmask in FaceTrack.skip): frames that must not be lip-synced.
SKIP_NO_FACE = 1  # interpolated across a detection gap (no face measured on this frame)
SKIP_YAW = 2  # |yaw| above the limit
SKIP_SMALL = 4  # face smaller than the minimum size
SKIP_LOW_CONFIDENCE = 8  # landmark confidence too low (occlusion, blur)
SKIP_REASONS = {SKIP_NO_FACE: "no face", SKIP_YAW: "head turned", SKIP_SMALL: "face too small", SKIP_LOW_CONFIDENCE: "low confidence"}


@dataclass(frozen=True)
class Shot:
    """Frames ``start_frame`` (inclusive) to ``end_frame`` (exclusive) between two cuts."""

    start_frame: int
    end_frame: int


@dataclass
class FaceTrack:
    """One face followed through consecutive frames of one shot (never across a cut).

    Arrays have one row per frame in ``frames`` (consecutive indices, gaps bridged):

    * ``frames``: int32 ``(T,)``
    * ``boxes``: float32 ``(T, 4)`` x0, y0, x1, y1 in pixels
    * ``landmarks_raw``: float32 ``(T, 478, 3)`` x, y in pixels, z in pixels (MediaPipe's relative
      depth scaled by the frame width) as measured (interpolated across gaps)
    * ``landmarks``: float32 ``(T, 478, 3)`` the same, smoothed in time (One Euro filter)
    * ``confidence``: float32 ``(T,)`` in [0, 1]; 0 on interpolated frames
    * ``pose_deg``: float32 ``(T, 3)`` yaw, pitch, roll in degrees (solvePnP on a canonical face)
    * ``mouth_opening``: float32 ``(T,)`` inner-lip gap / inter-ocular distance
    * ``skip``: uint8 ``(T,)`` bitmask of ``SKIP_*`` reasons (0 = may be lip-synced)
    """

    id: int
    shot: int
    frames: np.ndarray
    boxes: np.ndarray
    landmarks_raw: np.ndarray
    landmarks: np.ndarray
    confidence: np.ndarray
    pose_deg: np.ndarray
    mouth_opening: np.ndarray
    skip: np.ndarray

    @property
    def start_frame(self) -> int:
        return int(self.frames[0])

    @property
    def end_frame(self) -> int:
        """Exclusive end frame."""
        return int(self.frames[-1]) + 1

    def index_of(self, frame: int) -> int | None:
        """Row of ``frame`` in this track's arrays, or None when the track does not cover it."""
        i = frame - self.start_frame
        return i if 0 <= i < len(self.frames) else None


@dataclass
class SpeakerMatch:
    """Which face tracks a diarized speaker is: ``tracks``, at most one per shot (empty:
    off-screen), ``track`` the first of them (None: off-screen), with a confidence in [0, 1];
    ``correlation_by_track`` the matching score per track, ``cues_by_track`` what it is made of
    (:func:`lipdub.faces.speakers.match_speakers`: ``sync``, ``activity``)."""

    speaker: str
    track: int | None
    confidence: float
    correlation_by_track: dict[int, float] = field(default_factory=dict)
    cues_by_track: dict[int, dict[str, float | None]] = field(default_factory=dict)
    tracks: list[int] = field(default_factory=list)


@dataclass
class FaceAnalysis:
    """The face analysis of one video. ``fps`` is ``"num/den"``."""

    frame_count: int
    fps: str
    width: int
    height: int
    rotation_deg: int
    shots: list[Shot]
    tracks: list[FaceTrack]
    details: dict = field(default_factory=dict)

    def tracks_at(self, frame: int) -> list[FaceTrack]:
        return [t for t in self.tracks if t.index_of(frame) is not None]

    def save(self, directory: str | os.PathLike) -> list[Path]:
        """Write ``faces.json`` (index) and one ``track_XXXX.npz`` per track; returns the paths."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        for t in self.tracks:
            p = d / f"track_{t.id:04d}.npz"
            tmp = d / f".track_{t.id:04d}.tmp.npz"
            np.savez_compressed(tmp, **{k: v for k, v in asdict(t).items() if isinstance(v, np.ndarray)})
            os.replace(tmp, p)
            paths.append(p)
        index = {
            "frame_count": self.frame_count, "fps": self.fps, "width": self.width, "height": self.height,
            "rotation_deg": self.rotation_deg, "shots": [asdict(s) for s in self.shots],
            "tracks": [{"id": t.id, "shot": t.shot, "start_frame": t.start_frame, "end_frame": t.end_frame} for t in self.tracks],
            "details": self.details,
        }
        idx = d / "faces.json"
        tmp = d / ".faces.json.tmp"
        tmp.write_text(json.dumps(index, indent=2))
        os.replace(tmp, idx)
        return [idx, *paths]

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "FaceAnalysis":
        d = Path(directory)
        index = json.loads((d / "faces.json").read_text())
        tracks = []
        for t in index["tracks"]:
            with np.load(d / f"track_{t['id']:04d}.npz") as z:
                tracks.append(FaceTrack(id=t["id"], shot=t["shot"], **{k: z[k] for k in z.files}))
        return cls(frame_count=index["frame_count"], fps=index["fps"], width=index["width"], height=index["height"],
                   rotation_deg=index["rotation_deg"], shots=[Shot(**s) for s in index["shots"]], tracks=tracks,
                   details=index.get("details", {}))
