"""Voice parameters and voice matching (lipdub.voice.params / lipdub.voice.match) on real speech."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub.audio import read_audio
from lipdub.languages import parse_language
from lipdub.voice.match import NotMatchable, equalize_envelope, match_voice
from lipdub.voice.params import count_syllables, measure_voice, spectral_envelope_db
from lipdub.voice.profile import VoiceProfile

pytest.importorskip("parselmouth")


@pytest.fixture(scope="module")
def clips(testdata):
    male, sr1 = read_audio(testdata / "mu_ina_musanmix.wav", mono=True)
    male = male[int(64 * sr1): int(73 * sr1)]  # librivox male reader (inaSpeechSegmenter reference: male 63.34-73.82 s)
    two, sr2 = read_audio(testdata / "sp_en_2spk_pyannote_sample.wav", mono=True)
    return (male, sr1), (two[int(10.57 * sr2): int(14.7 * sr2)], sr2)  # Diane alone (RTTM speaker90)


@pytest.fixture(scope="module")
def espeak_line():
    from lipdub.contracts.synthesize import TTS_BACKENDS

    tts = TTS_BACKENDS.create("espeak-ng")
    return tts.synthesize("Buenos días, me llamo Diana y vivo en Nueva Jersey con mi familia.", parse_language("es"), voice="es+m3")


def test_measure_voice_registers(clips):
    (jfk, sr1), (diane, sr2) = clips
    man, woman = measure_voice(jfk, sr1), measure_voice(diane, sr2)
    assert man.register == "male" and woman.register == "female"
    assert 70 < man.f0_median_hz < 165 < woman.f0_median_hz < 300
    assert man.f0_p10_hz < man.f0_median_hz < man.f0_p90_hz
    assert 200 < man.formants_hz[0] < man.formants_hz[1] < man.formants_hz[2] < 4000
    with pytest.raises(Exception, match="voiced"):
        measure_voice(np.zeros(16000, np.float32), 16000)


def test_count_syllables():
    assert count_syllables("Hola, ¿cómo estás?", "es") == 6
    assert count_syllables("Buenos días", "es") == 4
    assert count_syllables("poeta leer país", "es") == 7  # hiatus: po-e-ta, le-er, pa-ís
    assert count_syllables("make time") == 2  # silent final e
    assert count_syllables("你好吗") == 3
    assert count_syllables("... 123 !") == 0


def profile_like(params, envelope) -> VoiceProfile:
    return VoiceProfile(speaker="S", name="S", reference_path="r.wav", reference_rate_hz=16000, reference_s=4.0, denoised=False,
                        embedding=[0.0] * 256, f0_median_hz=params.f0_median_hz, f0_p10_hz=params.f0_p10_hz, f0_p90_hz=params.f0_p90_hz,
                        formants_hz=list(params.formants_hz), spectral_envelope_db=envelope, voice_register=params.register)


def test_match_moves_male_tts_to_female_speaker(clips, espeak_line):
    (_, _), (diane, sr2) = clips
    target = measure_voice(diane, sr2)
    prof = profile_like(target, spectral_envelope_db(diane, sr2))
    x, sr = espeak_line.samples, espeak_line.sample_rate_hz
    before = measure_voice(x, sr)
    y, settings = match_voice(x, sr, prof)
    after = measure_voice(y, sr)
    assert before.register == "male" and after.register == "female"
    assert abs(np.log2(after.f0_median_hz / target.f0_median_hz)) < abs(np.log2(before.f0_median_hz / target.f0_median_hz)) / 4
    assert abs(len(y) - len(x)) <= 0.01 * len(x)  # duration kept: the fit is unaffected
    assert settings.new_f0_median_hz == pytest.approx(target.f0_median_hz)
    assert np.max(np.abs(y)) <= 0.99 + 1e-6


def test_envelope_equalizer_moves_ltas(clips, espeak_line):
    (_, _), (diane, sr2) = clips
    target = spectral_envelope_db(diane, sr2)
    x, sr = espeak_line.samples, espeak_line.sample_rate_hz

    def dist(env):
        pairs = [(a, b) for a, b in zip(env, target) if a is not None and b is not None]
        return float(np.mean([abs(a - b) for a, b in pairs]))

    y, max_gain = equalize_envelope(x, sr, target)
    assert dist(spectral_envelope_db(y, sr)) < 0.5 * dist(spectral_envelope_db(x, sr))
    assert 0 < max_gain <= 20.0
    assert np.sqrt(np.mean(y.astype(np.float64) ** 2)) == pytest.approx(np.sqrt(np.mean(x.astype(np.float64) ** 2)), rel=1e-3)


def test_unvoiced_line_is_not_matchable(clips):
    (_, _), (diane, sr2) = clips
    prof = profile_like(measure_voice(diane, sr2), None)
    noise = np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32)
    with pytest.raises(NotMatchable):
        match_voice(noise, 16000, prof)
