"""Stage 12, composite: paste a donor's lower face into a frame (shared by every lip-sync backend).

A backend supplies, for each output frame, a *donor*: an image that shows the new mouth (another frame
of the same actor for ``retrieval``; a generated face crop for neural backends) and its 478 MediaPipe
landmarks in the donor image's pixels. :class:`Compositor` puts the donor's mouth, chin and jaw into the
target frame in five steps, all on a crop around the lower face (the rest of the frame is never read
back nor written: pixels outside :attr:`CompositeInfo.box` are bit-identical to the target, and so are
pixels inside it where the mask is 0):

1. **Alignment** (:func:`align_donor`). A 3-D similarity (rotation, uniform scale, translation;
   least squares, Umeyama 1991) maps the donor's skull-rigid landmarks (eye corners 33, 133, 362,
   263, nose bridge 168, 6, 197, 195, nose base, cheekbones, face contour at the ears) onto the
   target's, x/y/z, then drops z (2-D when a face has no depth). The destination of every *moving*
   landmark (lips, chin, jaw line, lower cheeks) is the donor's point so mapped: the donor's mouth and
   jaw in the target's head pose and position, so the jaw line moves with the mouth. *Anchor*
   landmarks (nose base, upper cheeks, eyes, the face contour near the ears) go to the target's own
   positions, *transition* landmarks (cheeks beside the mouth, jaw angle) part way, and a ring of
   points around the working crop follows the identity when the donor is a whole frame of the same
   camera (neck, collar and background belong to the body, not the head) or the face-plane affine
   when it is a face crop; the warp is continuous everywhere and the donor's nose base lands exactly
   on the target's, where the mask's upper feather lies.
2. **Piecewise-affine warp.** The destination points are triangulated (Delaunay, scipy), each
   triangle gets the affine map destination -> donor (one batched 3x3 solve, the same as
   ``cv2.getAffineTransform`` per triangle), a triangle-index image is rasterised with
   ``cv2.fillConvexPoly`` (sub-pixel), and the donor is sampled once with ``cv2.remap`` (bilinear)
   through the resulting dense map.
3. **Mask.** A star-shaped polygon (``MASK_RAYS`` rays from the mouth centre, in a face-aligned frame)
   around the union of the target's lower face and the donor's (destination) lower face, from the
   nose base down past the lower of the two chins onto the neck (``2.5 * feather`` + 0.04
   inter-ocular distances), both jaw lines pushed out by ``1.5 * feather`` so they sit inside the
   opaque part: an old chin lower than the new one never shows (no double chin) and a lower new chin
   meets no seam. On the sides the polygon stays ``2.5 * feather`` inside the face contour at the
   cheeks, where the warp is anchored to the target, so no contour edge falls in the feather. The polygon is smoothed in time
   per key (exponential moving average of the ray lengths, in inter-ocular units, which may shrink
   only slowly but grows at once), filled and blurred with a Gaussian of ``feather_px`` (default 7 %
   of the inter-ocular distance). Where the donor image does not cover the warped area (a generated
   face crop), the mask is cut back with the same feather.
4. **Colour transfer** (Reinhard, Ashikhmin, Gooch, Shirley, "Color Transfer between Images", IEEE
   CG&A 2001; :mod:`lipdub.lipsync.colour_match`) in CIE L*a*b*: per channel mean and standard
   deviation of the warped donor and of the target over the *same* skin pixels (the part of the mask
   inside both lower faces, lips of both excluded, so a mouth that opens does not read as a colour
   change), ``lab' = (lab - mean_d) * std_t / std_d + mean_t`` with the gain clamped to [0.75, 1.33];
   and the lip tone: the same transfer fitted on the lips (between the outer and inner lip contours)
   of the donor and of the target, applied over the donor's lips through a feathered weight, so
   donor lips darker or redder than the target frame's take the target's tone. The statistics are
   smoothed in time per key (EMA); a statistic that jumps by more than ``SNAP_LAB`` (a donor from
   another shot, a cut) restarts its average instead of fading.
5. **Blend.** ``out = target + alpha * (donor - target)`` in float, rounded; optionally Poisson
   image editing first (Pérez, Gangnet, Blake, "Poisson Image Editing", SIGGRAPH 2003, through
   ``cv2.seamlessClone`` with ``NORMAL_CLONE`` on the opaque part of the mask), which hides residual
   low-frequency colour differences at the cost of some speed.

Temporal state (mask and colour averages) is kept per ``key`` (a face track id); call
:meth:`Compositor.reset` at shot cuts or when a track ends.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import ConfigError, InputError
from .colour_match import (
    lip_tissue_mask,
    region_stats,
    reinhard_map,
    rgb_to_lab,
    smooth_stats,
)

log = logging.getLogger(__name__)

# --- MediaPipe Face Mesh landmark ids ------------------------------------------------------------
STABLE_IDS = (33, 133, 362, 263, 168, 6, 197, 195)  # eye corners, nose bridge
RIGID_IDS = STABLE_IDS + (2, 98, 327, 50, 280, 205, 425, 234, 454, 93, 323, 132, 361, 127, 356)  # + nose base,
# cheekbones, face contour at the ears: points fixed to the skull, used for the alignment
LIPS_OUTER_IDS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LIPS_INNER_IDS = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
JAW_IDS = (58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288)  # face contour, ear to ear
CHIN_IDS = (150, 149, 176, 148, 152, 377, 400, 378, 379)  # lowest part of the contour (pushed onto the neck)
LOWER_FACE_IDS = (  # between the mouth and the jaw line (move with the mandible)
    18, 200, 199, 175, 83, 313, 182, 406, 201, 421, 194, 418, 32, 262, 208, 428, 171, 396, 140, 369,
    170, 395, 169, 394, 211, 431, 210, 430, 204, 424, 202, 422, 106, 335, 43, 273, 57, 287, 135, 364,
    214, 434, 212, 432, 138, 367,
)
TRANSITION_IDS = (186, 410, 92, 322, 216, 436, 192, 416, 207, 427, 213, 433, 215, 435)  # cheeks beside the mouth
ANCHOR_IDS = (  # nose base, philtrum, upper cheeks, face contour near the ears: stay where the target has them
    1, 4, 5, 2, 98, 327, 97, 326, 164, 167, 393, 165, 391, 203, 423, 206, 426, 205, 425, 187, 411, 147,
    376, 177, 401, 132, 361, 123, 352, 50, 280, 129, 358, 93, 323, 234, 454,
)
MASK_TOP_IDS = (207, 206, 165, 164, 391, 426, 427)  # upper edge of the mask (target positions)
MASK_SIDE_IDS = (132, 58, 361, 288)  # face contour beside the mouth: the mask stays inside it
LOWER_JAW_IDS = (172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397)  # jaw line that moves

#: weight of the donor's (similarity-aligned) position for each warp landmark: 1 moving, 0 anchored
WARP_WEIGHTS: dict[int, float] = {
    **{i: 0.0 for i in STABLE_IDS + ANCHOR_IDS},
    **{i: 0.5 for i in TRANSITION_IDS},
    **{i: 1.0 for i in LIPS_OUTER_IDS + LIPS_INNER_IDS + LOWER_FACE_IDS + JAW_IDS},
    58: 0.0, 288: 0.0, 172: 0.5, 397: 0.5, 136: 0.85, 365: 0.85,
}
_WARP_IDS = np.array(sorted(WARP_WEIGHTS), np.int64)
_WARP_W = np.array([WARP_WEIGHTS[i] for i in _WARP_IDS], np.float64)[:, None]

MASK_RAYS = 72  # vertices of the star-shaped mask polygon
LIP_FEATHER = 0.05  # Gaussian sigma of the lip-tone weight, in mouth widths (corner to corner)
DEFAULT_FEATHER_IOD = 0.07  # default feather sigma as a fraction of the inter-ocular distance
NECK_EXTENSION_IOD = 0.04  # mask reach below the lower chin besides 2.5 feather sigmas (inter-ocular units): short, the neck and collar below belong to the body, not the head


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama 1991, no reflection) mapping ``src`` onto ``dst``, in 2-D or 3-D.

    Args:
        src, dst: float ``(N, D)`` corresponding points, D = 2 or 3, N >= D.

    Returns:
        ``(A, t)``: float64 ``(D, D)`` scaled rotation ``sR`` and ``(D,)`` translation with
        ``dst ~ src @ A.T + t``.

    Raises:
        InputError: the source points are degenerate (all equal).
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    var_s = (a ** 2).sum() / len(src)
    if not np.isfinite(var_s) or var_s < 1e-9:
        raise InputError("face landmarks are degenerate (eye and nose points coincide)",
                         "check the landmarks passed to the compositor")
    cov = b.T @ a / len(src)
    u, d, vt = np.linalg.svd(cov)
    e = np.eye(src.shape[1])
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[-1, -1] = -1.0
    scale = float((d * np.diag(e)).sum() / var_s)
    rot = scale * (u @ e @ vt)
    return rot, mu_d - rot @ mu_s


def align_donor(donor_lmk: np.ndarray, target_lmk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The donor's face seen in the target's head pose and position.

    A 3-D similarity (rotation, scale, translation) fitted on the skull-rigid points ``RIGID_IDS``
    (eye corners, nose bridge, nose base, cheekbones, face contour at the ears) maps the donor's x, y, z
    onto the target's, and the result is projected orthographically (z dropped), like MediaPipe's own
    landmark space. A head turned a few degrees more in the donor than in the target is rotated back
    (a 2-D similarity on the eyes leaves the jaw line of a 5 degree yaw difference about 10 px off
    on a face 120 px between the eyes; the 3-D fit, about 1 px). When either face has no usable depth
    (z constant), the fit is 2-D.

    Args:
        donor_lmk, target_lmk: float ``(N >= 468, 2 or 3)`` landmarks, pixels.

    Returns:
        ``(points, affine)``: float64 ``(N, 2)`` the donor's landmarks in target pixels and the float64
        ``(2, 3)`` affine map donor pixel -> target pixel of the face plane (the 3-D map at the rigid
        points' mean depth), used away from the landmarks.
    """
    ids = list(RIGID_IDS)
    has_z = donor_lmk.shape[1] >= 3 and target_lmk.shape[1] >= 3
    if has_z:
        spread = min(np.ptp(donor_lmk[ids, 2]) / max(np.ptp(donor_lmk[ids, 0]), 1e-6),
                     np.ptp(target_lmk[ids, 2]) / max(np.ptp(target_lmk[ids, 0]), 1e-6))
        has_z = bool(np.isfinite(spread) and spread > 0.05)
    dim = 3 if has_z else 2
    rot, t = similarity_transform(donor_lmk[ids, :dim], target_lmk[ids, :dim])
    points = (donor_lmk[:, :dim] @ rot.T + t)[:, :2]
    affine = np.zeros((2, 3))
    affine[:, :2] = rot[:2, :2]
    affine[:, 2] = t[:2]
    if dim == 3:
        affine[:, 2] += rot[:2, 2] * float(donor_lmk[ids, 2].mean())
    return points, affine


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def _invert(m: np.ndarray) -> np.ndarray:
    a = np.linalg.inv(m[:, :2])
    return np.hstack([a, -(a @ m[:, 2])[:, None]])


