"""Lip-sync stage on real clips: untouched frames stay bit-identical, skipped faces are left alone,
frame count and fps are kept, no-face videos pass through, and the sync score catches a shifted dub."""

from __future__ import annotations

import numpy as np
import pytest
from media_utils import count_frames, ffmpeg

from lipdub.backends.lipsync.retrieval import RetrievalBackend
from lipdub.config import DubConfig
from lipdub.contracts.faces import SKIP_YAW
from lipdub.faces.analyze import analyze_video
from lipdub.lipsync.render import render_lipsync
from lipdub.media.probe import decode_audio, probe, video_frame_times
from lipdub.pipeline import dub
from lipdub.qc.sync import track_sync_score


def decoded_planes(path):
    """Every decoded frame as its raw YUV 4:2:0 planes (no colour conversion)."""
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def th2(testdata):
    path = testdata / "th2_retalking_face1.mp4"
    analysis = analyze_video(path)
    _, audio = decode_audio(path, probe(path))
    return path, analysis, audio, video_frame_times(path)


def test_lossless_render_keeps_untouched_frames_bit_identical(th2, testdata, tmp_path):
    path, analysis, audio, times = th2
    track = analysis.tracks[0]
    frames = np.arange(40, 90, dtype=np.int64)
    # drive the face with other speech (JFK) so the planned frames really change
    _, jfk = decode_audio(testdata / "sp_en_jfk.flac", probe(testdata / "sp_en_jfk.flac"))
    dub_audio = np.zeros_like(audio)
    dub_audio[: len(jfk)] = jfk[: len(dub_audio)]
    plan = RetrievalBackend().plan(analysis, track, frames, times, audio, dub_audio, 16000, None)
    out = tmp_path / "lossless.mp4"
    render_lipsync(path, analysis, [(plan, track)], out, lossless=True)
    src, dst = decoded_planes(path), decoded_planes(out)
    assert len(dst) == len(src) == 135
    planned = set(frames.tolist())
    for i, (a, b) in enumerate(zip(src, dst)):
        if i not in planned:
            assert np.array_equal(a, b), f"untouched frame {i} changed"
    changed = sum(not np.array_equal(src[i], dst[i]) for i in planned)
    assert changed > len(planned) // 2


def test_frames_flagged_skip_are_left_alone(th2, tmp_path):
    """A face turned beyond the yaw limit (flag set on frames 60-79) is not re-animated there."""
    path, analysis, audio, times = th2
    track = analysis.tracks[0]
    track.skip[60:80] |= SKIP_YAW
    try:
        frames = track.frames[track.skip == 0].astype(np.int64)
        plan = RetrievalBackend().plan(analysis, track, frames, times, audio, audio[::-1].copy(), 16000, None)
        assert not set(plan.frames.tolist()) & set(range(60, 80))
        out = tmp_path / "skip.mp4"
        render_lipsync(path, analysis, [(plan, track)], out, lossless=True)
        src, dst = decoded_planes(path), decoded_planes(out)
        for i in range(60, 80):
            assert np.array_equal(src[i], dst[i])
    finally:
        track.skip[60:80] &= ~np.uint8(SKIP_YAW)


def test_dub_with_lipsync_keeps_frames_and_fps(testdata, tmp_path):
    import av

    cfg = DubConfig(input=testdata / "th_retalking_face5.mp4", targets=["es"], output=tmp_path, lipsync="retrieval", voice_search=0)
    result = dub(cfg)
    out = result.outputs["es"].media
    assert count_frames(out) == count_frames(testdata / "th_retalking_face5.mp4") == 122
    with av.open(str(out)) as c, av.open(str(testdata / "th_retalking_face5.mp4")) as s:
        assert c.streams.video[0].guessed_rate == s.streams.video[0].guessed_rate
        assert c.streams.video[0].codec_context.width == s.streams.video[0].codec_context.width
    rec = result.stages["lipsync:es"]
    assert rec.details["video"] and rec.details["tracks"]
    r2 = next(iter(rec.details["tracks"].values()))["r2_heldout"]
    assert np.isfinite(r2)


