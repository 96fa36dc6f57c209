"""The profiles stage and the isochrony loop inside the pipeline: a short audio-only dub, then the
same with --no-voice-match (only the speech is redone), and a voice bank across two projects."""

from __future__ import annotations

import pytest

from lipdub.config import DubConfig
from lipdub.pipeline import dub
from lipdub.script import Script

pytest.importorskip("parselmouth")


@pytest.fixture(scope="module")
def dubbed(testdata, tmp_path_factory):
    out = tmp_path_factory.mktemp("voices")
    bank = out / "bank"
    bank.mkdir()
    cfg = DubConfig(input=testdata / "sp_en_jfk.flac", targets=["es"], output=out / "jfk.es.wav", project_dir=out / "p1",
                    tts="espeak-ng", separation="none", lipsync="none", voice_bank=bank, asr_model="base", source_language="en")
    return cfg, dub(cfg), bank


def test_profile_stage_and_matched_lines(dubbed):
    cfg, result, bank = dubbed
    prof = result.stages["profiles"]
    assert prof.details["speakers"] and all("not in the voice bank" in d["action"] for d in prof.details["speakers"].values())
    script = Script.load(result.project_dir / "script.json")
    spk = script.segments[0].speaker
    assert (result.project_dir / "voices" / f"{spk}.json").is_file() and not any(bank.iterdir())  # unnamed: not banked
    fits = [s.targets["es"].fit for s in script.segments]
    assert all(f is not None and f.history for f in fits)
    assert any(f.voice_match and "new_f0_median_hz" in f.voice_match for f in fits)
    register = prof.details["speakers"][spk]["register"]
    assert all(f.voice == f"es+{'f3' if register == 'female' else 'm3'}" for f in fits)  # base voice by register
    for f in fits:  # audio-only: the speaker is off screen, so the off-screen limit applies
        assert f.on_screen is False and f.max_stretch == pytest.approx(cfg.max_stretch + 0.15)
        assert f.attempts == len(f.history) <= cfg.max_attempts
    placed = sorted((f.placed_start_s, f.placed_end_s) for f in fits)
    assert all(a[1] <= b[0] for a, b in zip(placed, placed[1:]))


def test_no_voice_match_redoes_only_speech(dubbed):
    cfg, result, bank = dubbed
    again = dub(cfg.model_copy(update={"voice_match": False}))
    assert "synthesize:es" in again.ran and "profiles" in again.skipped and "translate:es" in again.skipped
    script = Script.load(result.project_dir / "script.json")
    assert all(s.targets["es"].fit.voice_match is None for s in script.segments)


def test_voice_bank_entry_is_reused_in_a_new_project(dubbed, tmp_path):
    cfg, result, bank = dubbed
    path = result.project_dir / "script.json"
    script = Script.load(path)
    spk = script.segments[0].speaker
    script.speaker(spk).name = "John Kennedy"  # naming the character puts it in the bank
    script.save(path)
    named = dub(cfg)
    assert "profiles" in named.ran and (bank / "John_Kennedy" / "profile.json").is_file()
    cfg2 = cfg.model_copy(update={"project_dir": tmp_path / "p2", "output": tmp_path / "jfk2.es.wav"})
    res2 = dub(cfg2)  # a new project: the unnamed speaker is recognized by voice
    assert res2.stages["profiles"].details["speakers"][spk]["action"].startswith("matched voice bank entry John_Kennedy")
    assert Script.load(tmp_path / "p2" / "script.json").speaker(spk).name == "John Kennedy"
