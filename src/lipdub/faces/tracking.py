"""Face tracks within one shot: frame-to-frame linking, gap bridging, smoothing, head pose, skip flags.

* **Linking**: on each frame the live tracks and the new observations are matched by the Hungarian
  algorithm (``scipy.optimize.linear_sum_assignment``) on a cost made of the distance of the box
  centre from its constant-velocity prediction (in units of the track's face size), 1 - box IoU and
  the mean landmark distance (in face sizes). Pairs whose centre is more than ``max_jump`` face sizes
  (plus 0.1 per missed frame) from the prediction or whose size changed by more than a factor 1.5 are
  not allowed. Unmatched observations start new tracks.
* **Gaps**: a track not seen for at most ``max_gap_frames`` frames is continued when the face is seen
  again; the missing rows are linearly interpolated (boxes and landmarks), with confidence 0 and
  ``SKIP_NO_FACE``. A face that is away longer (leaves the picture and re-enters, or is hidden) gets a
  **new track**: identity across long gaps is not re-established (no face recognition here).
* Tracks never cross a shot boundary (one :class:`ShotTracker` per shot) and tracks shorter than
  ``min_track_frames`` are dropped.
* **Smoothing**: One Euro filter (Casiez, Roussel, Vogel, "1 Euro Filter: A Simple Speed-based Low-pass
  Filter for Noisy Input in Interactive Systems", CHI 2012) on the landmarks, in units of the track's
  median face height so the parameters do not depend on the resolution.
* **Head pose**: ``cv2.solvePnP`` (SQPnP) of seven landmarks (the 6 points of the head-pose literature:
  nose tip, chin, outer eye corners, mouth corners, plus the nose bridge) against the same vertices of
  MediaPipe's canonical face model (``canonical_face_model.obj``, not shipped in the wheel, so the 7
  vertices are copied below), pinhole camera with focal length = frame width in pixels and principal
  point at the image centre, no distortion.
  Angles (degrees) come from the rotated face axes, so their signs are unambiguous:

  - yaw: positive = the face turned towards the camera's right (the subject's left), 0 = frontal;
  - pitch: positive = the face turned down (chin towards the chest);
  - roll: positive = the face rotated clockwise in the displayed image.
* **Mouth opening**: 3D distance of inner-lip landmarks 13 (upper) and 14 (lower) / 3D distance of the
  outer eye corners 33 and 263 (MediaPipe Face Mesh topology), on the smoothed landmarks. Using x, y and
  z makes the ratio less sensitive to yaw than the image-plane distance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from ..contracts.faces import (
    N_LANDMARKS,
    SKIP_LOW_CONFIDENCE,
    SKIP_NO_FACE,
    SKIP_SMALL,
    SKIP_YAW,
    FaceTrack,
)
from ..errors import ConfigError
from .landmarks import FaceObservation, box_iou

log = logging.getLogger(__name__)

# MediaPipe Face Mesh landmark ids (canonical_face_model_uv_visualization.png of the mediapipe repo).
LM_NOSE_TIP = 1
LM_CHIN = 152
LM_EYE_OUTER_IMAGE_LEFT = 33  # the subject's right eye, outer corner
LM_EYE_OUTER_IMAGE_RIGHT = 263  # the subject's left eye, outer corner
LM_MOUTH_IMAGE_LEFT = 61
LM_MOUTH_IMAGE_RIGHT = 291
LM_INNER_LIP_UPPER = 13
LM_INNER_LIP_LOWER = 14
LM_NOSE_BRIDGE = 168
POSE_LANDMARKS = (
    LM_NOSE_TIP, LM_CHIN, LM_EYE_OUTER_IMAGE_LEFT, LM_EYE_OUTER_IMAGE_RIGHT, LM_MOUTH_IMAGE_LEFT,
    LM_MOUTH_IMAGE_RIGHT, LM_NOSE_BRIDGE,
)
# Vertices of MediaPipe's canonical face model (mediapipe/modules/face_geometry/data/
# canonical_face_model.obj, Apache-2.0; centimetres, x right, y up, z towards the viewer) for the ids
# above, converted to OpenCV's camera axes (x right, y down, z away from the camera: y and z negated)
# so that a frontal, upright face has the rotation R = identity.
POSE_MODEL_POINTS = np.array(
    [
        [0.0, -1.126865, 7.475604],  # 1 nose tip
        [0.0, -9.403378, 4.264492],  # 152 chin
        [-4.445859, 2.663991, 3.173422],  # 33 outer eye corner, image left
        [4.445859, 2.663991, 3.173422],  # 263 outer eye corner, image right
        [-2.456206, -4.342621, 4.283884],  # 61 mouth corner, image left
        [2.456206, -4.342621, 4.283884],  # 291 mouth corner, image right
        [0.0, 3.271027, 5.236015],  # 168 nose bridge between the eyes
    ],
    np.float64,
) * np.array([1.0, -1.0, -1.0])


class OneEuroFilter:
    """One Euro filter (Casiez, Roussel, Vogel, CHI 2012), vectorised over an array of any shape.

    Args:
        min_cutoff_hz: cutoff frequency at zero speed (lower = less jitter, more lag when still).
        beta: cutoff increase per unit of speed (signal units per second): higher = less lag in motion.
        d_cutoff_hz: cutoff of the low-pass filter on the speed estimate.

    Call with successive samples ``x`` (same shape each time) and their times ``t_s`` (seconds).
    """

    def __init__(self, min_cutoff_hz: float = 1.0, beta: float = 0.0, d_cutoff_hz: float = 1.0) -> None:
        if min_cutoff_hz <= 0 or d_cutoff_hz <= 0 or beta < 0:
            raise ConfigError("One Euro filter cutoffs must be > 0 and beta >= 0", "pass e.g. min_cutoff_hz=1, beta=5")
        self.min_cutoff_hz, self.beta, self.d_cutoff_hz = min_cutoff_hz, beta, d_cutoff_hz
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    @staticmethod
    def _alpha(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray | float:
        tau = 1.0 / (2 * np.pi * cutoff_hz)
        return 1.0 / (1.0 + tau / dt_s)

    def __call__(self, x: np.ndarray, t_s: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None or self._t is None or t_s <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t_s
            return x.copy()
        dt = t_s - self._t
        dx = (x - self._x) / dt
        a_d = self._alpha(self.d_cutoff_hz, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = self.min_cutoff_hz + self.beta * np.abs(self._dx)
        a = self._alpha(cutoff, dt)
        self._x = a * x + (1 - a) * self._x
        self._t = t_s
        return self._x.copy()


def head_pose_deg(landmarks_px: np.ndarray, width: int, height: int) -> np.ndarray:
    """Yaw, pitch, roll in degrees of each face (signs in the module docstring).

    Args:
        landmarks_px: float ``(T, 478, 3)`` or ``(478, 3)`` landmarks in frame pixels (x, y used).
        width, height: frame size in pixels (camera: f = width, principal point at the centre).
            Known limit: on a crop of a larger picture the true focal length is longer, and yaw
            reads low (a 3/4 view cropped from TV: 25 deg, where a Kabsch fit of the 3D landmarks
            gives 34 deg).

    Returns:
        float32 ``(T, 3)`` (or ``(3,)``) yaw, pitch, roll; NaN where solvePnP fails.
    """
    lm = np.asarray(landmarks_px, np.float64)
    single = lm.ndim == 2
    lm = lm[None] if single else lm
    cam = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], np.float64)
    out = np.full((len(lm), 3), np.nan, np.float32)
    idx = list(POSE_LANDMARKS)
    for i, pts in enumerate(lm):
        img = np.ascontiguousarray(pts[idx, :2]).reshape(-1, 1, 2)
        try:
            ok, rvec, _tvec = cv2.solvePnP(POSE_MODEL_POINTS, img, cam, None, flags=cv2.SOLVEPNP_SQPNP)
        except cv2.error:
            ok = False
        if not ok:
            continue
        rot, _ = cv2.Rodrigues(rvec)
        fwd = -rot[:, 2]  # where the face looks (model -z, towards the camera when frontal)
        yaw = np.degrees(np.arctan2(fwd[0], -fwd[2]))
        pitch = np.degrees(np.arctan2(fwd[1], np.hypot(fwd[0], fwd[2])))
        roll = np.degrees(np.arctan2(rot[1, 0], rot[0, 0]))
        out[i] = (yaw, pitch, roll)
    return out[0] if single else out


def mouth_opening(landmarks_px: np.ndarray) -> np.ndarray:
    """Inner-lip gap (landmarks 13-14) / outer eye-corner distance (33-263), both 3D.

    Args:
        landmarks_px: float ``(..., 478, 3)``.

    Returns:
        float32 ``(...)`` dimensionless (about 0 closed, 0.1-0.5 open).
    """
    lm = np.asarray(landmarks_px, np.float64)
    gap = np.linalg.norm(lm[..., LM_INNER_LIP_UPPER, :] - lm[..., LM_INNER_LIP_LOWER, :], axis=-1)
    iod = np.linalg.norm(lm[..., LM_EYE_OUTER_IMAGE_LEFT, :] - lm[..., LM_EYE_OUTER_IMAGE_RIGHT, :], axis=-1)
    return (gap / np.maximum(iod, 1e-6)).astype(np.float32)


@dataclass
class TrackOptions:
    """Options of the tracker and of the per-frame flags.

    Attributes:
        max_gap_frames: longest run of missing frames bridged by interpolation (longer: a new track).
        min_track_frames: tracks with fewer frames (bridged ones included) are dropped.
        max_jump: largest distance of the box centre from its constant-velocity prediction, in face
            sizes (plus 0.1 per missed frame).
        yaw_limit_deg: ``SKIP_YAW`` above this |yaw|.
        min_face_px: ``SKIP_SMALL`` when the box height is below this.
        min_confidence: ``SKIP_LOW_CONFIDENCE`` below this confidence (on measured frames).
        min_cutoff_hz, beta, d_cutoff_hz: One Euro filter parameters; ``beta`` is per face height per
            second (landmarks are filtered in units of the track's median box height).
    """

    max_gap_frames: int = 5
    min_track_frames: int = 5
    max_jump: float = 0.5
    yaw_limit_deg: float = 45.0
    min_face_px: float = 48.0
    min_confidence: float = 0.5
    min_cutoff_hz: float = 1.0
    beta: float = 10.0
    d_cutoff_hz: float = 1.0

    def validate(self) -> None:
        if self.max_gap_frames < 0 or self.min_track_frames < 1:
            raise ConfigError("max_gap_frames must be >= 0 and min_track_frames >= 1", "pass e.g. 5 and 5")
        if not 0 < self.yaw_limit_deg <= 180:
            raise ConfigError(f"yaw_limit_deg must be in (0, 180] (got {self.yaw_limit_deg})", "pass e.g. 45")
        if self.max_jump <= 0:
            raise ConfigError(f"max_jump must be > 0 (got {self.max_jump})", "pass e.g. 0.5")


@dataclass
class _Open:
    frames: list[int] = field(default_factory=list)
    obs: list[FaceObservation] = field(default_factory=list)
    times_s: list[float] = field(default_factory=list)

    @property
    def last(self) -> FaceObservation:
        return self.obs[-1]

    def velocity_px(self) -> np.ndarray:
        """Box-centre velocity (pixels per frame) from the last two observations (0 for one)."""
        if len(self.obs) < 2:
            return np.zeros(2)
        a, b = self.obs[-2].box_px, self.obs[-1].box_px
        return ((b[:2] + b[2:]) - (a[:2] + a[2:])) / 2 / (self.frames[-1] - self.frames[-2])


def _size(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], box[3] - box[1], 1.0))


class ShotTracker:
    """Links the faces of one shot into :class:`FaceTrack` objects (see the module docstring).

    Args:
        shot: index of the shot (stored in each track).
        fps: frames per second (time base of the One Euro filter).
        width, height: frame size in pixels (head-pose camera).
        options: :class:`TrackOptions`.

    Call :meth:`update` for every frame of the shot in order (an empty list when no face was found),
    then :meth:`finish`. Track ids are 0, 1, ... within the shot; the caller renumbers them.
    """

    def __init__(self, shot: int, fps: float, width: int, height: int, options: TrackOptions | None = None) -> None:
        self.shot, self.fps, self.width, self.height = shot, float(fps), width, height
        self.opt = options or TrackOptions()
        self.opt.validate()
        self._open: list[_Open] = []
        self._closed: list[_Open] = []

    def update(self, frame: int, observations: list[FaceObservation], time_s: float | None = None) -> None:
        """Add the faces of ``frame`` (frames must increase); ``time_s`` is its presentation time
        (default ``frame / fps``), used by the One Euro filter so variable frame rates are handled."""
        if time_s is None:
            time_s = frame / self.fps
        live, dead = [], []
        for t in self._open:
            (live if frame - t.frames[-1] - 1 <= self.opt.max_gap_frames else dead).append(t)
        self._closed += dead
        self._open = live
        matched_obs: set[int] = set()
        if live and observations:
            cost = np.full((len(live), len(observations)), np.inf)
            obs_boxes = np.stack([o.box_px for o in observations])
            iou = box_iou(np.stack([t.last.box_px for t in live]), obs_boxes)
            for i, t in enumerate(live):
                tb, size = t.last.box_px, _size(t.last.box_px)
                missed = frame - t.frames[-1] - 1
                predicted = (tb[:2] + tb[2:]) / 2 + t.velocity_px() * (missed + 1)
                for j, o in enumerate(observations):
                    ratio = _size(o.box_px) / size
                    centre = np.hypot(*((o.box_px[:2] + o.box_px[2:]) / 2 - predicted)) / size
                    if centre > self.opt.max_jump + 0.1 * missed or not 1 / 1.5 <= ratio <= 1.5:
                        continue
                    lmd = np.linalg.norm(o.landmarks_px[:, :2] - t.last.landmarks_px[:, :2], axis=1).mean() / size
                    cost[i, j] = centre + (1 - iou[i, j]) + lmd
            finite = np.where(np.isfinite(cost), cost, 1e6)
            rows, cols = linear_sum_assignment(finite)
            for r, c in zip(rows, cols):
                if np.isfinite(cost[r, c]):
                    live[r].frames.append(frame)
                    live[r].obs.append(observations[c])
                    live[r].times_s.append(float(time_s))
                    matched_obs.add(int(c))
        for j, o in enumerate(observations):
            if j not in matched_obs:
                self._open.append(_Open([frame], [o], [float(time_s)]))

    def finish(self) -> list[FaceTrack]:
        """Close all tracks and build the :class:`FaceTrack` objects (short ones dropped), by start frame."""
        raw = self._closed + self._open
        self._open, self._closed = [], []
        tracks = []
        for t in sorted(raw, key=lambda t: (t.frames[0], t.frames[-1])):
            if t.frames[-1] - t.frames[0] + 1 < self.opt.min_track_frames:
                continue
            tracks.append(self._build(len(tracks), t))
        return tracks

    def _build(self, track_id: int, t: _Open) -> FaceTrack:
        f0, f1 = t.frames[0], t.frames[-1]
        n = f1 - f0 + 1
        idx = np.asarray(t.frames) - f0
        measured = np.zeros(n, bool)
        measured[idx] = True
        boxes_m = np.stack([o.box_px for o in t.obs]).astype(np.float64)
        lms_m = np.stack([o.landmarks_px for o in t.obs]).astype(np.float64)
        conf = np.zeros(n, np.float32)
        conf[idx] = [o.confidence for o in t.obs]
        boxes = np.zeros((n, 4))
        boxes[idx] = boxes_m
        lms = np.zeros((n, N_LANDMARKS, 3))
        lms[idx] = lms_m
        times = np.interp(np.arange(n), idx, np.asarray(t.times_s))
        return build_track(track_id, self.shot, f0, boxes, lms, measured, conf, times, self.width, self.height, self.opt)


def build_track(track_id: int, shot: int, first_frame: int, boxes_px: np.ndarray, landmarks_px: np.ndarray, measured: np.ndarray,
                confidence: np.ndarray, times_s: np.ndarray, width: int, height: int, options: TrackOptions) -> FaceTrack:
    """A :class:`FaceTrack` over ``n`` consecutive frames from ``first_frame``, from its measured rows:
    the rows not ``measured`` are interpolated (boxes and landmarks, confidence 0, ``SKIP_NO_FACE``), the
    landmarks smoothed (One Euro, in units of the median box height), then head pose, mouth opening and
    the skip flags computed (see the module docstring). Used by the tracker and by the quality report,
    which measures a lip-synced output's changed frames again (:mod:`lipdub.qc.output_faces`).

    Args:
        boxes_px: float ``(n, 4)``; landmarks_px: float ``(n, 478, 3)``; measured: bool ``(n,)`` (at
            least one True); confidence: float ``(n,)``; times_s: float ``(n,)`` frame times (s).
    """
    n = len(measured)
    rows = np.arange(n)
    idx = np.flatnonzero(measured)
    boxes = np.stack([np.interp(rows, idx, np.asarray(boxes_px, np.float64)[idx, k]) for k in range(4)], axis=1)
    lms_m = np.asarray(landmarks_px, np.float64)[idx].reshape(len(idx), -1)
    lms = np.empty((n, lms_m.shape[1]))
    for k in range(lms_m.shape[1]):
        lms[:, k] = np.interp(rows, idx, lms_m[:, k])
    lms = lms.reshape(n, N_LANDMARKS, 3)
    conf = np.where(measured, np.asarray(confidence, np.float32), 0).astype(np.float32)
    scale = float(np.median(boxes[:, 3] - boxes[:, 1])) or 1.0
    filt = OneEuroFilter(options.min_cutoff_hz, options.beta, options.d_cutoff_hz)
    smooth = np.empty_like(lms)
    for i in range(n):
        smooth[i] = filt(lms[i] / scale, float(times_s[i])) * scale
    pose = head_pose_deg(smooth, width, height)
    skip = np.zeros(n, np.uint8)
    skip[~measured] |= SKIP_NO_FACE
    skip[np.abs(np.nan_to_num(pose[:, 0], nan=180.0)) > options.yaw_limit_deg] |= SKIP_YAW
    skip[(boxes[:, 3] - boxes[:, 1]) < options.min_face_px] |= SKIP_SMALL
    skip[measured & (conf < options.min_confidence)] |= SKIP_LOW_CONFIDENCE
    return FaceTrack(
        id=track_id,
        shot=shot,
        frames=np.arange(first_frame, first_frame + n, dtype=np.int32),
        boxes=boxes.astype(np.float32),
        landmarks_raw=lms.astype(np.float32),
        landmarks=smooth.astype(np.float32),
        confidence=conf,
        pose_deg=pose.astype(np.float32),
        mouth_opening=mouth_opening(smooth),
        skip=skip,
    )
