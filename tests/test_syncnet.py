"""SyncNet v2 (qc/syncnet.py): the published state_dict layout, output shapes, and LSE-D / LSE-C /
offset on constructed features whose answer is known (syncnet_python's SyncNetInstance.evaluate)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import TESTDATA

from lipdub.errors import InputError, MissingWeights
from lipdub.qc import syncnet as sn

SPEC = TESTDATA.parent / "specs" / "syncnet_v2_state_dict.txt"


def _spec_shapes() -> dict[str, list[int]]:
    if not SPEC.is_file():
        pytest.skip(f"{SPEC} not found")
    shapes = {}
    for line in SPEC.read_text().splitlines():
        m = re.match(r"^(net\S+) \[(.*)\]$", line.strip())
        if m:
            shapes[m.group(1)] = [int(x) for x in m.group(2).split(",") if x.strip()]
    return shapes


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A random state_dict with exactly the published keys and shapes, saved like syncnet_v2.model."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for k, shape in _spec_shapes().items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(0)
        elif k.endswith("running_var"):
            state[k] = torch.rand(shape, generator=g) + 0.5
        else:
            state[k] = torch.randn(shape, generator=g) * 0.05
    path = tmp_path_factory.mktemp("syncnet") / "syncnet_v2.model"
    torch.save(state, path)
    return path, state


def test_model_layout_matches_published_state_dict():
    shapes = _spec_shapes()
    assert len(shapes) == 102
    own = {k: list(v.shape) for k, v in sn.build_syncnet().state_dict().items()}
    assert own == shapes


def test_random_state_dict_loads_and_output_shapes(random_weights):
    path, state = random_weights
    model = sn.load_syncnet(path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    with torch.inference_mode():
        a = model.forward_audio(torch.randn(3, 1, 13, 20))
        v = model.forward_video(torch.rand(2, 3, 5, 224, 224) * 255)
    assert a.shape == (3, 1024) and v.shape == (2, 1024)
    assert torch.isfinite(a).all() and torch.isfinite(v).all()


def test_full_score_on_random_weights(random_weights):
    """End to end through MFCC and windows: 12 frames at 25 fps give 7 windows and 31 shifts."""
    model = sn.load_syncnet(random_weights[0])
    rng = np.random.default_rng(1)
    crops = rng.integers(0, 255, (12, 224, 224, 3), dtype=np.uint8)
    audio = rng.standard_normal(12 * 640).astype(np.float32) * 0.1
    s = sn.syncnet_score(model, crops, audio)
    assert s.n_windows == 7 and len(s.mean_distance_by_shift) == 31
    assert s.lse_d == pytest.approx(min(s.mean_distance_by_shift))
    assert s.lse_c == pytest.approx(float(np.median(s.mean_distance_by_shift)) - s.lse_d, abs=1e-5)
    assert -15 <= s.offset_frames <= 15


def test_mfcc_is_13_by_100hz():
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    m = sn.mfcc_100hz(audio)
    assert m.shape[0] == 13 and abs(m.shape[1] - 100) <= 1


def test_bad_weights_are_clear_errors(tmp_path):
    with pytest.raises(MissingWeights):
        sn.load_syncnet(tmp_path / "nope.model")
    bad = tmp_path / "bad.model"
    torch.save({"netcnnaud.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(InputError, match="not a SyncNet v2 state_dict"):
        sn.load_syncnet(bad)


def test_lse_on_constant_features_has_closed_form():
    """Constant features a (video) and b (audio), vshift 1, 3 windows: the padded audio is
    [0, b, b, b, 0], so the mean distances are ((|a| + 2|a-b|)/3, |a-b|, (|a| + 2|a-b|)/3)."""
    a, b = torch.tensor([3.0, 4.0]), torch.tensor([3.0, 3.0])  # |a| = 5, |a - b| = 1
    d = sn.calc_pdist(a.repeat(3, 1), b.repeat(3, 1), vshift=1)
    s = sn.lse_from_distances(d, vshift=1)
    assert s.offset_frames == 0
    assert s.lse_d == pytest.approx(1.0, abs=1e-4)
    assert s.lse_c == pytest.approx((5 + 2) / 3 - 1.0, abs=1e-4)


@pytest.mark.parametrize("shift", [-4, 0, 3])
def test_lse_finds_a_known_shift(shift):
    """Audio features equal to the video features shifted by ``shift`` windows: the distance is ~0 at
    that shift, and syncnet_python's offset (vshift - argmin) reads -shift."""
    rng = np.random.default_rng(2)
    n, vshift = 60, 15
    base = torch.from_numpy(rng.standard_normal((n + 40, 16))).float()
    video = base[20:20 + n]
    audio = base[20 - shift:20 - shift + n]  # audio window i + shift == video window i
    d = sn.calc_pdist(video, audio, vshift)
    s = sn.lse_from_distances(d, vshift)
    assert s.offset_frames == -shift
    # brute force of the same definition (zero padding at both ends)
    ref = np.zeros(2 * vshift + 1)
    for j in range(2 * vshift + 1):
        for i in range(n):
            k = i + j - vshift
            other = audio[k].numpy() if 0 <= k < n else np.zeros(16)
            ref[j] += np.linalg.norm(video[i].numpy() - other + 1e-6)
    ref /= n
    assert np.allclose(s.mean_distance_by_shift, ref, atol=1e-4)
    assert s.lse_d == pytest.approx(ref.min(), abs=1e-4)
    assert s.lse_c == pytest.approx(np.median(ref) - ref.min(), abs=1e-4)
