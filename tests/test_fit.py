"""Timing fit (isochrony) on real speech: espeak-ng Spanish lines and the JFK recording."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub.audio import read_audio
from lipdub.contracts.synthesize import TTS_BACKENDS, Speech
from lipdub.errors import BackendUnavailable, ConfigError, StageFailed
from lipdub.languages import parse_language
from lipdub.timing.fit import FittedSpeech, Slot, fit_speech, time_stretch, trim_silence

LINE_ES = "Buenos días, me llamo Juan y vivo en Barcelona desde hace muchos años."
OUT_HZ = 48000


@pytest.fixture(scope="module")
def speech() -> Speech:
    tts_cls = TTS_BACKENDS.load("espeak-ng")
    try:
        tts_cls.check()
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    return tts_cls().synthesize(LINE_ES, parse_language("es"))


@pytest.fixture(scope="module")
def trimmed_s(speech) -> float:
    trimmed, _ = trim_silence(speech.samples, speech.sample_rate_hz)
    return len(trimmed) / speech.sample_rate_hz


@pytest.fixture(scope="module")
def jfk(testdata):
    x, sr = read_audio(testdata / "sp_en_jfk.flac", mono=True)
    return x[: 5 * sr], sr  # the first 5 s: "And so, my fellow Americans..."


def median_f0_hz(x: np.ndarray, sr: int) -> float:
    """Median pitch of the loud, periodic 40 ms frames (autocorrelation peak in 60..400 Hz)."""
    n = int(0.04 * sr)
    frames = x[: len(x) // n * n].reshape(-1, n).astype(np.float64)
    energy = np.sqrt((frames**2).mean(axis=1))
    lo, hi = int(sr / 400), int(sr / 60)
    f0 = []
    for f in frames[energy > 0.2 * energy.max()]:
        f = f - f.mean()
        ac = np.correlate(f, f, mode="full")[n - 1:]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[0] > 0 and ac[lag] / ac[0] > 0.5:
            f0.append(sr / lag)
    assert len(f0) >= 10, "too few voiced frames to measure pitch"
    return float(np.median(f0))


# ---------------------------------------------------------------- time_stretch


@pytest.mark.parametrize("ratio", [0.8, 1.2])
def test_stretch_changes_duration_keeps_pitch(jfk, ratio):
    x, sr = jfk
    y = time_stretch(x, sr, ratio)
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) == pytest.approx(len(x) / ratio, rel=0.02)
    # Pitch kept: a plain resampling speed-up would move it by the ratio (20 %).
    assert median_f0_hz(y, sr) == pytest.approx(median_f0_hz(x, sr), rel=0.06)
    # Same loudness ballpark (not silence, not clipped).
    assert 0.5 < np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(x**2)) < 2.0


def test_stretch_near_one_is_identity(jfk):
    x, sr = jfk
    y = time_stretch(x, sr, 1.0005)
    assert np.array_equal(x, y)


def test_stretch_invalid_args(jfk):
    x, sr = jfk
    for bad in (0.0, -1.2, float("nan"), float("inf")):
        with pytest.raises(ConfigError):
            time_stretch(x, sr, bad)
    with pytest.raises(ConfigError, match="mono"):
        time_stretch(np.stack([x, x], axis=1), sr, 1.2)
    with pytest.raises(ConfigError):
        time_stretch(x, 0, 1.2)


# ---------------------------------------------------------------- trim_silence


def test_trim_removes_padded_silence(speech):
    sr = speech.sample_rate_hz
    core, _ = trim_silence(speech.samples, sr, pad_s=0.0)
    rng = np.random.default_rng(1)
    lead, tail = int(1.0 * sr), int(0.5 * sr)
    hiss = (rng.standard_normal(lead + len(core) + tail) * 10 ** (-65 / 20)).astype(np.float32)  # -65 dBFS noise floor
    padded = hiss.copy()
    padded[lead: lead + len(core)] += core
    out, lead_trim_s = trim_silence(padded, sr, pad_s=0.02)
    assert lead_trim_s == pytest.approx(1.0 - 0.02, abs=0.015)
    assert len(out) / sr == pytest.approx(len(core) / sr + 0.04, abs=0.03)


def test_trim_edge_cases(speech):
    sr = speech.sample_rate_hz
    out, lead = trim_silence(np.zeros(sr, np.float32), sr)
    assert out.size == 0 and lead == 0.0
    with pytest.raises(ConfigError):
        trim_silence(speech.samples, sr, threshold_db=3.0)
    with pytest.raises(ConfigError):
        trim_silence(speech.samples, sr, pad_s=-0.1)


# ---------------------------------------------------------------- fit_speech


def _check_common(fit: FittedSpeech, speech: Speech, trimmed_s: float) -> None:
    assert fit.sample_rate_hz == OUT_HZ and fit.samples.dtype == np.float32
    assert fit.synthesized_duration_s == pytest.approx(speech.duration_s)
    assert fit.trimmed_duration_s == pytest.approx(trimmed_s)
    assert fit.placed_end_s - fit.placed_start_s == pytest.approx(len(fit.samples) / OUT_HZ)
    # Never cut: the output lasts the trimmed speech divided by the stretch ratio.
    assert fit.duration_s == pytest.approx(trimmed_s / fit.stretch_ratio, rel=0.02)
    ph = fit.phonemes
    assert ph and len(ph) >= len(speech.phonemes) - 2
    assert all(0 <= p.start_s < p.end_s <= fit.duration_s + 1e-9 for p in ph)
    assert all(b.start_s >= a.start_s for a, b in zip(ph, ph[1:]))


def test_fits_as_is(speech, trimmed_s):
    slot = Slot(start_s=10.0, end_s=10.0 + trimmed_s + 1.5, free_before_s=1.0, free_after_s=1.0)
    fit = fit_speech(speech, slot)
    _check_common(fit, speech, trimmed_s)
    assert fit.stretch_ratio == 1.0 and fit.overrun_s == 0.0
    assert fit.borrowed_before_s == 0.0 and fit.borrowed_after_s == 0.0
    assert fit.placed_start_s == 10.0  # kept at the start, not slowed down to fill the slot
    assert fit.placed_end_s == pytest.approx(10.0 + trimmed_s, abs=1e-3)


def test_borrows_after(speech, trimmed_s):
    slot = Slot(start_s=5.0, end_s=5.0 + trimmed_s - 0.3, free_before_s=1.0, free_after_s=0.5)
    fit = fit_speech(speech, slot)
    _check_common(fit, speech, trimmed_s)
    assert fit.stretch_ratio == 1.0 and fit.overrun_s == 0.0
    assert fit.borrowed_after_s == pytest.approx(0.3, abs=1e-6)
    assert fit.borrowed_before_s == 0.0 and fit.placed_start_s == 5.0


def test_borrows_before_after_the_free_time_after(speech, trimmed_s):
    slot = Slot(start_s=5.0, end_s=5.0 + trimmed_s - 0.2, free_before_s=1.0, free_after_s=0.05)
    fit = fit_speech(speech, slot, max_borrow_before_s=0.25)
    _check_common(fit, speech, trimmed_s)
    assert fit.stretch_ratio == 1.0 and fit.overrun_s == 0.0
    assert fit.borrowed_after_s == pytest.approx(0.05, abs=1e-6)
    assert fit.borrowed_before_s == pytest.approx(0.15, abs=1e-6)
    assert fit.placed_start_s == pytest.approx(4.85, abs=1e-6)


def test_stretches_within_limit(speech, trimmed_s):
    # 0.2 s may be borrowed before (capped from 0.6 free), 0.1 s after; the rest by a ~1.15 speed-up.
    window_s = trimmed_s / 1.15
    slot = Slot(start_s=2.0, end_s=2.0 + window_s - 0.3, free_before_s=0.6, free_after_s=0.1)
    fit = fit_speech(speech, slot, max_borrow_before_s=0.2)
    _check_common(fit, speech, trimmed_s)
    assert fit.borrowed_after_s == pytest.approx(0.1) and fit.borrowed_before_s == pytest.approx(0.2)
    assert fit.stretch_ratio == pytest.approx(1.15, rel=1e-6)
    assert fit.duration_s == pytest.approx(window_s, rel=0.02)
    assert fit.overrun_s == 0.0
    assert fit.placed_start_s == pytest.approx(1.8)
    # Phonemes are compressed with the audio.
    assert fit.phonemes[-1].end_s < speech.phonemes[-1].end_s / 1.1


def test_overruns_beyond_limit(speech, trimmed_s):
    slot = Slot(start_s=3.0, end_s=3.0 + trimmed_s / 2)
    fit = fit_speech(speech, slot, max_stretch=1.25)
    _check_common(fit, speech, trimmed_s)
    assert fit.stretch_ratio == 1.25
    assert fit.duration_s == pytest.approx(trimmed_s / 1.25, rel=0.02)  # speech not cut
    assert fit.overrun_s == pytest.approx(trimmed_s / 1.25 - trimmed_s / 2, rel=0.02)
    assert fit.placed_end_s == pytest.approx(slot.end_s + fit.overrun_s, abs=1e-6)
    report = fit.report("espeak-ng", slot)
    assert report.overrun_s == fit.overrun_s and report.stretch_ratio == 1.25 and report.voice == "es"


def test_no_stretch_when_max_stretch_is_one(speech, trimmed_s):
    slot = Slot(start_s=0.0, end_s=trimmed_s - 0.5)
    fit = fit_speech(speech, slot, max_stretch=1.0)
    assert fit.stretch_ratio == 1.0
    assert fit.overrun_s == pytest.approx(0.5, abs=2e-3)


def test_fit_real_recording(jfk):
    x, sr = jfk
    speech = Speech(samples=x, sample_rate_hz=sr)
    fit = fit_speech(speech, Slot(start_s=0.0, end_s=4.0, free_after_s=0.2), sample_rate_hz=OUT_HZ)
    assert fit.phonemes is None and fit.borrowed_after_s == pytest.approx(0.2)
    assert 1.0 < fit.stretch_ratio <= 1.25
    assert fit.duration_s == pytest.approx(fit.trimmed_duration_s / fit.stretch_ratio, rel=0.02)


def test_fit_invalid_args(speech):
    slot = Slot(0.0, 2.0)
    with pytest.raises(ConfigError, match="max_stretch"):
        fit_speech(speech, slot, max_stretch=0.9)
    with pytest.raises(ConfigError, match="max_borrow_before_s"):
        fit_speech(speech, slot, max_borrow_before_s=-0.1)
    with pytest.raises(ConfigError):
        fit_speech(speech, slot, sample_rate_hz=0)
    with pytest.raises(ConfigError):
        Slot(2.0, 1.0)
    with pytest.raises(ConfigError):
        Slot(0.0, 1.0, free_before_s=-0.5)
    with pytest.raises(StageFailed, match="silent"):
        fit_speech(Speech(samples=np.zeros(22050, np.float32), sample_rate_hz=22050), slot)
