"""Per-frame face detection and 478 dense landmarks with MediaPipe (legacy ``mp.solutions`` API).

Method (all models ship in the ``mediapipe`` wheel, no download):

1. **Detection** (every ``detect_every`` frames and on the first frame of a shot; also, on each of the
   ``redetect_frames`` frames after a face was lost, in a region of 4 face sizes around where it was
   last seen): BlazeFace full-range
   (``FaceDetection(model_selection=1)``; Bazarevsky et al., "BlazeFace: Sub-millisecond Neural Face
   Detection on Mobile GPUs", 2019) on the whole frame and, when
   the frame is larger than one tile, on overlapping square tiles. The model sees a 192x192 letterboxed
   input and finds faces down to roughly 1/20 of its input side, so a tile side of ``20 * min_face_px``
   makes faces of ``min_face_px`` pixels detectable (1080p: 960 px tiles, 6 tiles). Detections of all
   passes are merged with non-maximum suppression (``cv2.dnn.NMSBoxes``).
2. **Region propagation** between detections: each face found on the previous frame is looked for again
   in a square crop around its previous landmark box (no detector pass over the whole frame).
3. **Landmarks** per face: the crop (side ``crop_scale`` x the face box, zero-padded at the frame border)
   is resized to ``crop_size_px`` and given to ``FaceMesh(static_image_mode=True, refine_landmarks=True)``
   (Kartynnik et al., "Real-time Facial Surface Geometry from Monocular Video on Mobile GPUs", 2019; the
   attention model adds 10 iris points: 478 in all). Of the faces it finds in the crop, the one nearest
   the crop centre is kept. Normalised landmarks are mapped back to frame pixels; z (MediaPipe's depth,
   normalised by the crop width like x) is multiplied by the crop side in frame pixels.
4. **Confidence**: the BlazeFace short-range score (``model_selection=0``, threshold 0.2) of the
   detection on the same crop whose centre lies inside the landmark box: MediaPipe's legacy Face Mesh
   does not expose its face-presence score, and the detector's score drops with occlusion and blur.
   Landmarks that no detection confirms are discarded (seen on a steeply lowered head, where the mesh
   fits the hair): the face counts as not found on that frame.

Frames are RGB ``uint8`` arrays ``(H, W, 3)`` in display orientation. Faces are de-duplicated (two
crops converging on one face) and capped at ``max_faces`` per frame (faces already followed first, then
new detections by size).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from ..contracts.faces import N_LANDMARKS
from ..errors import BackendUnavailable, ConfigError
from ..registry import require_module

log = logging.getLogger(__name__)

DETECTOR_INPUT_PX = 384  # frames/tiles are shrunk (INTER_AREA) to this long side before BlazeFace (192 input)


@dataclass
class FaceObservation:
    """One face measured on one frame.

    Attributes:
        box_px: float32 ``(4,)`` x0, y0, x1, y1 in frame pixels: the bounds of the landmarks' x, y.
        landmarks_px: float32 ``(478, 3)`` x, y in frame pixels, z in pixels (relative depth, MediaPipe
            z times the crop side; smaller = nearer the camera; the face centre is near 0).
        confidence: face score in [0.2, 1] (BlazeFace short-range score on the face crop).
    """

    box_px: np.ndarray
    landmarks_px: np.ndarray
    confidence: float


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes ``a`` ``(N, 4)`` and ``b`` ``(M, 4)`` (x0, y0, x1, y1) -> ``(N, M)``."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def _tiles(width: int, height: int, tile_px: int, overlap: float = 0.25) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles (x, y, w, h) covering the frame; empty when one tile covers it."""
    tw, th = min(tile_px, width), min(tile_px, height)
    if tw >= width and th >= height:
        return []

    def starts(size: int, t: int) -> list[int]:
        if t >= size:
            return [0]
        n = int(np.ceil((size - t * overlap) / (t * (1 - overlap))))
        return [int(round(s)) for s in np.linspace(0, size - t, max(n, 2))]

    return [(x, y, tw, th) for y in starts(height, th) for x in starts(width, tw)]


