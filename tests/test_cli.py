"""The CLI as a user meets it: every bad input exits non-zero with one clear line and loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from media_utils import ffmpeg


def lipdub(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lipdub", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def assert_one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert "Traceback" not in err
    lines = [l for l in err.splitlines() if l.strip() and not l.lstrip().startswith(("⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"))]
    error_lines = [l for l in lines if "error" in l.lower()]
    assert len(error_lines) == 1, err
    for w in words:
        assert w.lower() in error_lines[0].lower(), error_lines[0]


@pytest.fixture()
def bad_files(tmp_path, testdata):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes((testdata / "th2_retalking_face1.mp4").read_bytes()[:150_000])
    silent_video = tmp_path / "no_audio.mp4"
    ffmpeg("-i", str(testdata / "th2_retalking_face1.mp4"), "-an", "-c:v", "copy", str(silent_video))
    return {"text": text, "empty": empty, "truncated": truncated, "no_audio": silent_video}


@pytest.mark.parametrize("case,words", [
    ("text", ["not a readable media file"]),
    ("empty", ["empty"]),
    ("truncated", ["not a readable media file"]),
    ("no_audio", ["no audio stream"]),
])
def test_bad_media(bad_files, tmp_path, case, words):
    proc = lipdub("dub", str(bad_files[case]), "--to", "es", "-o", str(tmp_path / "out"))
    assert_one_line_error(proc, *words)


def test_debug_shows_traceback(bad_files, tmp_path):
    proc = lipdub("--debug", "dub", str(bad_files["empty"]), "--to", "es", "-o", str(tmp_path / "out"))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_unknown_language_and_missing_pair(testdata, tmp_path):
    clip = str(testdata / "sp_en_jfk.flac")
    assert_one_line_error(lipdub("dub", clip, "--to", "xx", "-o", str(tmp_path)), "unknown language code", "xx")
    assert_one_line_error(lipdub("dub", clip, "--from", "en", "--to", "ja", "-o", str(tmp_path)), "no apertium translator", "en -> ja")
    assert not (tmp_path / "sp_en_jfk.lipdub" / "manifest.json").exists() or not json.loads(
        (tmp_path / "sp_en_jfk.lipdub" / "manifest.json").read_text())["stages"]


def test_missing_weights_fail_before_any_stage(testdata, tmp_path):
    """A missing ASR model is found before the first stage (not after four stages); the same command
    with a model then runs. (Stages kept after a failure and reused: test_fault_corpus.py.)"""
    clip = str(testdata / "sp_en_jfk.flac")
    args = ["dub", clip, "--to", "es", "-o", str(tmp_path), "--separation", "none", "--speakers", "1", "--voice-search", "0"]
    proc = lipdub(*args, "--asr-model", str(tmp_path / "no-such-model"))
    assert_one_line_error(proc, "whisper")
    manifest = tmp_path / "sp_en_jfk.lipdub" / "manifest.json"
    assert not manifest.exists() or not json.loads(manifest.read_text())["stages"]
    ok = lipdub(*args, "--asr-model", "tiny.en")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "sp_en_jfk.es.wav").exists()


def test_audio_only_rejects_video_output(testdata, tmp_path):
    proc = lipdub("dub", str(testdata / "sp_en_jfk.flac"), "--to", "es", "-o", str(tmp_path / "x.mp4"))
    assert_one_line_error(proc, "audio-only")


def test_doctor_lists_backends():
    proc = lipdub("doctor")
    assert proc.returncode == 0
    for name in ("dfn", "silero", "resemblyzer", "faster-whisper", "apertium", "llm", "piper", "espeak-ng", "ffmpeg"):
        assert name in proc.stdout