def _check_landmarks(lmk, name: str) -> np.ndarray:
    arr = np.asarray(lmk, np.float64)
    if arr.ndim != 2 or arr.shape[0] < 468 or arr.shape[1] < 2:
        raise InputError(f"{name} must be (478, 3) or (468, 2+) MediaPipe landmarks in pixels, got shape {arr.shape}",
                         "pass the face's Face Mesh landmarks")
    arr = arr[:468, :3]
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contain NaN or infinite values", "pass measured (or interpolated) landmarks")
    return arr


def _check_image(img, name: str) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        shape = getattr(img, "shape", None)
        dtype = getattr(img, "dtype", None)
        raise InputError(f"{name} must be an RGB uint8 (H, W, 3) array, got {dtype} {shape}", "convert the frame to RGB uint8")
    return img


@dataclass
class CompositeInfo:
    """What the last :meth:`Compositor.composite` call did (diagnostics, QC, tests).

    Attributes:
        box: ``(x0, y0, x1, y1)`` integer pixel bounds (exclusive end) of the region that may differ
            from the target; ``(0, 0, 0, 0)`` when nothing was changed.
        alpha: float32 ``(y1 - y0, x1 - x0)`` the blend mask in [0, 1] over ``box``.
        lab_gain, lab_offset: float64 ``(3,)`` the applied L*a*b* transfer ``lab * gain + offset``
            (gain 1, offset 0 when colour transfer is off).
        alignment: float64 ``(2, 3)`` donor -> target affine of the face plane (see :func:`align_donor`).
        lip_gain, lip_offset: float64 ``(3,)`` the L*a*b* lip-tone transfer applied over the donor's
            lips (gain 1, offset 0 when off or when a mouth shows too few lip pixels).
    """

    box: tuple[int, int, int, int]
    alpha: np.ndarray
    lab_gain: np.ndarray
    lab_offset: np.ndarray
    alignment: np.ndarray
    lip_gain: np.ndarray = field(default_factory=lambda: np.ones(3))
    lip_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))