def _shrink(img: np.ndarray, long_side_px: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = long_side_px / max(h, w)
    if s >= 1.0:
        return np.ascontiguousarray(img)
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


class FaceLandmarker:
    """Detect faces and measure 478 landmarks per face, frame after frame (see the module docstring).

    Args:
        max_faces: most faces reported per frame.
        detect_every: frames between two full detection passes (1 = every frame). Faces entering the
            picture are found within this many frames.
        min_detection_confidence: BlazeFace score threshold for the full-frame / tile detections.
        min_face_px: smallest face height of interest in pixels; sets the tile size (``20 *
            min_face_px``) so that faces of this size can be detected.
        crop_scale: crop side / longer side of the previous landmark box (detection boxes, which are
            tighter, use 1.25 x this).
        crop_size_px: side in pixels the crop is resized to before Face Mesh.
        redetect_frames: after a followed face is lost, detect on each of this many frames (so a face
            back after a short gap is found at once and the gap can be bridged).

    Raises:
        ConfigError: an option is out of range.
        BackendUnavailable: mediapipe is not installed.

    Use as a context manager or call :meth:`close`. Call :meth:`reset` at every shot boundary.
    """

    def __init__(
        self,
        *,
        max_faces: int = 4,
        detect_every: int = 5,
        min_detection_confidence: float = 0.5,
        min_face_px: int = 48,
        crop_scale: float = 1.7,
        crop_size_px: int = 256,
        redetect_frames: int = 5,
    ) -> None:
        if max_faces < 1:
            raise ConfigError(f"max_faces must be >= 1 (got {max_faces})", "pass a positive number of faces")
        if detect_every < 1:
            raise ConfigError(f"detect_every must be >= 1 (got {detect_every})", "pass 1 to detect on every frame")
        if not 0.0 <= min_detection_confidence <= 1.0:
            raise ConfigError(
                f"min_detection_confidence must be in [0, 1] (got {min_detection_confidence})", "pass e.g. 0.5"
            )
        mp = require_module("mediapipe", "mediapipe")
        try:
            solutions = mp.solutions
        except AttributeError as exc:  # pragma: no cover - mediapipe without the legacy API
            raise BackendUnavailable(
                "this mediapipe has no legacy 'solutions' API", "pip install 'mediapipe==0.10.21'"
            ) from exc
        self.max_faces = max_faces
        self.detect_every = detect_every
        self.redetect_frames = max(0, int(redetect_frames))
        self.tile_px = int(20 * max(min_face_px, 16))
        self.crop_scale = crop_scale
        self.crop_size_px = crop_size_px
        self._detector = solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_detection_confidence
        )
        self._crop_detector = solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.2)
        self._mesh = solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=2, refine_landmarks=True, min_detection_confidence=0.3
        )
        self._options = {"max_faces": max_faces, "detect_every": detect_every, "min_detection_confidence": min_detection_confidence,
                         "min_face_px": min_face_px, "crop_scale": crop_scale, "crop_size_px": crop_size_px, "redetect_frames": redetect_frames}
        self._prev_boxes: list[np.ndarray] = []
        self._since_detect = 0
        self._lost: list[tuple[np.ndarray, int]] = []  # (last box, frames left to look for it)
        self._fresh = True
        self.stats = {"frames": 0, "detection_passes": 0, "detector_runs": 0, "mesh_runs": 0}

    # -- lifecycle -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the faces of the previous frame (call at a shot boundary): the next frame is detected."""
        self._prev_boxes = []
        self._fresh = True
        self._lost = []

    def twin(self) -> "FaceLandmarker":
        """A new landmarker with the same options (its own MediaPipe graphs, e.g. for another thread)."""
        return FaceLandmarker(**self._options)

    def close(self) -> None:
        for g in (self._detector, self._crop_detector, self._mesh):
            g.close()

    def __enter__(self) -> "FaceLandmarker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- detection -------------------------------------------------------------------------------
    def _run_detector(self, img: np.ndarray, ox: int, oy: int) -> list[tuple[np.ndarray, float]]:
        h, w = img.shape[:2]
        small = _shrink(img, DETECTOR_INPUT_PX)
        self.stats["detector_runs"] += 1
        res = self._detector.process(small)
        out = []
        for d in res.detections or []:
            b = d.location_data.relative_bounding_box
            box = np.array([ox + b.xmin * w, oy + b.ymin * h, ox + (b.xmin + b.width) * w, oy + (b.ymin + b.height) * h])
            out.append((box, float(d.score[0])))
        return out

    def detect(self, rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """BlazeFace full-range on the frame and its tiles, merged by NMS.

        Returns:
            ``[(box_px float64 (4,) x0 y0 x1 y1, score)]``, best score first.
        """
        h, w = rgb.shape[:2]
        self.stats["detection_passes"] += 1
        dets = self._run_detector(rgb, 0, 0)
        for x, y, tw, th in _tiles(w, h, self.tile_px):
            dets += self._run_detector(rgb[y : y + th, x : x + tw], x, y)
        if not dets:
            return []
        rects = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b, _ in dets]
        keep = np.asarray(cv2.dnn.NMSBoxes(rects, [s for _, s in dets], 0.0, 0.3)).reshape(-1)
        return sorted((dets[int(k)] for k in keep), key=lambda d: -d[1])

    def _detect_near(self, rgb: np.ndarray, box: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """BlazeFace full-range on a square region of 4 face sizes around ``box`` (clipped to the frame)."""
        h, w = rgb.shape[:2]
        side = 4.0 * max(box[2] - box[0], box[3] - box[1])
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x0, y0 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
        x1, y1 = int(min(cx + side / 2, w)), int(min(cy + side / 2, h))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return []
        return self._run_detector(rgb[y0:y1, x0:x1], x0, y0)

    # -- landmarks -------------------------------------------------------------------------------
    @staticmethod
    def _crop_bounds(box: np.ndarray, scale: float) -> tuple[int, int, int]:
        """``(x0, y0, side)``, integer pixels, of the square crop around ``box`` (before zero padding)."""
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = float(max(max(box[2] - box[0], box[3] - box[1]) * scale, 8.0))
        return int(np.floor(cx - side / 2)), int(np.floor(cy - side / 2)), int(np.ceil(side))

    def crop_bounds(self, box_px: np.ndarray) -> tuple[int, int, int]:
        """``(x0, y0, side)`` in frame pixels of the square region :meth:`measure_at` reads around
        ``box_px`` (x0, y0, x1, y1): the pixels of the frame outside it do not change its result, so
        a caller may pass only that region (the box shifted by the region's origin)."""
        return self._crop_bounds(np.asarray(box_px, np.float64), self.crop_scale)

    def _crop(self, rgb: np.ndarray, box: np.ndarray, scale: float) -> tuple[np.ndarray, float, float, float]:
        """Square crop around ``box``, zero-padded, resized to ``crop_size_px``; returns (crop, x0, y0, side)."""
        h, w = rgb.shape[:2]
        ix0, iy0, iside = self._crop_bounds(box, scale)
        out = np.zeros((iside, iside, 3), np.uint8)
        sx0, sy0 = max(ix0, 0), max(iy0, 0)
        sx1, sy1 = min(ix0 + iside, w), min(iy0 + iside, h)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - iy0 : sy1 - iy0, sx0 - ix0 : sx1 - ix0] = rgb[sy0:sy1, sx0:sx1]
        n = self.crop_size_px
        interp = cv2.INTER_AREA if iside > n else cv2.INTER_LINEAR
        return cv2.resize(out, (n, n), interpolation=interp), float(ix0), float(iy0), float(iside)

    def _landmarks(self, rgb: np.ndarray, box: np.ndarray, scale: float) -> FaceObservation | None:
        crop, x0, y0, side = self._crop(rgb, box, scale)
        self.stats["mesh_runs"] += 1
        res = self._mesh.process(crop)
        if not res.multi_face_landmarks:
            return None
        best, best_d = None, np.inf
        for face in res.multi_face_landmarks:
            pts = np.array([(p.x, p.y, p.z) for p in face.landmark], np.float32)
            c = (pts[:, :2].min(0) + pts[:, :2].max(0)) / 2
            d = float(np.hypot(*(c - 0.5)))
            if d < best_d:
                best, best_d = pts, d
        if best is None or best_d > 0.3 or best.shape[0] != N_LANDMARKS:
            return None  # the face found is not the one looked for (a neighbour in the crop)
        lo, hi = best[:, :2].min(0), best[:, :2].max(0)
        conf = 0.0
        for d in self._crop_detector.process(crop).detections or []:
            b = d.location_data.relative_bounding_box
            dc = np.array([b.xmin + b.width / 2, b.ymin + b.height / 2])
            if np.all(dc >= lo) and np.all(dc <= hi):
                conf = max(conf, float(d.score[0]))
        if conf <= 0.0:
            return None  # no detection where the landmarks are: the mesh locked onto hair, a neighbour, ...
        lm = np.empty_like(best)
        lm[:, 0] = x0 + best[:, 0] * side
        lm[:, 1] = y0 + best[:, 1] * side
        lm[:, 2] = best[:, 2] * side
        bx = np.array([lm[:, 0].min(), lm[:, 1].min(), lm[:, 0].max(), lm[:, 1].max()], np.float32)
        return FaceObservation(box_px=bx, landmarks_px=lm, confidence=conf)

    def measure_at(self, rgb: np.ndarray, box_px: np.ndarray) -> FaceObservation | None:
        """The face whose landmark box on a neighbouring frame (or in another analysis of the same
        frame) was ``box_px`` (x0, y0, x1, y1): Face Mesh on the crop around it, as a followed face is
        measured by :meth:`process` (``crop_scale``, the crop detector's confirmation); None when no
        confirmed face is there. No detection pass, no tracking state."""
        return self._landmarks(np.ascontiguousarray(rgb), np.asarray(box_px, np.float64), self.crop_scale)

    def detection_due(self) -> bool:
        """Whether the next :meth:`process` call runs a full detection pass (the first frame after
        :meth:`reset`, then every ``detect_every`` frames)."""
        return self._fresh or self._since_detect + 1 >= self.detect_every

    def process(self, rgb: np.ndarray, detections: list[tuple[np.ndarray, float]] | None = None) -> list[FaceObservation]:
        """Faces on one frame.

        Args:
            rgb: ``uint8`` ``(H, W, 3)`` RGB frame in display orientation.
            detections: :meth:`detect` of this frame computed beforehand (e.g. by another
                landmarker in a decoding thread); used when the frame is due a detection pass,
                computed here when it is due and None.

        Returns:
            Up to ``max_faces`` :class:`FaceObservation` (followed faces first, then new ones by size).

        Raises:
            ConfigError: the frame is not an ``(H, W, 3)`` uint8 array.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ConfigError(f"expected an (H, W, 3) uint8 RGB frame, got {rgb.shape} {rgb.dtype}", "decode frames as rgb24")
        rgb = np.ascontiguousarray(rgb)
        self.stats["frames"] += 1
        candidates: list[tuple[np.ndarray, float]] = [(b, self.crop_scale) for b in self._prev_boxes]
        if self.detection_due():
            self._since_detect = 0
            detections = [b for b, _ in (self.detect(rgb) if detections is None else detections)]
        else:
            self._since_detect += 1
            detections = []
            for box, _left in self._lost:  # look again where a face was lost, not over the whole frame
                detections += [b for b, _ in self._detect_near(rgb, box)]
        new = []
        for box in detections:
            c = (box[:2] + box[2:]) / 2
            if any(np.all(c >= p[:2]) and np.all(c <= p[2:]) for p in self._prev_boxes + [n for n in new]):
                continue  # a face already followed (or found twice)
            new.append(box)
        new.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
        candidates += [(b, self.crop_scale * 1.25) for b in new]
        faces: list[FaceObservation] = []
        n_prev = len(self._prev_boxes)
        lost_now = []
        for i, (box, scale) in enumerate(candidates):
            if len(faces) >= self.max_faces:
                break
            obs = self._landmarks(rgb, box, scale)
            if obs is None:
                if i < n_prev:
                    lost_now.append((box, self.redetect_frames))
                continue
            if faces and box_iou(obs.box_px[None], np.stack([f.box_px for f in faces])).max() > 0.5:
                continue  # two crops converged on one face
            faces.append(obs)
        # forget a lost face once it is found again or after redetect_frames frames
        found = np.stack([f.box_px for f in faces]) if faces else np.zeros((0, 4))
        still = [(b, k - 1) for b, k in self._lost if k > 1 and (not len(found) or box_iou(b[None], found).max() < 0.1)]
        self._lost = [x for x in lost_now if self.redetect_frames > 0] + still
        self._fresh = False
        self._prev_boxes = [f.box_px.astype(np.float64) for f in faces]
        return faces
