"""The compositor's lip-tone transfer on real frames of th_retalking_face5.mp4 (lipstick, lighting
that changes over the shot; landmarks by analyze_video).

Checks: with donors taken from other frames of the clip, the composited lips' mean L*a*b* colour is
nearer the target frame's lips than the raw donor's lips are, and nearer than without the lip-tone
transfer; a donor whose lips were darkened keeps the target's lip tone; the lip-tone transfer changes
nothing away from the lips. Side-by-side PNGs go to $LIPDUB_CHECK_DIR (default /tmp/compositor_check).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from media_utils import main_track_clip

from lipdub.lipsync.colour_match import lip_tissue_mask, rgb_to_lab
from lipdub.lipsync.compositor import (
    LIPS_INNER_IDS,
    LIPS_OUTER_IDS,
    Compositor,
    align_donor,
)

CHECK_DIR = Path(os.environ.get("LIPDUB_CHECK_DIR", "/tmp/compositor_check"))


@pytest.fixture(scope="module")
def clip(testdata):
    """(frames uint8 (T, H, W, 3), landmarks float32 (T, 478, 3)) of face5's main track."""
    frames, track = main_track_clip(testdata / "th_retalking_face5.mp4")
    return frames, track.landmarks


def _lips(shape, lmk: np.ndarray) -> np.ndarray:
    """bool (H, W): the lips (outer minus inner contour), one pixel in from their edges."""
    m = lip_tissue_mask(shape[:2], lmk[list(LIPS_OUTER_IDS), :2], lmk[list(LIPS_INNER_IDS), :2], erode=1)
    return m.astype(bool)


def _lip_lab(img: np.ndarray, lmk: np.ndarray) -> np.ndarray:
    """Mean L*a*b* (3,) of the lips of ``img`` at landmarks ``lmk``."""
    return rgb_to_lab(img[_lips(img.shape, lmk)]).mean(0)


def _pairs(frames: np.ndarray, lmk: np.ndarray, n: int) -> list[tuple[int, int]]:
    """``n`` (target, donor) pairs whose raw lip colours differ most among 60 random pairs."""
    rng = np.random.default_rng(5)
    cand = [tuple(int(v) for v in rng.choice(len(frames), 2, replace=False)) for _ in range(60)]
    diff = [np.linalg.norm(_lip_lab(frames[t], lmk[t]) - _lip_lab(frames[d], lmk[d])) for t, d in cand]
    return [cand[i] for i in np.argsort(diff)[::-1][:n]]


def _composite_lips(frames, lmk, pairs, lip_tone: bool, donor_fn=None) -> np.ndarray:
    """Per pair: (target lips, raw donor lips, output lips) mean L*a*b*, float (P, 3, 3)."""
    comp = Compositor(temporal_smoothing=0.0, lip_tone=lip_tone)
    rows = []
    for t, d in pairs:
        donor = frames[d] if donor_fn is None else donor_fn(frames[d], lmk[d])
        out = comp.composite(frames[t], lmk[t], donor, lmk[d])
        dst, _ = align_donor(lmk[d].astype(np.float64), lmk[t].astype(np.float64))
        rows.append([_lip_lab(frames[t], lmk[t]), _lip_lab(donor, lmk[d]), _lip_lab(out, dst)])
    return np.array(rows)


def test_composited_lips_take_the_target_lip_tone(clip):
    frames, lmk = clip
    pairs = _pairs(frames, lmk, 10)
    on = _composite_lips(frames, lmk, pairs, True)
    off = _composite_lips(frames, lmk, pairs, False)
    raw_err = np.linalg.norm(on[:, 1] - on[:, 0], axis=1).mean()  # delta E (CIE76) donor vs target lips
    on_err = np.linalg.norm(on[:, 2] - on[:, 0], axis=1).mean()
    off_err = np.linalg.norm(off[:, 2] - off[:, 0], axis=1).mean()
    assert on_err < raw_err, (on_err, raw_err)
    assert on_err < off_err, (on_err, off_err)


def test_darkened_donor_lips_are_corrected(clip):
    """A donor whose lips (only) are 25 % darker: the skin statistics do not see it, the lip tone does."""
    frames, lmk = clip
    pairs = _pairs(frames, lmk, 6)

    def darken(img: np.ndarray, lm: np.ndarray) -> np.ndarray:
        out = img.copy()
        m = _lips(img.shape, lm)
        m = cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2).astype(bool)
        out[m] = (out[m].astype(np.float32) * 0.75).astype(np.uint8)
        return out

    on = _composite_lips(frames, lmk, pairs, True, darken)
    off = _composite_lips(frames, lmk, pairs, False, darken)
    on_dl = np.abs(on[:, 2, 0] - on[:, 0, 0]).mean()  # lightness error of the output lips
    off_dl = np.abs(off[:, 2, 0] - off[:, 0, 0]).mean()
    raw_dl = np.abs(on[:, 1, 0] - on[:, 0, 0]).mean()
    assert on_dl < 0.5 * raw_dl, (on_dl, raw_dl)
    assert on_dl < 0.5 * off_dl, (on_dl, off_dl)
    t, d = pairs[0]
    donor = darken(frames[d], lmk[d])
    out_on = Compositor(temporal_smoothing=0.0).composite(frames[t], lmk[t], donor, lmk[d])
    out_off = Compositor(temporal_smoothing=0.0, lip_tone=False).composite(frames[t], lmk[t], donor, lmk[d])
    CHECK_DIR.mkdir(parents=True, exist_ok=True)
    pts = lmk[t][list(LIPS_OUTER_IDS), :2]
    (x0, y0), (x1, y1) = (pts.min(0) - 40).astype(int), (pts.max(0) + 40).astype(int)
    sl = (slice(max(y0, 0), y1), slice(max(x0, 0), x1))
    tiles = np.hstack([frames[t][sl], out_off[sl], out_on[sl]])
    cv2.imwrite(str(CHECK_DIR / "lip_tone_darkened_donor.png"), cv2.cvtColor(tiles, cv2.COLOR_RGB2BGR))


def test_lip_tone_changes_nothing_away_from_the_lips(clip):
    frames, lmk = clip
    t, d = _pairs(frames, lmk, 1)[0]
    on = Compositor(temporal_smoothing=0.0).composite(frames[t], lmk[t], frames[d], lmk[d])
    off = Compositor(temporal_smoothing=0.0, lip_tone=False).composite(frames[t], lmk[t], frames[d], lmk[d])
    dst, _ = align_donor(lmk[d].astype(np.float64), lmk[t].astype(np.float64))
    lips = np.zeros(on.shape[:2], np.uint8)
    cv2.fillPoly(lips, [np.round(dst[list(LIPS_OUTER_IDS)]).astype(np.int32)], 1)
    width = float(np.linalg.norm(lmk[t][291, :2] - lmk[t][61, :2]))
    near = cv2.dilate(lips, np.ones((3, 3), np.uint8), iterations=int(np.ceil(0.2 * width)) + 2).astype(bool)
    diff = np.abs(on.astype(np.int16) - off).max(2)
    assert diff[near].max() > 0  # the lips were re-toned
    assert diff[~near].max() <= 1, diff[~near].max()  # elsewhere the same (rounding of the float round trip)