@dataclass
class _KeyState:
    radii: np.ndarray | None = None  # (MASK_RAYS,) mask ray lengths in inter-ocular units
    stats: dict[str, np.ndarray] = field(default_factory=dict)  # mu_t, sd_t, mu_d, sd_d (3,) each


class Compositor:
    """Aligns, warps, colour-matches and blends a donor's lower face into target frames.

    Args:
        feather_px: Gaussian sigma of the mask edge in pixels; None: 7 % of the target's inter-ocular
            distance (outer eye corners), i.e. about 8 px for a face 120 px between the eyes.
        poisson: Poisson-blend (``cv2.seamlessClone``, ``NORMAL_CLONE``) before the feathered blend.
        color_transfer: match the donor's L*a*b* skin statistics to the target's (Reinhard 2001).
        lip_tone: with ``color_transfer``, also match the donor's lip statistics to the target's lips,
            over the donor's lips (see :mod:`lipdub.lipsync.colour_match`).
        temporal_smoothing: weight in [0, 1) of the previous frame's state in the exponential moving
            averages of the colour statistics and the mask polygon (0: no smoothing). 0.6 is a time
            constant of about 2 frames.

    Raises:
        ConfigError: a parameter out of range.
    """

    def __init__(self, *, feather_px: float | None = None, poisson: bool = False, color_transfer: bool = True,
                 temporal_smoothing: float = 0.6, lip_tone: bool = True) -> None:
        if feather_px is not None and not (0.5 <= float(feather_px) <= 200.0):
            raise ConfigError(f"feather_px must be in [0.5, 200] pixels, got {feather_px}", "use None for the automatic feather")
        if not (0.0 <= float(temporal_smoothing) < 1.0):
            raise ConfigError(f"temporal_smoothing must be in [0, 1), got {temporal_smoothing}", "0 disables smoothing; 0.6 is the default")
        self.feather_px = None if feather_px is None else float(feather_px)
        self.poisson = bool(poisson)
        self.color_transfer = bool(color_transfer)
        self.lip_tone = bool(lip_tone)
        self.temporal_smoothing = float(temporal_smoothing)
        self._state: dict[int, _KeyState] = {}
        self.last: CompositeInfo | None = None
        ang = np.linspace(0.0, 2.0 * np.pi, MASK_RAYS, endpoint=False)
        self._ray_dirs = np.stack([np.cos(ang), np.sin(ang)], 1)  # face frame: +x along the eyes, +y down

    def reset(self, key: int | None = None) -> None:
        """Forget the temporal state of ``key`` (a face track), or of every key when None (shot cut)."""
        if key is None:
            self._state.clear()
        else:
            self._state.pop(key, None)

    # ------------------------------------------------------------------------------------------------
    def composite(self, target_rgb: np.ndarray, target_landmarks: np.ndarray, donor_rgb: np.ndarray,
                  donor_landmarks: np.ndarray, *, key: int = 0, inplace: bool = False,
                  donor_is_frame: bool | None = None) -> np.ndarray:
        """Replace the lower face of ``target_rgb`` by the donor's, aligned to the target's head.

        Args:
            target_rgb: RGB uint8 ``(H, W, 3)``, the output frame (modified only with ``inplace``).
            target_landmarks: float ``(478, 3)`` (or ``(468+, 2+)``) landmarks of the face in
                ``target_rgb``, x/y in pixels (z unused).
            donor_rgb: RGB uint8 ``(h, w, 3)``, the image showing the new mouth (any size).
            donor_landmarks: float ``(478, 3)`` landmarks of the face in ``donor_rgb``, pixels.
            key: temporal-state key (the face track id); one state per key.
            inplace: write into ``target_rgb`` and return it (saves a frame copy) instead of a copy.
            donor_is_frame: the donor is a whole frame from the same camera (retrieval; or a generated
                full frame): away from the face landmarks (neck, collar, background at the crop edge)
                the warp is then the identity, because the body does not move with the head; False:
                the donor is a face crop, mapped there by the face-plane affine. None (default): True
                when ``donor_rgb`` has the shape of ``target_rgb``.

        Returns:
            An RGB uint8 array of the shape of ``target_rgb`` (a new one unless ``inplace``); pixels outside
            ``self.last.box`` (and inside it where ``self.last.alpha`` is 0) equal the target's exactly.

        Raises:
            InputError: an image that is not RGB uint8, landmarks of the wrong shape, NaN, or degenerate.
        """
        target = _check_image(target_rgb, "target_rgb")
        donor = _check_image(donor_rgb, "donor_rgb")
        tl = _check_landmarks(target_landmarks, "target_landmarks")
        dl = _check_landmarks(donor_landmarks, "donor_landmarks")
        height, width = target.shape[:2]
        state = self._state.setdefault(key, _KeyState())

        # 1. alignment: the donor's face in the target's head pose (3-D similarity on skull-rigid points)
        dst_lmk, sim = align_donor(dl, tl)
        dl, tl = dl[:, :2], tl[:, :2]
        iod = float(np.linalg.norm(tl[263] - tl[33]))
        if iod < 4.0:
            raise InputError(f"target face too small (inter-ocular distance {iod:.1f} px)", "skip faces this small")
        sigma = self.feather_px if self.feather_px is not None else DEFAULT_FEATHER_IOD * iod
        ex = (tl[263] - tl[33]) / iod  # face frame of the target: x along the eyes, y down the face
        ey = np.array([-ex[1], ex[0]])
        rot = np.stack([ex, ey])  # rows: face axes

        box = self._mask(tl, dst_lmk, iod, sigma, rot, state, width, height)
        if box is None:
            self.last = CompositeInfo((0, 0, 0, 0), np.zeros((0, 0), np.float32), np.ones(3), np.zeros(3), sim)
            return target if inplace else target.copy()
        (x0, y0, x1, y1), hard, alpha, ksize = box
        origin = np.array([x0, y0], np.float64)
        if donor_is_frame is None:
            donor_is_frame = donor.shape == target.shape
        warped, alpha = self._warp(donor, dl, tl, dst_lmk, sim, (x0, y0, x1, y1), alpha, sigma, ksize, donor_is_frame)
        tcrop = target[y0:y1, x0:x1]
        src, gain, offset, lip_gain, lip_offset = self._colour(warped, tcrop, hard, tl, dst_lmk, origin, state)
        if self.poisson:
            src = self._poisson(src, tcrop, alpha)
        t32 = tcrop.astype(np.float32)
        a3 = cv2.merge([alpha, alpha, alpha])
        blended = cv2.add(t32, cv2.multiply(a3, cv2.subtract(src, t32)))  # alpha 0 -> exactly the target
        blended = cv2.convertScaleAbs(blended)  # round to nearest and saturate to uint8
        out = target if inplace else target.copy()
        out[y0:y1, x0:x1] = blended
        self.last = CompositeInfo((x0, y0, x1, y1), alpha, gain, offset, sim, lip_gain, lip_offset)
        return out

    def _mask(self, tl: np.ndarray, dst_lmk: np.ndarray, iod: float, sigma: float, rot: np.ndarray, state: "_KeyState",
              width: int, height: int):
        """The feathered mask of the lower face: ``((x0, y0, x1, y1), hard uint8, alpha float32, blur
        size)`` over its box, or None when the box is empty.

        The polygon (face frame, inter-ocular units, centred between the lips): the nose base on top;
        on the sides the cheeks *inside* the face contour (where the warp is anchored, so no contour edge
        falls in the feather); at the bottom both jaw lines pushed out and both chins pushed down onto
        the neck; its ray lengths are kept from shrinking frame to frame by the temporal smoothing.
        """
        k = self.temporal_smoothing
        centre = 0.5 * (tl[13] + tl[14])
        ey = rot[1]

        def push(p: np.ndarray, dist: float) -> np.ndarray:  # move points away from the centre (in if dist < 0)
            v = p - centre
            return p + v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-6) * dist

        jaw = list(LOWER_JAW_IDS)
        neck = (NECK_EXTENSION_IOD * iod + 2.5 * sigma) * ey
        pts = [tl[list(MASK_TOP_IDS)], push(tl[list(MASK_SIDE_IDS)], -2.5 * sigma),
               tl[list(LIPS_OUTER_IDS)], dst_lmk[list(LIPS_OUTER_IDS)],
               push(tl[jaw], 1.5 * sigma), push(dst_lmk[jaw], 1.5 * sigma),
               tl[list(CHIN_IDS)] + neck, dst_lmk[list(CHIN_IDS)] + neck]
        local = (np.concatenate(pts) - centre) @ rot.T / iod
        radii = self._ray_lengths(local)
        if state.radii is not None and k > 0:
            radii = np.maximum(radii, k * state.radii + (1.0 - k) * radii)
        state.radii = radii
        poly = centre + (self._ray_dirs * radii[:, None] * iod) @ rot
        reach = int(math.ceil(3.0 * sigma)) + 2
        x0 = max(int(math.floor(poly[:, 0].min())) - reach, 0)
        y0 = max(int(math.floor(poly[:, 1].min())) - reach, 0)
        x1 = min(int(math.ceil(poly[:, 0].max())) + reach + 1, width)
        y1 = min(int(math.ceil(poly[:, 1].max())) + reach + 1, height)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        origin = np.array([x0, y0], np.float64)
        hard = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(hard, [np.round((poly - origin) * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
        ksize = 2 * int(math.ceil(3.0 * sigma)) + 1
        alpha = cv2.GaussianBlur(hard.astype(np.float32) * (1.0 / 255.0), (ksize, ksize), sigma,
                                 borderType=cv2.BORDER_CONSTANT)
        return (x0, y0, x1, y1), hard, alpha, ksize

    def _warp(self, donor: np.ndarray, dl: np.ndarray, tl: np.ndarray, dst_lmk: np.ndarray, sim: np.ndarray,
              box: tuple[int, int, int, int], alpha: np.ndarray, sigma: float, ksize: int, donor_is_frame: bool):
        """The donor warped onto the box (destination points, piecewise-affine dense map), and the mask
        cut back where the donor has no pixels: ``(warped uint8, alpha)``."""
        x0, y0, x1, y1 = box
        cw, ch = x1 - x0, y1 - y0
        origin = np.array([x0, y0], np.float64)
        ids = _WARP_IDS
        src_pts = dl[ids]
        dst_pts = _WARP_W * dst_lmk[ids] + (1.0 - _WARP_W) * tl[ids]
        outer = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]) if donor_is_frame else sim  # donor -> target away from the face
        ring = self._ring(x0, y0, x1, y1)
        src_pts = np.concatenate([src_pts, _apply(_invert(outer), ring)])
        dst_pts = np.concatenate([dst_pts, ring]) - origin
        mapx, mapy = self._dense_map(src_pts, dst_pts, cw, ch, outer, origin)
        warped = cv2.remap(donor, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        dh, dw = donor.shape[:2]
        lo_x, hi_x = cv2.minMaxLoc(mapx)[:2]
        lo_y, hi_y = cv2.minMaxLoc(mapy)[:2]
        if lo_x < 0 or lo_y < 0 or hi_x > dw - 1 or hi_y > dh - 1:  # donor may not cover the region
            inside = ((mapx >= 0) & (mapx <= dw - 1) & (mapy >= 0) & (mapy <= dh - 1)).astype(np.uint8)
            if not inside[alpha > 0].all():  # cut the mask back where the donor has no pixels
                valid = cv2.erode(inside, np.ones((3, 3), np.uint8), iterations=max(1, int(round(sigma))))
                alpha = alpha * cv2.GaussianBlur(valid.astype(np.float32), (ksize, ksize), sigma, borderType=cv2.BORDER_CONSTANT)
        return warped, alpha

    def _colour(self, warped: np.ndarray, tcrop: np.ndarray, hard: np.ndarray, tl: np.ndarray, dst_lmk: np.ndarray,
                origin: np.ndarray, state: "_KeyState"):
        """LAB colour transfer of the warped donor to the target (Reinhard et al. 2001): the skin map
        everywhere, the lip-tone map over the donor's lips (feathered), statistics smoothed over time:
        ``(float32 RGB, skin gain, skin offset, lip gain, lip offset)``."""
        k = self.temporal_smoothing
        gain, offset = np.ones(3), np.zeros(3)
        lip_gain, lip_offset = np.ones(3), np.zeros(3)
        src = warped.astype(np.float32)
        if not self.color_transfer:
            return src, gain, offset, lip_gain, lip_offset
        skin = self._skin_mask(hard, tl, dst_lmk, origin)
        t_skin, d_skin = region_stats(tcrop, skin, 2), region_stats(src, skin, 2)
        if t_skin is None or d_skin is None:
            return src, gain, offset, lip_gain, lip_offset
        now = {"mu_t": t_skin[0], "sd_t": t_skin[1], "mu_d": d_skin[0], "sd_d": d_skin[1]}
        lip_w = None
        if self.lip_tone:
            outer, inner = list(LIPS_OUTER_IDS), list(LIPS_INNER_IDS)
            t_lips = region_stats(tcrop, lip_tissue_mask(hard.shape, tl[outer] - origin, tl[inner] - origin, 1))
            d_mask = lip_tissue_mask(hard.shape, dst_lmk[outer] - origin, dst_lmk[inner] - origin)
            d_lips = region_stats(src, cv2.erode(d_mask, np.ones((3, 3), np.uint8)))
            if t_lips is not None and d_lips is not None:
                now.update({"lip_mu_t": t_lips[0], "lip_sd_t": t_lips[1], "lip_mu_d": d_lips[0], "lip_sd_d": d_lips[1]})
                lip_w = d_mask
        smooth_stats(state.stats, now, k)
        st = state.stats
        gain, offset = reinhard_map(st["mu_t"], st["sd_t"], st["mu_d"], st["sd_d"])
        lab = rgb_to_lab(src)
        out = cv2.transform(lab, np.hstack([np.diag(gain), offset[:, None]]).astype(np.float32))
        if lip_w is not None:
            lip_gain, lip_offset = reinhard_map(st["lip_mu_t"], st["lip_sd_t"], st["lip_mu_d"], st["lip_sd_d"])
            self._blend_lip_tone(out, lab, lip_w, gain, offset, lip_gain, lip_offset, tl)
        src = cv2.cvtColor(out, cv2.COLOR_LAB2RGB) * 255.0  # out-of-gamut values saturate below
        return src, gain, offset, lip_gain, lip_offset

    @staticmethod
    def _blend_lip_tone(out: np.ndarray, lab: np.ndarray, lips: np.ndarray, gain: np.ndarray, offset: np.ndarray,
                        lip_gain: np.ndarray, lip_offset: np.ndarray, tl: np.ndarray) -> None:
        """Over the donor's lips (``lips`` 0/1, feathered by a Gaussian of ``LIP_FEATHER`` mouth widths),
        move ``out`` (skin-mapped L*a*b*) towards the lip-tone map of ``lab``, in place, on the lips' box."""
        ys, xs = np.nonzero(lips)
        sigma = max(1.0, LIP_FEATHER * float(np.linalg.norm(tl[291, :2] - tl[61, :2])))
        reach = math.ceil(3.0 * sigma)
        h, w = lips.shape
        y0, y1 = max(int(ys.min()) - reach, 0), min(int(ys.max()) + reach + 1, h)
        x0, x1 = max(int(xs.min()) - reach, 0), min(int(xs.max()) + reach + 1, w)
        wgt = cv2.GaussianBlur(lips[y0:y1, x0:x1].astype(np.float32), (2 * reach + 1, 2 * reach + 1), sigma,
                               borderType=cv2.BORDER_CONSTANT)
        delta = cv2.transform(lab[y0:y1, x0:x1], np.hstack([np.diag(lip_gain - gain),
                                                            (lip_offset - offset)[:, None]]).astype(np.float32))
        out[y0:y1, x0:x1] += delta * wgt[:, :, None]

    # ------------------------------------------------------------------------------------------------
    def _ray_lengths(self, pts: np.ndarray) -> np.ndarray:
        """Distance from the origin to the convex hull of ``pts`` (face frame) along each mask ray."""
        hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)
        a = hull
        b = np.roll(hull, -1, axis=0)
        e = b - a  # (E, 2)
        u = self._ray_dirs  # (R, 2)
        # solve t*u = a + s*e  ->  [u, -e] [t, s]^T = a
        det = u[:, None, 0] * (-e[None, :, 1]) - u[:, None, 1] * (-e[None, :, 0])
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (a[None, :, 0] * (-e[None, :, 1]) - a[None, :, 1] * (-e[None, :, 0])) / det
            s = (u[:, None, 0] * a[None, :, 1] - u[:, None, 1] * a[None, :, 0]) / det
        ok = (np.abs(det) > 1e-12) & (s >= -1e-9) & (s <= 1 + 1e-9) & (t > 0)
        t = np.where(ok, t, np.inf)
        r = t.min(1)
        if not np.isfinite(r).all():  # the mouth centre outside the hull (never for real faces)
            r = np.where(np.isfinite(r), r, np.linalg.norm(pts, axis=1).max())
        return r

    @staticmethod
    def _ring(x0: int, y0: int, x1: int, y1: int, n: int = 5) -> np.ndarray:
        """Points on a rectangle one pixel outside the crop (n per side), so triangles cover every pixel."""
        xs = np.linspace(x0 - 1.0, x1, n)
        ys = np.linspace(y0 - 1.0, y1, n)
        top = np.stack([xs, np.full(n, y0 - 1.0)], 1)
        bottom = np.stack([xs, np.full(n, float(y1))], 1)
        left = np.stack([np.full(n - 2, x0 - 1.0), ys[1:-1]], 1)
        right = np.stack([np.full(n - 2, float(x1)), ys[1:-1]], 1)
        return np.concatenate([top, bottom, left, right])

    @staticmethod
    def _dense_map(src: np.ndarray, dst: np.ndarray, cw: int, ch: int, sim: np.ndarray,
                   origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Piecewise-affine inverse map over a ``(ch, cw)`` crop: for each crop pixel, its donor position.

        ``dst`` are crop coordinates, ``src`` donor pixels; returns float32 ``(ch, cw)`` x and y maps.
        Pixels no triangle covers (none with the ring) fall back to the similarity alone.
        """
        from scipy.spatial import Delaunay

        tri = Delaunay(dst).simplices  # (T, 3)
        d = dst[tri]  # (T, 3, 2)
        s = src[tri]
        area = np.abs((d[:, 1, 0] - d[:, 0, 0]) * (d[:, 2, 1] - d[:, 0, 1]) - (d[:, 2, 0] - d[:, 0, 0]) * (d[:, 1, 1] - d[:, 0, 1]))
        keep = area > 1e-6
        d, s = d[keep], s[keep]
        mat = np.concatenate([d, np.ones(d.shape[:2] + (1,))], 2)  # (T, 3, 3) rows [x y 1]
        coef = np.linalg.solve(mat, s)  # (T, 3, 2): src = [x y 1] @ coef
        # rasterise triangle ids (1-based; 0 = none) with sub-pixel vertices
        idx = np.zeros((ch, cw), np.int32)
        vert = np.round(d * 16).astype(np.int32)
        for i in range(len(d)):
            cv2.fillConvexPoly(idx, vert[i], i + 1, lineType=cv2.LINE_8, shift=4)
        inv = _invert(sim)
        ident = np.zeros((1, 3, 2))
        ident[0, :2, :] = inv[:, :2].T
        ident[0, 2, :] = inv[:, 2] + inv[:, :2] @ origin  # the face-plane map in crop coordinates
        coef = np.concatenate([ident, coef]).astype(np.float32)  # index 0: fallback
        xs = np.arange(cw, dtype=np.float32)[None, :]
        ys = np.arange(ch, dtype=np.float32)[:, None]
        mapx = coef[:, 0, 0][idx] * xs + coef[:, 1, 0][idx] * ys + coef[:, 2, 0][idx]
        mapy = coef[:, 0, 1][idx] * xs + coef[:, 1, 1][idx] * ys + coef[:, 2, 1][idx]
        return mapx, mapy

    @staticmethod
    def _skin_mask(hard: np.ndarray, tl: np.ndarray, dst_lmk: np.ndarray, origin: np.ndarray) -> np.ndarray:
        """uint8 mask of lower-face skin in both faces (inside both jaw lines, outside both mouths)."""
        h, w = hard.shape
        face_ids = list(MASK_TOP_IDS[::-1]) + list(JAW_IDS)
        region = (hard > 127).astype(np.uint8)
        for pts in (tl, dst_lmk):
            face = np.zeros((h, w), np.uint8)
            cv2.fillPoly(face, [np.round(cv2.convexHull((pts[face_ids] - origin).astype(np.float32))).astype(np.int32)], 1)
            region &= face
        lip_w = max(2, int(0.08 * np.linalg.norm(tl[291] - tl[61])))
        for pts in (tl, dst_lmk):
            lips = np.round(pts[list(LIPS_OUTER_IDS)] - origin).astype(np.int32)
            cv2.fillPoly(region, [lips], 0)
            cv2.polylines(region, [lips], True, 0, thickness=lip_w)
        return region

    @staticmethod
    def _poisson(src: np.ndarray, tcrop: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Poisson-blend ``src`` (float RGB 0-255) into ``tcrop`` on ``alpha > 0.5``; float result."""
        mask = (alpha > 0.5).astype(np.uint8) * 255
        ys, xs = np.nonzero(mask)
        if len(xs) < 16:
            return src
        pad = 2
        src_u8 = cv2.copyMakeBorder(np.clip(np.rint(src), 0, 255).astype(np.uint8), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        dst_u8 = cv2.copyMakeBorder(np.ascontiguousarray(tcrop), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        mask_p = cv2.copyMakeBorder(mask, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        mask_p[:pad + 1] = 0
        mask_p[-pad - 1:] = 0
        mask_p[:, :pad + 1] = 0
        mask_p[:, -pad - 1:] = 0
        bx, by, bw, bh = cv2.boundingRect(mask_p)
        if bw < 4 or bh < 4:
            return src
        center = (bx + bw // 2, by + bh // 2)
        try:
            cloned = cv2.seamlessClone(src_u8, dst_u8, mask_p, center, cv2.NORMAL_CLONE)
        except cv2.error as exc:  # pragma: no cover - OpenCV refuses odd geometries
            log.debug("seamlessClone failed (%s); feathered blend only", exc)
            return src
        return cloned[pad:-pad, pad:-pad].astype(np.float32)
