"""The lip-sync compositor on real frames of th2_retalking_face1.mp4 (landmarks by analyze_video).

Checks: a frame composited with itself is unchanged; an open-mouth donor opens the output's mouth
and moves its jaw (measured by re-running MediaPipe on the output); pixels outside the mask are
bit-identical; a donor crop that does not cover the neck fades out instead of smearing; temporal
smoothing steadies the colour; bad input is a clear error. A few result PNGs are written to
$LIPDUB_CHECK_DIR (default /tmp/compositor_check) for people to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from media_utils import main_track_clip

from lipdub.errors import ConfigError, InputError
from lipdub.faces.landmarks import FaceLandmarker
from lipdub.faces.tracking import mouth_opening
from lipdub.lipsync.compositor import LIPS_OUTER_IDS, Compositor, align_donor

CHECK_DIR = Path(os.environ.get("LIPDUB_CHECK_DIR", "/tmp/compositor_check"))


@pytest.fixture(scope="module")
def clip(testdata):
    """(frames uint8 (T, H, W, 3), landmarks float32 (T, 478, 3), mouth opening (T,)) of th2."""
    frames, track = main_track_clip(testdata / "th2_retalking_face1.mp4")
    return frames, track.landmarks, track.mouth_opening


@pytest.fixture(scope="module")
def landmarker():
    with FaceLandmarker(max_faces=1, detect_every=1) as lmk:
        yield lmk


def _measure(lmk: FaceLandmarker, rgb: np.ndarray) -> np.ndarray:
    lmk.reset()
    faces = lmk.process(rgb)
    assert faces, "MediaPipe found no face in the composited frame"
    return faces[0].landmarks_px


def _closed_and_open(opening: np.ndarray) -> tuple[int, int]:
    return int(np.argmin(opening)), int(np.argmax(opening))


def _save(name: str, *images: np.ndarray) -> None:
    CHECK_DIR.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(CHECK_DIR / name), cv2.cvtColor(np.hstack(images), cv2.COLOR_RGB2BGR))


def _mouth_box(lmk: np.ndarray, shape, pad: float = 0.25) -> tuple[slice, slice]:
    pts = lmk[list(LIPS_OUTER_IDS), :2]
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    px, py = pad * (x1 - x0), pad * (y1 - y0) + 4
    return (slice(max(int(y0 - py), 0), min(int(y1 + py), shape[0])),
            slice(max(int(x0 - px), 0), min(int(x1 + px), shape[1])))


def test_self_donor_changes_almost_nothing(clip):
    frames, lmk, _ = clip
    comp = Compositor()
    for i in (5, 40, 90):
        out = comp.composite(frames[i], lmk[i], frames[i], lmk[i], key=1)
        assert out.shape == frames[i].shape and out.dtype == np.uint8
        assert out is not frames[i]
        ys, xs = _mouth_box(lmk[i], out.shape)
        diff = np.abs(out.astype(np.int16) - frames[i].astype(np.int16))
        assert diff[ys, xs].mean() < 0.5
        assert np.percentile(diff, 99.9) <= 2


def test_open_donor_opens_mouth_and_moves_jaw(clip, landmarker):
    frames, lmk, opening = clip
    closed, open_ = _closed_and_open(opening)
    assert opening[open_] - opening[closed] > 0.1, "th2 should show a closed and an open mouth"
    comp = Compositor()
    for target, donor, name in ((closed, open_, "open_on_closed"), (open_, closed, "closed_on_open")):
        out = comp.composite(frames[target], lmk[target], frames[donor], lmk[donor], key=target)
        comp.reset()
        m_out = _measure(landmarker, out)
        m_tgt = _measure(landmarker, frames[target])
        m_don = _measure(landmarker, frames[donor])
        o_out, o_tgt, o_don = (float(mouth_opening(m)) for m in (m_out, m_tgt, m_don))
        # the output's mouth opening follows the donor's, not the target's
        assert abs(o_out - o_don) < 0.35 * abs(o_don - o_tgt), (name, o_out, o_tgt, o_don)
        # the jaw moves with the mouth: the output's chin (152, measured again) is where the aligned
        # donor's chin is (landmarks given to the compositor), not where the target's was
        dst, _ = align_donor(lmk[donor].astype(np.float64), lmk[target].astype(np.float64))
        chin_move = dst[152, 1] - lmk[target][152, 1]
        assert abs(chin_move) > 4.0, "the donor's jaw should sit at another height"
        assert abs(m_out[152, 1] - dst[152, 1]) < 0.4 * abs(chin_move), (name, m_out[152, 1], dst[152, 1], m_tgt[152, 1])
        # the mouth pixels look like the donor's mouth (aligned), not like the target's
        ys, xs = _mouth_box(m_out, out.shape)
        warped_donor = Compositor(color_transfer=False, temporal_smoothing=0.0)
        w = warped_donor.composite(frames[target], lmk[target], frames[donor], lmk[donor])
        d_out_don = np.abs(out[ys, xs].astype(np.float32) - w[ys, xs]).mean()
        d_out_tgt = np.abs(out[ys, xs].astype(np.float32) - frames[target][ys, xs]).mean()
        assert d_out_don < 0.5 * d_out_tgt, (name, d_out_don, d_out_tgt)
        box = comp.last.box if comp.last else None
        x0, y0, x1, y1 = warped_donor.last.box
        pad = 30
        sl = (slice(max(y0 - pad, 0), y1 + pad), slice(max(x0 - pad, 0), x1 + pad))
        _save(f"{name}.png", frames[target][sl], frames[donor][sl], out[sl])
        assert box is not None


def test_pixels_outside_mask_are_identical(clip):
    frames, lmk, opening = clip
    closed, open_ = _closed_and_open(opening)
    for poisson in (False, True):
        comp = Compositor(poisson=poisson)
        out = comp.composite(frames[closed], lmk[closed], frames[open_], lmk[open_])
        x0, y0, x1, y1 = comp.last.box
        outside = np.ones(out.shape[:2], bool)
        outside[y0:y1, x0:x1] = comp.last.alpha <= 0
        assert outside.mean() > 0.5
        assert np.array_equal(out[outside], frames[closed][outside])
        # the box is around the lower face: below the eyes, around the mouth
        assert y0 > lmk[closed][[33, 263], 1].max()
        assert x0 < lmk[closed][61, 0] and x1 > lmk[closed][291, 0] and y1 > lmk[closed][152, 1]
        assert (comp.last.alpha > 0.99).mean() > 0.15
        if poisson:
            _save("poisson_open_on_closed.png", out[y0:y1, x0:x1])


def test_inplace_writes_into_target(clip):
    frames, lmk, opening = clip
    closed, open_ = _closed_and_open(opening)
    ref = Compositor().composite(frames[closed], lmk[closed], frames[open_], lmk[open_])
    target = frames[closed].copy()
    out = Compositor().composite(target, lmk[closed], frames[open_], lmk[open_], inplace=True)
    assert out is target and np.array_equal(out, ref)


def test_donor_face_crop_fades_where_it_has_no_pixels(clip, landmarker):
    """A neural backend gives a tight face crop (no neck): the mask is cut back, nothing is smeared."""
    frames, lmk, opening = clip
    closed, open_ = _closed_and_open(opening)
    d = lmk[open_]
    x0, y0 = d[:468, :2].min(0).astype(int)
    x1, y1 = d[:468, :2].max(0).astype(int)
    crop = np.ascontiguousarray(frames[open_][y0:y1 - 5, x0:x1])  # the chin is cut off
    scale = 256.0 / crop.shape[1]
    crop = cv2.resize(crop, (256, int(round(crop.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    crop_lmk = d.astype(np.float64).copy()
    crop_lmk[:, :2] = (crop_lmk[:, :2] - [x0, y0]) * scale
    crop_lmk[:, 2] *= scale
    comp = Compositor()
    out = comp.composite(frames[closed], lmk[closed], crop, crop_lmk)
    # below the donor crop's lower edge (mapped into the target) the output is the target
    dst, _ = align_donor(crop_lmk, lmk[closed].astype(np.float64))
    bottom = int(np.ceil(dst[152, 1])) + 2
    np.testing.assert_array_equal(out[bottom + 3 * 6:], frames[closed][bottom + 3 * 6:])
    m_out = _measure(landmarker, out)
    assert mouth_opening(m_out) > 0.5 * opening[open_]
    bx0, by0, bx1, by1 = comp.last.box
    _save("face_crop_donor.png", frames[closed][by0:by1, bx0:bx1], out[by0:by1, bx0:bx1])


def test_temporal_smoothing_steadies_colour(clip):
    """Retrieval-like donors jumping between distant frames on 40 consecutive target frames: the EMA
    of the colour statistics makes the applied L*a*b* correction steadier (the per-frame statistics
    move with the content of the region: mouth shape, shading), and a donor that is suddenly re-lit
    (+20 %, another shot) is still corrected at once (the average restarts instead of fading)."""
    frames, lmk, _ = clip
    rng = np.random.default_rng(0)
    n = 40
    donors = rng.integers(0, len(frames), n)
    relit = 20

    def run(smoothing: float, relight: float) -> tuple[float, np.ndarray]:
        comp = Compositor(temporal_smoothing=smoothing)
        maps, skin = [], []
        for i in range(n):
            t = 20 + i
            donor = frames[donors[i]]
            if i == relit:
                donor = np.clip(donor.astype(np.float32) * relight, 0, 255).astype(np.uint8)
            out = comp.composite(frames[t], lmk[t], donor, lmk[donors[i]], key=3)
            maps.append(comp.last.lab_offset + comp.last.lab_gain * 50.0)  # the correction of mid-grey
            x0, y0, x1, y1 = comp.last.box
            a = comp.last.alpha > 0.99
            lab = cv2.cvtColor(out[y0:y1, x0:x1].astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
            skin.append(lab[a].mean(0))
        jumps = float(np.abs(np.diff(np.array(maps)[np.arange(n) != relit], axis=0)).mean())
        return jumps, np.array(skin)

    raw, raw_skin = run(0.0, 1.0)
    smooth, smooth_skin = run(0.6, 1.0)
    assert smooth < 0.5 * raw, (smooth, raw)
    _, relit_skin = run(0.6, 1.2)
    assert abs(relit_skin[relit, 0] - smooth_skin[relit, 0]) < 1.5, (relit_skin[relit], smooth_skin[relit])
    assert np.abs(smooth_skin - raw_skin).max() < 3.0  # smoothing never drifts far from the per-frame match


def test_reset_and_keys_are_independent(clip):
    frames, lmk, opening = clip
    closed, open_ = _closed_and_open(opening)
    a = Compositor()
    first = a.composite(frames[closed], lmk[closed], frames[open_], lmk[open_], key=7)
    a.composite(frames[closed + 1], lmk[closed + 1], frames[3], lmk[3], key=7)
    other = a.composite(frames[closed], lmk[closed], frames[open_], lmk[open_], key=8)  # fresh key
    assert np.array_equal(first, other)
    a.reset(7)
    again = a.composite(frames[closed], lmk[closed], frames[open_], lmk[open_], key=7)
    assert np.array_equal(first, again)
    a.reset()
    assert np.array_equal(first, a.composite(frames[closed], lmk[closed], frames[open_], lmk[open_], key=8))


def test_bad_input_is_a_clear_error(clip):
    frames, lmk, _ = clip
    comp = Compositor()
    with pytest.raises(InputError):
        comp.composite(frames[0].astype(np.float32), lmk[0], frames[1], lmk[1])
    with pytest.raises(InputError):
        comp.composite(frames[0], lmk[0][:100], frames[1], lmk[1])
    bad = lmk[1].copy()
    bad[10, 0] = np.nan
    with pytest.raises(InputError):
        comp.composite(frames[0], lmk[0], frames[1], bad)
    with pytest.raises(ConfigError):
        Compositor(temporal_smoothing=1.0)
    with pytest.raises(ConfigError):
        Compositor(feather_px=0.0)
