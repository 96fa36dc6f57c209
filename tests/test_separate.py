"""Stage 2 separators on real speech mixed with a synthetic music-like bed."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub.audio import read_audio
from lipdub.errors import ConfigError

SR = 48000


def _bed(n: int, channels: int, seed: int = 0) -> np.ndarray:
    """Non-speech bed: a sustained three-note chord (with harmonics) plus low-passed noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    chord = sum(
        np.sin(2 * np.pi * f * h * t + rng.uniform(0, 2 * np.pi)) / h
        for f in (220.0, 277.18, 329.63)
        for h in (1, 2, 3)
    )
    noise = np.convolve(rng.standard_normal(n), np.ones(8) / 8, mode="same")
    # about -19 dBFS, 6 dB under the -13.5 dBFS speech: a loud film music bed
    bed = 0.3 * chord / np.max(np.abs(chord)) + 0.18 * noise / np.max(np.abs(noise))
    return np.repeat(bed[:, None], channels, axis=1).astype(np.float32)


def _pcm24(x: np.ndarray) -> np.ndarray:
    """Round to the 24-bit PCM grid, as a 24-bit WAV of the mix would hold it."""
    return (np.round(x.astype(np.float64) * 2**23) / 2**23).astype(np.float32)


@pytest.fixture(scope="module")
def separator():
    from lipdub.backends.separate.dfn import DfnSeparator

    return DfnSeparator()


@pytest.fixture(scope="module")
def mixed(testdata, separator):
    speech, sr = read_audio(testdata / "sp_de_sadtalker_deyu.wav")  # 48 kHz, 24-bit, 2 ch
    assert sr == SR
    speech = speech[: 6 * SR]
    bed = _bed(speech.shape[0], speech.shape[1])
    mix = _pcm24(speech + bed)
    return speech, bed, mix, separator.separate(mix, SR)


def test_check_reports_model(separator):
    from lipdub.backends.separate.dfn import DfnSeparator

    assert "DeepFilterNet3" in DfnSeparator.check()
    assert separator.delay_samples > 0


def test_stems_add_back_exactly(mixed):
    _, _, mix, res = mixed
    assert res.dialogue.shape == mix.shape and res.music_effects.shape == mix.shape
    assert res.dialogue.dtype == np.float32 and res.music_effects.dtype == np.float32
    assert np.array_equal(res.dialogue + res.music_effects, mix)


def test_speech_goes_to_dialogue_and_bed_to_me(mixed):
    speech, bed, _, res = mixed
    for ch in range(speech.shape[1]):
        s, d, m, b = speech[:, ch], res.dialogue[:, ch], res.music_effects[:, ch], bed[:, ch]
        assert np.corrcoef(s, d)[0, 1] > 0.9
        # the speech estimation error is what leaks into the M&E: well below the speech energy
        assert np.sum((s - d) ** 2) < 0.25 * np.sum(s**2)
        # most of the bed's energy stays in the M&E
        assert np.corrcoef(m, b)[0, 1] > 0.75
        assert np.sum(m * b) > 0.7 * np.sum(b**2)


def test_delay_is_compensated(mixed):
    speech, _, _, res = mixed
    s = speech[:, 0].astype(np.float64)
    d = res.dialogue[:, 0].astype(np.float64)
    max_lag = 3000
    lags = np.arange(-max_lag, max_lag + 1)
    core = slice(max_lag, len(s) - max_lag)
    xc = [np.dot(d[core], s[max_lag + lag : len(s) - max_lag + lag]) for lag in lags]
    assert abs(int(lags[int(np.argmax(xc))])) <= 1


def test_other_rates_are_resampled(testdata, separator):
    speech, sr = read_audio(testdata / "sp_en_jfk.flac")  # 44.1 kHz, 24-bit
    speech = speech[: 3 * sr]
    res = separator.separate(speech, sr)
    assert res.dialogue.shape == speech.shape
    assert np.array_equal(res.dialogue + res.music_effects, speech)
    assert np.corrcoef(speech[:, 0], res.dialogue[:, 0])[0, 1] > 0.9


def test_float_mix_sums_back_within_rounding(mixed, separator):
    from lipdub.backends.separate.dfn import split_exactly

    speech, bed, _, res = mixed
    mix = (speech * 0.7 + bed * 1.3).astype(np.float32)  # arbitrary float32 values
    dialogue, me = split_exactly(mix, res.dialogue)
    err = np.abs((dialogue + me).astype(np.float64) - mix)
    scale = np.maximum(np.abs(dialogue), np.abs(me)).astype(np.float64)
    assert np.all(err <= scale * 2.0**-23 + 1e-30)
    assert np.mean(err == 0) > 0.9


def test_bad_options_rejected():
    from lipdub.backends.separate.dfn import DfnSeparator

    with pytest.raises(ConfigError):
        DfnSeparator(atten_lim_db=0)
    with pytest.raises(ConfigError):
        DfnSeparator(post_filter_beta=-1)


def test_none_separator_returns_no_stems(testdata):
    from lipdub.backends.separate.none import NoSeparator
    from lipdub.contracts.separate import SEPARATORS

    sep = SEPARATORS.create("none")
    assert isinstance(sep, NoSeparator) and NoSeparator.check()
    mix, sr = read_audio(testdata / "sp_fr_sadtalker_fayu.wav")
    res = sep.separate(mix, sr)
    assert res.dialogue is None and res.music_effects is None