def test_video_without_faces_passes_through(testdata, tmp_path):
    clip = tmp_path / "noface.mp4"
    ffmpeg("-i", str(testdata / "sc_pyscenedetect_testvideo.mp4"), "-i", str(testdata / "sp_en_jfk.flac"), "-t", "8",
           "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(clip))
    result = dub(DubConfig(input=clip, targets=["es"], output=tmp_path / "out", lipsync="retrieval", speakers=1, voice_search=0))
    rec = result.stages["lipsync:es"]
    assert "no faces" in rec.details["note"]
    assert result.stages["render:es"].details["video"] == "copied"
    assert count_frames(result.outputs["es"].media) == count_frames(clip)


def test_sync_score_catches_a_dub_shifted_by_5_frames(th2):
    path, analysis, audio, times = th2
    fps = 1.0 / np.median(np.diff(times))
    shift = int(round(5 / fps * 16000))
    good = track_sync_score(analysis, audio, 16000, times)
    late = track_sync_score(analysis, np.concatenate([np.zeros(shift, np.float32), audio[:-shift]]), 16000, times)
    assert abs((late.offset_frames - good.offset_frames) - 5) <= 1
    assert late.confidence > 0.1


def test_sync_offset_follows_the_audio_delay_frame_for_frame(testdata):
    """The offset is a time lag: delaying the audio by k frame durations moves it by k (face5's own
    mouth leads its audio a little; only the change is asserted)."""
    path = testdata / "th_retalking_face5.mp4"
    analysis = analyze_video(path)
    _, audio = decode_audio(path, probe(path))
    times = video_frame_times(path)
    frame_s = float(np.median(np.diff(times)))
    offsets = {}
    for k in (0, 2, 4, 6):
        n = int(round(k * frame_s * 16000))
        delayed = np.concatenate([np.zeros(n, np.float32), audio[: len(audio) - n]])
        offsets[k] = track_sync_score(analysis, delayed, 16000, times).offset_frames
    print(f"face5: offset by audio delay (frames) {offsets}")
    for k in (2, 4, 6):
        assert abs((offsets[k] - offsets[0]) - k) <= 1


def test_log_mels_made_in_blocks_equal_one_whole_spectrogram(testdata, monkeypatch):
    """The sync score's log-mel and the retrieval backend's are made a block of rows at a time (a
    long video's whole STFT would take GBs); on real speech they equal one spectrogram of the whole
    signal (librosa's centred one for the score), whatever the block size."""
    import librosa

    from lipdub import spectral
    from lipdub.qc import sync

    path = testdata / "th_latentsync_demo1_video.mp4"
    _, audio = decode_audio(path, probe(path))
    audio = audio[: 16000 * 7 + 123]  # a length that is not a whole number of hops
    hop, n_fft = int(sync.HOP_S * 16000), int(0.025 * 16000)
    whole = np.log(librosa.feature.melspectrogram(y=audio, sr=16000, n_fft=n_fft, hop_length=hop, n_mels=sync.N_MELS, fmin=60,
                                                  fmax=7600) + 1e-6).T
    monkeypatch.setattr(spectral, "LOG_MEL_BLOCK_FRAMES", 10**9)
    one = spectral.log_mel(audio, 16000)
    for block in (97, 1000):
        monkeypatch.setattr(sync, "LOG_MEL_BLOCK_HOPS", block)
        got = sync._log_mel(audio, 16000)
        assert got.shape == whole.shape
        np.testing.assert_allclose(got, whole, atol=1e-4)
        monkeypatch.setattr(spectral, "LOG_MEL_BLOCK_FRAMES", block)
        blocks = spectral.log_mel(audio, 16000)
        np.testing.assert_allclose(blocks.db, one.db, atol=1e-4)
        np.testing.assert_allclose(blocks.power, one.power, rtol=1e-9, atol=1e-15)
