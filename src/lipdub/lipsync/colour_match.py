"""Colour matching of a warped donor to the target frame, for the compositor (stage 12, step 4).

Two region-wise colour transfers after Reinhard, Ashikhmin, Gooch, Shirley, "Color Transfer between
Images" (IEEE CG&A 2001): per channel mean and standard deviation in CIE L*a*b* (OpenCV's float
conversion, L in [0, 100], a* and b* about [-127, 127]), ``lab' = (lab - mean_d) * std_t / std_d +
mean_t``, one map fitted on each region:

* **skin**: the lower-face skin inside both faces' jaw lines, lips of both excluded (a mouth that
  opens does not read as a colour change), applied to the whole warped donor;
* **lips** (lip tone): the lip tissue (between the outer and inner lip contours, MediaPipe Face Mesh
  landmarks) of the target and of the warped donor, applied over the donor's lips through a feathered
  weight, so a donor frame whose lips are darker or redder than the target frame's (another moment of
  the shot, another light on the lips) takes the target's lip tone instead of carrying its own into
  the frame.

The statistics are smoothed in time per face track by :func:`smooth_stats` (exponential moving average
restarting on a jump).
"""

from __future__ import annotations

import cv2
import numpy as np

SNAP_LAB = 8.0  # a colour statistic jumping by more than this (L*a*b* units) restarts its average
GAIN_RANGE = (0.75, 1.33)  # clamp of the Reinhard std ratio
STD_PRIOR_LAB = 2.0  # added to both standard deviations: a small std (a*, b*) gives no wild gain
MIN_PIXELS = 25  # fewer pixels than this in a region: no statistics from it this frame


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* of RGB values (OpenCV ``COLOR_RGB2LAB`` on float input, D65).

    Args:
        rgb: uint8 or float32 ``(..., 3)`` RGB in [0, 255] (2-D ``(N, 3)`` or an image ``(H, W, 3)``).

    Returns:
        float32 array of the same shape: L in [0, 100], a*, b* about [-127, 127].
    """
    arr = np.asarray(rgb, np.float32) * np.float32(1.0 / 255.0)
    flat = arr.ndim == 2
    lab = cv2.cvtColor(arr[:, None] if flat else arr, cv2.COLOR_RGB2LAB)
    return lab[:, 0] if flat else lab


def lab_stats(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of float ``(N, 3)`` L*a*b* pixels: float64 ``(3,)`` each."""
    return lab.mean(0, dtype=np.float64), lab.std(0, dtype=np.float64)


def reinhard_map(mu_t: np.ndarray, sd_t: np.ndarray, mu_d: np.ndarray, sd_d: np.ndarray,
                 gain_range: tuple[float, float] = GAIN_RANGE, std_prior: float = STD_PRIOR_LAB
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Reinhard et al. (2001) mean/std transfer as a per-channel affine map ``lab * gain + offset``.

    Args:
        mu_t, sd_t: float ``(3,)`` L*a*b* mean and standard deviation of the target region.
        mu_d, sd_d: the same of the donor region.
        gain_range: clamp of ``(sd_t + prior) / (sd_d + prior)``.
        std_prior: L*a*b* units added to both standard deviations (a nearly flat region gives no wild gain).

    Returns:
        ``(gain, offset)``: float64 ``(3,)`` each; the donor mean maps exactly onto the target mean.
    """
    gain = np.clip((np.asarray(sd_t) + std_prior) / (np.asarray(sd_d) + std_prior), *gain_range)
    return gain, np.asarray(mu_t, np.float64) - gain * np.asarray(mu_d, np.float64)


def smooth_stats(stats: dict[str, np.ndarray], now: dict[str, np.ndarray], k: float, snap: float = SNAP_LAB) -> None:
    """Exponential moving average of colour statistics, in place: ``stats[name] = k * old + (1 - k) * new``.

    A statistic whose new value is more than ``snap`` L*a*b* units from its average in any channel (a
    donor from another shot, a cut) restarts at the new value instead of fading in.

    Args:
        stats: the running averages (float64 ``(3,)`` each) by name; updated.
        now: this frame's values by name.
        k: weight in [0, 1) of the previous average (0: no smoothing).
        snap: the restart threshold, L*a*b* units.
    """
    for name, value in now.items():
        prev = stats.get(name)
        if prev is not None and k > 0 and np.abs(value - prev).max() <= snap:
            value = k * prev + (1.0 - k) * value
        stats[name] = value


def lip_tissue_mask(shape: tuple[int, int], outer: np.ndarray, inner: np.ndarray, erode: int = 0) -> np.ndarray:
    """uint8 ``(H, W)`` mask (0/1) of the lips: inside the outer lip contour, outside the inner one.

    Args:
        shape: ``(H, W)`` of the crop.
        outer, inner: float ``(N, 2)`` outer and inner lip contour points (MediaPipe Face Mesh lip
            landmarks in order around the mouth), crop pixels.
        erode: pixels (3x3 erosions) taken off the mask's edges, so mixed lip/skin pixels on the
            vermilion border and teeth on the inner edge stay out of statistics.
    """
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(outer).astype(np.int32)], 1)
    cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], 0)
    if erode > 0:
        mask = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=int(erode))
    return mask


def region_stats(image: np.ndarray, mask: np.ndarray, step: int = 1) -> tuple[np.ndarray, np.ndarray] | None:
    """L*a*b* mean and std of ``image`` (RGB uint8 or float32 ``(H, W, 3)``, 0-255) over ``mask``.

    Args:
        image: the RGB crop.
        mask: ``(H, W)`` mask, non-zero where the region is.
        step: sample every ``step``-th row and column (statistics of a large region need few pixels).

    Returns:
        ``(mean, std)`` float64 ``(3,)`` each, or None when the region has fewer than ``MIN_PIXELS``
        sampled pixels.
    """
    ys, xs = np.nonzero(mask[::step, ::step])
    if len(ys) < MIN_PIXELS:
        return None
    return lab_stats(rgb_to_lab(image[ys * step, xs * step]))
