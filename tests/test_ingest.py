"""Stage 1 on real clips: probe facts, audio extraction, odd layouts, and every bad input."""

from __future__ import annotations

import numpy as np
import pytest
from media_utils import ffmpeg

from lipdub.errors import InputError
from lipdub.media.probe import ANALYSIS_RATE_HZ, MIX_RATE_HZ, decode_audio, probe


def test_probe_portrait_hevc(testdata):
    info = probe(testdata / "th_latentsync_demo2_video.mp4")
    assert info.video is not None
    assert (info.video.codec, info.video.width, info.video.height) == ("hevc", 1080, 1920)
    assert info.video.frame_count == 502
    assert info.video.fps == "25/1" and not info.video.is_vfr
    assert info.audio.sample_rate_hz == 44100


def test_probe_variable_frame_rate(testdata):
    info = probe(testdata / "th2_retalking_face1.mp4")
    assert info.video.frame_count == 135
    assert info.video.is_vfr
    assert 21.0 < info.video.avg_fps < 23.5  # README: average 22.13 fps against a nominal 30


def test_decode_audio_rates_and_alignment(testdata):
    path = testdata / "th2_retalking_face1.mp4"
    info = probe(path)
    mix, analysis = decode_audio(path, info)
    assert mix.ndim == 2 and mix.shape[1] == 2 and mix.dtype == np.float32
    assert abs(len(mix) / MIX_RATE_HZ - info.duration_s) < 1e-3
    assert abs(len(analysis) / ANALYSIS_RATE_HZ - info.duration_s) < 1e-3
    # the 16 kHz analysis track is the same signal as the 48 kHz mix: envelopes agree
    env48 = np.abs(mix.mean(axis=1))[: len(analysis) * 3].reshape(-1, 3).mean(axis=1)
    env16 = np.abs(analysis)
    assert np.corrcoef(env48[:len(env16)], env16[:len(env48)])[0, 1] > 0.8


def test_audio_only_input(testdata):
    info = probe(testdata / "sp_en_jfk.flac")
    assert info.video is None and info.audio.channels == 2
    mix, analysis = decode_audio(testdata / "sp_en_jfk.flac", info)
    assert abs(len(analysis) / ANALYSIS_RATE_HZ - 11.0) < 0.01
    assert np.abs(analysis).max() > 0.1


def test_surround_and_mono_layouts(testdata, tmp_path):
    src = testdata / "sp_en_jfk.flac"
    six = tmp_path / "six.wav"
    ffmpeg("-i", str(src), "-t", "3", "-af", "pan=5.1|FL=c0|FR=c1|FC=c0|LFE=c1|BL=c0|BR=c1", str(six))
    mono = tmp_path / "mono.mp3"
    ffmpeg("-i", str(src), "-t", "3", "-ac", "1", str(mono))
    for path, channels in ((six, 6), (mono, 1)):
        info = probe(path)
        assert info.audio.channels == channels
        mix, analysis = decode_audio(path, info)
        assert mix.shape[1] == 2 and np.abs(mix).max() > 0.05
        assert np.abs(analysis).max() > 0.05


def test_bad_inputs(testdata, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is a text file, not a video\n")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes((testdata / "th2_retalking_face1.mp4").read_bytes()[:200_000])
    cases = {fake: "not a readable media file", empty: "empty", truncated: "not a readable media file", tmp_path / "missing.mp4": "does not exist"}
    for path, words in cases.items():
        with pytest.raises(InputError) as exc:
            info = probe(path)
            decode_audio(path, info)
        assert words in str(exc.value)
    # an index-first (faststart) MP4 cut short opens, but its frames are missing
    faststart = tmp_path / "faststart.mp4"
    ffmpeg("-i", str(testdata / "th2_retalking_face1.mp4"), "-c", "copy", "-movflags", "+faststart", str(faststart))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(faststart.read_bytes()[: faststart.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated"):
        probe(cut)
    with pytest.raises(InputError, match="no audio stream"):
        probe(testdata / "sc_pyscenedetect_testvideo.mp4")
