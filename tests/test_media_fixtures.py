"""The media builders of tests/media_fixtures.py do what the two-speaker and hard-cut tests of
issue 18 will rely on (checked on the built files, from the shared talking heads)."""

from __future__ import annotations

import numpy as np
from media_fixtures import hard_cut_repeat, hstack_two_speakers

from lipdub.media.probe import decode_audio, probe


def _frames(path, indices):
    import av

    want, got = set(indices), {}
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in want:
                got[i] = f.to_ndarray(format="gray").astype(np.float32)
    return got


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0


def test_two_speakers_side_by_side_take_turns(testdata, tmp_path):
    left, right = testdata / "th_retalking_face5.mp4", testdata / "th_voxceleb_pcavs_00086.mp4"
    out = hstack_two_speakers(left, right, tmp_path / "two.mp4", height=224, turn_s=2.5)
    info = probe(out)
    assert (info.video.width, info.video.height, info.video.frame_count) == (448, 224, 125)
    _, mix16 = decode_audio(out, info)
    _, l16 = decode_audio(left, probe(left))
    _, r16 = decode_audio(right, probe(right))
    t = int(2.5 * 16000)
    first, second = mix16[:t], mix16[t:2 * t]
    # first turn: the left person's own audio; second turn: the right person's, from its start
    assert np.corrcoef(first[: t - 800], l16[: t - 800])[0, 1] > 0.9
    assert np.corrcoef(second[800: t - 800], r16[800: t - 800])[0, 1] > 0.9
    assert _rms(first) > 0 and _rms(second) > 0
    # each person moves only in their own turn: the listener's half is a held frame
    f = _frames(out, [5, 30, 55, 70, 95, 120])
    half = lambda i, side: f[i][:, :224] if side == "left" else f[i][:, 224:]  # noqa: E731
    moving = lambda side, a, b: float(np.abs(half(a, side) - half(b, side)).mean())  # noqa: E731
    assert moving("right", 5, 55) < 0.5 < moving("left", 5, 55)
    assert moving("left", 70, 120) < 0.5 < moving("right", 70, 120)


def test_hard_cut_jumps_back_to_the_start(testdata, tmp_path):
    out = hard_cut_repeat(testdata / "th_retalking_face5.mp4", tmp_path / "cut.mp4", seconds=2.0)
    info = probe(out)
    assert info.video.frame_count == 100 and abs(info.duration_s - 4.0) < 0.1
    f = _frames(out, [0, 48, 49, 50])
    step_before = np.abs(f[49] - f[48]).mean()
    at_cut = np.abs(f[50] - f[49]).mean()
    assert at_cut > 3 * step_before  # a hard cut, not a smooth change
    assert np.abs(f[50] - f[0]).mean() < at_cut / 3  # back to the first frame
