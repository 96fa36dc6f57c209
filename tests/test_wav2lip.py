"""The wav2lip / wav2lip_gan backends: the generator's state-dict layout against the spec, the loader on
the released checkpoint layout and on wrong files, the reference mel front end against an independent
numpy derivation, and the backend end to end on a real clip with random weights (no download)."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from lipdub.backends.lipsync import wav2lip_audio as wa
from lipdub.backends.lipsync.wav2lip_model import Wav2Lip, build_model, load_state_dict, save_checkpoint
from lipdub.errors import ConfigError, InputError, MissingWeights

SPEC = Path(__file__).resolve().parents[2] / "shared" / "specs" / "wav2lip_state_dict.txt"


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory) -> tuple[Path, Wav2Lip]:
    """A random-weight generator saved in the released layout (``module.`` keys, optimizer state)."""
    torch.manual_seed(0)
    model = Wav2Lip().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so loading them is really checked
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("w2l") / "wav2lip_random.pth"
    save_checkpoint(model, path, data_parallel=True, with_optimizer=True)
    return path, model


# --- model and loader -------------------------------------------------------------------------------
def test_state_dict_matches_the_spec():
    if not SPEC.is_file():
        pytest.skip(f"{SPEC} not found")
    lines = SPEC.read_text().splitlines()
    spec = {}
    for line in lines:
        if line.startswith("=="):
            continue
        key, shape = line.split(" ", 1)
        spec[key] = [int(v) for v in shape.strip("[]").split(",") if v.strip()]
    got = {k: list(v.shape) for k, v in Wav2Lip().state_dict().items()}
    assert list(got) == list(spec)  # same keys, same order
    assert got == spec
    assert sum(p.numel() for p in Wav2Lip().parameters()) == 36_298_035


def test_released_layout_loads_and_forward_maps_shapes(random_checkpoint):
    path, original = random_checkpoint
    raw = torch.load(str(path), map_location="cpu", weights_only=True)
    assert set(raw) >= {"state_dict", "optimizer"} and raw["optimizer"] is not None
    assert all(k.startswith("module.") for k in raw["state_dict"])
    model = build_model(path)
    torch.manual_seed(1)
    audio = torch.rand(2, 1, 80, 16) * 8 - 4
    face = torch.rand(2, 6, 96, 96)
    with torch.inference_mode():
        out = model(audio, face)
        ref = original(audio, face)
    assert out.shape == (2, 3, 96, 96)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(out, ref)  # every weight and batch-norm statistic loaded
    # the time-stacked form of the reference training code: (B, T, 1, 80, 16) and (B, 6, T, 96, 96)
    with torch.inference_mode():
        seq = model(audio[None], face.permute(1, 0, 2, 3)[None])
    assert seq.shape == (1, 3, 2, 96, 96)
    assert torch.allclose(seq[0].permute(1, 0, 2, 3), ref, atol=1e-5)


def test_bare_state_dict_loads(random_checkpoint, tmp_path):
    path, original = random_checkpoint
    bare = tmp_path / "bare.pth"
    torch.save(original.state_dict(), str(bare))
    sd = load_state_dict(bare)
    assert set(sd) == set(original.state_dict())
    build_model(bare)


def test_wrong_shape_missing_key_and_junk_fail_naming_the_problem(random_checkpoint, tmp_path):
    path, original = random_checkpoint
    state = {k: v.clone() for k, v in original.state_dict().items()}
    key = "face_decoder_blocks.3.0.conv_block.0.weight"
    state[key] = torch.zeros(768, 384, 5, 5)
    bad = tmp_path / "bad_shape.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, str(bad))
    with pytest.raises(InputError, match=r"face_decoder_blocks\.3\.0\.conv_block\.0\.weight.*\[768, 384, 5, 5\].*\[768, 384, 3, 3\]"):
        build_model(bad)
    del state[key]
    state[key] = original.state_dict()[key]
    del state["audio_encoder.4.conv_block.1.running_var"]
    missing = tmp_path / "missing.pth"
    torch.save(state, str(missing))
    with pytest.raises(InputError, match=r"audio_encoder\.4\.conv_block\.1\.running_var.*missing"):
        build_model(missing)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable PyTorch checkpoint"):
        build_model(junk)
    with pytest.raises(MissingWeights):
        build_model(tmp_path / "absent.pth")


# --- mel front end ------------------------------------------------------------------------------------
def _slaney_hz_to_mel(f):
    f = np.asarray(f, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = np.log(6.4) / 27.0
    return np.where(f < min_log_hz, f / f_sp, min_log_hz / f_sp + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep)


def _slaney_mel_to_hz(m):
    m = np.asarray(m, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m < min_log_mel, m * f_sp, min_log_hz * np.exp(logstep * (m - min_log_mel)))


def _independent_mel(x: np.ndarray) -> np.ndarray:
    """Wav2Lip's hparams re-derived with numpy only: Slaney mel triangles with area normalisation,
    periodic Hann, reflect-padded centred frames, magnitude, dB, symmetric [-4, 4] normalisation."""
    sr, n_fft, hop = 16000, 800, 200
    y = np.empty_like(x, dtype=np.float64)
    y[0] = x[0]
    y[1:] = x[1:] - 0.97 * x[:-1]
    yp = np.pad(y, n_fft // 2, mode="reflect")
    n_frames = 1 + len(y) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    mag = np.abs(np.fft.rfft(yp[idx] * win, axis=1)).T  # (401, T)
    edges = _slaney_mel_to_hz(np.linspace(_slaney_hz_to_mel(55.0), _slaney_hz_to_mel(7600.0), 82))
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    fb = np.zeros((80, len(freqs)))
    for m in range(80):
        lo, c, hi = edges[m], edges[m + 1], edges[m + 2]
        fb[m] = np.maximum(0, np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c))) * 2.0 / (hi - lo)
    mel = fb @ mag
    db = 20 * np.log10(np.maximum(1e-5, mel)) - 20
    return np.clip(8 * (db + 100) / 100 - 4, -4, 4)


def test_mel_matches_an_independent_derivation_on_speech(testdata):
    from lipdub.media.probe import decode_audio, probe

    _, speech = decode_audio(testdata / "sp_en_jfk.flac", probe(testdata / "sp_en_jfk.flac"))
    speech = speech[: 16000 * 4]
    got = wa.melspectrogram(speech)
    ref = _independent_mel(speech.astype(np.float64))
    assert got.shape == ref.shape == (80, 1 + len(speech) // 200)
    assert got.dtype == np.float32
    assert np.abs(got - ref).max() < 2e-3
    assert got.min() >= -4 and got.max() <= 4 and got.std() > 0.5  # real speech spans the range


def test_mel_tone_lands_in_its_band_and_levels_are_in_db():
    sr = 16000
    t = np.arange(sr) / sr
    for hz in (300.0, 1000.0, 3000.0):
        mel = wa.melspectrogram((0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32))
        centres = _slaney_mel_to_hz(np.linspace(_slaney_hz_to_mel(55.0), _slaney_hz_to_mel(7600.0), 82))[1:-1]
        expected = int(np.argmin(np.abs(centres - hz)))
        assert abs(int(np.argmax(mel[:, 40])) - expected) <= 1, hz
    silence = wa.melspectrogram(np.zeros(sr, np.float32))
    assert np.all(silence == -4.0)  # -100 dB floor maps to -4
    # a 20 dB quieter tone moves the normalised value by 20 dB * 8 / 100 = 1.6 (away from the clip)
    loud = wa.melspectrogram((0.05 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    quiet = wa.melspectrogram((0.005 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    band = int(np.argmax(loud[:, 40]))
    assert abs((loud[band, 20:60] - quiet[band, 20:60]).mean() - 1.6) < 0.02
    with pytest.raises(InputError, match="16000 Hz"):
        wa.melspectrogram(np.zeros(100, np.float32), 22050)


def test_mel_windows_follow_the_reference_indexing():
    for fps in (Fraction(25), Fraction(30000, 1001), Fraction(30)):
        n = 600
        by_rate = wa.mel_window_starts(frame_count=n, fps=fps)
        assert by_rate.tolist() == [int(i * 80 / float(fps)) if fps.denominator == 1 else int(Fraction(i * 80) / fps) for i in range(n)]
        times = np.array([float(Fraction(i) / fps) for i in range(n)])
        assert np.array_equal(wa.mel_window_starts(times), by_rate)
    assert wa.mel_window_starts(frame_count=4, fps=Fraction(25)).tolist() == [0, 3, 6, 9]
    mel = np.arange(80 * 40, dtype=np.float32).reshape(80, 40)
    win = wa.mel_windows(mel, np.array([0, 3, 30]))
    assert win.shape == (3, 1, 80, 16)
    assert np.array_equal(win[1, 0], mel[:, 3:19])
    assert np.array_equal(win[2, 0], mel[:, 24:40])  # past the end: the last 16 frames


# --- backend on real media ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def th2(testdata):
    from lipdub.faces.analyze import analyze_video
    from lipdub.media.probe import decode_audio, probe, video_frame_times

    path = testdata / "th2_retalking_face1.mp4"
    _, jfk = decode_audio(testdata / "sp_en_jfk.flac", probe(testdata / "sp_en_jfk.flac"))
    return path, analyze_video(path), jfk, video_frame_times(path)


def _yuv_frames(path):
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]


def test_backend_reanimates_only_the_lower_face_of_planned_frames(th2, random_checkpoint, tmp_path):
    from lipdub.backends.lipsync.wav2lip import Wav2LipBackend
    from lipdub.lipsync.render import render_lipsync

    path, analysis, jfk, times = th2
    track = analysis.tracks[0]
    frames = np.arange(40, 70, dtype=np.int64)
    backend = Wav2LipBackend(checkpoint=random_checkpoint[0], device="cpu", batch_size=8, sharpen=0.5)
    plan = backend.plan(analysis, track, frames, times, jfk, jfk, 16000, None)
    assert plan.source_frames is None and plan.donors is not None and plan.details["device"] == "cpu"
    out = tmp_path / "w2l.mp4"
    details = render_lipsync(path, analysis, [(plan, track)], out, lossless=True)
    assert details["composited_frames"] == {str(track.id): len(frames)}
    src, dst = _yuv_frames(path), _yuv_frames(out)
    assert len(dst) == len(src) == 135
    h = analysis.height
    for i, (a, b) in enumerate(zip(src, dst)):
        if i < 40 or i >= 70:
            assert np.array_equal(a, b), f"untouched frame {i} changed"
            continue
        lm = track.landmarks[track.index_of(i)]
        diff = np.abs(a[:h].astype(int) - b[:h].astype(int))  # luma plane
        ys, xs = np.nonzero(diff > 12)
        assert len(ys) > 500, f"frame {i}: the mouth did not change"
        eyes_y = lm[[33, 133, 362, 263], 1].mean()
        nose_y = lm[2, 1]
        assert ys.min() > (eyes_y + nose_y) / 2, f"frame {i}: pixels above the nose changed"
        width = lm[:, 0].max() - lm[:, 0].min()
        assert xs.min() > lm[:, 0].min() - 0.2 * width and xs.max() < lm[:, 0].max() + 0.2 * width
        assert ys.max() < lm[:, 1].max() + 0.4 * width  # nothing far below the chin


def test_backend_options_are_checked(random_checkpoint):
    from lipdub.backends.lipsync.wav2lip import Wav2LipGANBackend
    from lipdub.lipsync.api import create_backend, parse_pads

    ckpt = random_checkpoint[0]
    with pytest.raises(ConfigError, match="batch size"):
        create_backend("wav2lip", {"checkpoint": ckpt, "batch_size": 0})
    with pytest.raises(ConfigError, match="sharpen"):
        create_backend("wav2lip", {"checkpoint": ckpt, "sharpen": -1})
    with pytest.raises(ConfigError, match="half precision"):
        create_backend("wav2lip", {"checkpoint": ckpt, "device": "cpu", "half": True})
    with pytest.raises(ConfigError, match="unknown device"):
        create_backend("wav2lip", {"checkpoint": ckpt, "device": "tpu"})
    with pytest.raises(ConfigError, match="--checkpoint"):  # retrieval takes no checkpoint: not ignored
        create_backend("retrieval", {"checkpoint": ckpt})
    with pytest.raises(ConfigError, match="4 integers"):
        parse_pads("0,10,0")
    assert parse_pads("0, 10, 0 ,0") == (0, 10, 0, 0)
    gan = create_backend("wav2lip_gan", {"checkpoint": ckpt, "device": "auto"})
    assert isinstance(gan, Wav2LipGANBackend) and gan.device in ("cpu", "cuda", "mps")



def test_checkpoint_resolution_and_doctor(tmp_path, monkeypatch):
    from lipdub.backends.lipsync.wav2lip import Wav2LipBackend, Wav2LipGANBackend, resolve_checkpoint

    monkeypatch.setenv("LIPDUB_MODEL_DIR", str(tmp_path))
    with pytest.raises(MissingWeights, match="wav2lip_gan.pth"):
        resolve_checkpoint("wav2lip_gan", None)
    with pytest.raises(MissingWeights, match="device (cpu|cuda|mps).*frames/s.*wav2lip_gan.pth"):
        Wav2LipGANBackend.check()
    (tmp_path / "wav2lip").mkdir()
    (tmp_path / "wav2lip" / "wav2lip_gan.pth").write_bytes(b"x")
    assert resolve_checkpoint("wav2lip_gan", None) == tmp_path / "wav2lip" / "wav2lip_gan.pth"
    (tmp_path / "wav2lip_gan.pth").write_bytes(b"x")  # the top level comes first
    assert resolve_checkpoint("wav2lip_gan", None) == tmp_path / "wav2lip_gan.pth"
    assert "wav2lip_gan.pth" in Wav2LipGANBackend.check() and "frames/s" in Wav2LipGANBackend.check()
    with pytest.raises(MissingWeights):  # the other backend's file is not taken
        Wav2LipBackend.check()
    with pytest.raises(MissingWeights, match="elsewhere.pth"):  # an explicit path is never replaced
        resolve_checkpoint("wav2lip_gan", tmp_path / "elsewhere.pth")


def test_cli_lipsync_with_random_checkpoint_keeps_size_fps_and_frames(th2, random_checkpoint, tmp_path, testdata):
    """``lipdub lipsync --backend wav2lip --checkpoint`` end to end (the face analysis is reused)."""
    import av
    from media_utils import ffmpeg

    path, analysis, _, times = th2
    out = tmp_path / "cli.mp4"
    speech = tmp_path / "jfk_2s.wav"  # shorter than the video: the frames after it stay untouched
    ffmpeg("-i", str(testdata / "sp_en_jfk.flac"), "-t", "2", "-ac", "1", str(speech))
    analysis.save(tmp_path / "cli.lipdub" / "faces")  # the command's face cache: not analysed twice
    proc = subprocess.run([sys.executable, "-m", "lipdub", "lipsync", str(path), str(speech), "-o", str(out),
                           "--backend", "wav2lip", "--checkpoint", str(random_checkpoint[0]), "--device", "cpu",
                           "--pads", "0,10,0,0", "--batch-size", "32", "--lossless"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "wav2lip" in proc.stdout
    with av.open(str(out)) as c, av.open(str(path)) as s:
        ov, sv = c.streams.video[0], s.streams.video[0]
        assert (ov.codec_context.width, ov.codec_context.height) == (sv.codec_context.width, sv.codec_context.height)
        assert ov.guessed_rate == sv.guessed_rate
        assert c.streams.audio
    src, dst = _yuv_frames(path), _yuv_frames(out)
    assert len(dst) == len(src)
    track = analysis.tracks[0]
    animated = set(track.frames[(track.skip == 0) & (times[track.frames] < 2.0)].tolist())
    assert 25 < len(animated) < len(src) - 40
    for i, (a, b) in enumerate(zip(src, dst)):
        if i not in animated:
            assert np.array_equal(a, b), f"untouched frame {i} changed"
    assert sum(not np.array_equal(src[i], dst[i]) for i in animated) > 0.9 * len(animated)
    bad = subprocess.run([sys.executable, "-m", "lipdub", "lipsync", str(path), str(testdata / "sp_en_jfk.flac"), "-o", str(tmp_path / "x.mp4"),
                          "--backend", "wav2lip", "--checkpoint", str(tmp_path / "nope.pth")], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "nope.pth" in bad.stderr and "Traceback" not in bad.stderr


def test_dub_config_lipsync_options_are_checked_before_any_work(testdata, tmp_path, monkeypatch):
    from lipdub.config import DubConfig
    from lipdub.pipeline import Dubber

    monkeypatch.setenv("LIPDUB_MODEL_DIR", str(tmp_path))
    base = dict(input=testdata / "th2_retalking_face1.mp4", targets=["es"], output=tmp_path / "out", separation="none")
    with pytest.raises(MissingWeights, match="wav2lip_gan.pth"):
        Dubber(DubConfig(**base, lipsync="wav2lip_gan"))
    with pytest.raises(ConfigError, match="does not take --checkpoint"):
        Dubber(DubConfig(**base, lipsync="retrieval", lipsync_checkpoint=tmp_path / "w.pth"))
    with pytest.raises(ConfigError, match="takes no lip-sync option"):
        Dubber(DubConfig(**base, lipsync="none", lipsync_device="cpu"))
    with pytest.raises(ConfigError, match=r"lacks \{output\}"):
        Dubber(DubConfig(**base, lipsync="external", lipsync_command="tool {video} {audio}"))
    assert not (tmp_path / "out").exists()  # nothing was started
