"""Stage 3: silero VAD on music / noise / speech and on clean speech."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf

from lipdub.audio import read_audio, resample
from lipdub.errors import ConfigError


@pytest.fixture(scope="module")
def vad():
    from lipdub.contracts.vad import VADS

    return VADS.create("silero")


def _overlap_s(regions, start_s: float, end_s: float) -> float:
    return sum(max(0.0, min(r.end_s, end_s) - max(r.start_s, start_s)) for r in regions)


def _assert_sorted_disjoint(regions, duration_s: float) -> None:
    for r in regions:
        assert 0.0 <= r.start_s < r.end_s <= duration_s + 1e-6
    for a, b in zip(regions, regions[1:]):
        assert a.end_s < b.start_s


def test_speech_vs_music_and_noise(testdata, vad):
    audio, sr = sf.read(testdata / "mu_ina_musanmix.wav", dtype="float32")
    with open(testdata / "mu_ina_musanmix-smn-gender.csv", newline="") as f:
        rows = [(r["labels"], float(r["start"]), float(r["stop"])) for r in csv.DictReader(f, delimiter="\t")]
    regions = vad.detect(audio, sr)
    _assert_sorted_disjoint(regions, len(audio) / sr)
    speech = [(a, b) for lab, a, b in rows if lab in ("male", "female")]
    music = [(a, b) for lab, a, b in rows if lab == "music"]
    noise = [(a, b) for lab, a, b in rows if lab == "noise"]
    span = (min(a for a, _ in speech), max(b for _, b in speech))
    ref_speech_s = sum(b - a for a, b in speech)
    assert _overlap_s(regions, *span) >= 0.8 * ref_speech_s
    music_s = sum(b - a for a, b in music)
    assert sum(_overlap_s(regions, a, b) for a, b in music) <= 0.05 * music_s
    noise_s = sum(b - a for a, b in noise)
    assert sum(_overlap_s(regions, a, b) for a, b in noise) <= 0.05 * noise_s
    # nearly everything detected lies in the reference speech span (padding aside)
    total = sum(r.end_s - r.start_s for r in regions)
    assert _overlap_s(regions, span[0] - 1.0, span[1] + 1.0) >= 0.9 * total


def test_clean_speech(testdata, vad):
    audio, sr = read_audio(testdata / "sp_en_jfk.flac", mono=True)  # 44.1 kHz
    audio16 = resample(audio, sr, 16000)
    regions = vad.detect(audio16, 16000)
    duration_s = len(audio16) / 16000
    _assert_sorted_disjoint(regions, duration_s)
    total = sum(r.end_s - r.start_s for r in regions)
    assert 0.6 * duration_s <= total <= duration_s
    # whisper's test: "Americans" is spoken around t = 1.8 s
    assert any(r.start_s <= 1.8 <= r.end_s for r in regions)
    # the 44.1 kHz input is resampled internally to the same result within a VAD window or two
    regions44 = vad.detect(audio, sr)
    assert len(regions44) == len(regions)
    for a, b in zip(regions, regions44):
        assert abs(a.start_s - b.start_s) < 0.07 and abs(a.end_s - b.end_s) < 0.07


def test_silence_has_no_speech(vad):
    assert vad.detect(np.zeros(16000 * 3, dtype=np.float32), 16000) == []


def test_options_are_used_and_checked(testdata):
    from lipdub.backends.vad.silero import SileroVad

    audio, sr = sf.read(testdata / "sp_en_2spk_pyannote_sample.wav", dtype="float32")
    few = SileroVad(min_silence_duration_ms=2000).detect(audio, sr)
    many = SileroVad(min_silence_duration_ms=50).detect(audio, sr)
    assert len(many) > len(few)
    with pytest.raises(ConfigError):
        SileroVad(threshold=1.5)
    assert "silero" in SileroVad.check()
