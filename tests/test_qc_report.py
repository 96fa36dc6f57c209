"""The quality report (stage 14, qc/): a deliberately broken dub is caught, the files are complete and
self-contained, and each figure's module measures what it claims on media with a known answer."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile as sf
from media_utils import ffmpeg
from typer.testing import CliRunner

from lipdub.cli import app
from lipdub.errors import ConfigError
from lipdub.media.probe import decode_audio, probe, video_frame_times
from lipdub.qc.thresholds import Threshold, Thresholds, worst
from lipdub.script import FitReport, Script, Segment, Speaker, TargetLine

CLIP = "th2_retalking_face1.mp4"  # the clip whose mouth follows its own audio best (testdata README)
SHIFT_FRAMES = 5


def _remux_with_audio_delay(src, out, delay_frames: int, tmp):
    """``src`` with its own audio delayed by ``delay_frames`` video frames (silence prepended, same
    length), the video stream copied."""
    times = video_frame_times(src)
    frame_s = float(np.median(np.diff(times)))
    mix, _ = decode_audio(src, probe(src))
    n = int(round(delay_frames * frame_s * 48000))
    shifted = np.concatenate([np.zeros((n, mix.shape[1]), np.float32), mix])[: len(mix)]
    wav = tmp / f"audio_{delay_frames}.wav"
    sf.write(wav, shifted, 48000)
    ffmpeg("-i", str(src), "-i", str(wav), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "192k", str(out))
    return out


@pytest.fixture(scope="module")
def broken(testdata, tmp_path_factory):
    """`lipdub qc` run on the clip with its audio shifted by 5 frames (the video is untouched)."""
    tmp = tmp_path_factory.mktemp("qc_broken")
    src = testdata / CLIP
    out = _remux_with_audio_delay(src, tmp / "shifted.mp4", SHIFT_FRAMES, tmp)
    res = CliRunner().invoke(app, ["qc", str(out), "--source", str(src), "-o", str(tmp / "report"), "--no-vmaf"])
    assert res.exit_code == 0, res.output
    return tmp / "report", res.output


@pytest.fixture(scope="module")
def intact(testdata, tmp_path_factory):
    from lipdub.qc.report import build_report

    tmp = tmp_path_factory.mktemp("qc_intact")
    out = _remux_with_audio_delay(testdata / CLIP, tmp / "intact.mp4", 0, tmp)
    return build_report(out)


def _check(data, name):
    return next(c for c in data["checks"] if c["name"] == name)


def test_broken_dub_is_caught(broken):
    d = json.loads((broken[0] / "report.json").read_text())
    assert abs(d["sync"]["dub"]["offset_frames"] - SHIFT_FRAMES) <= 1
    assert _check(d, "sync_offset_frames")["verdict"] == "fail"
    assert d["verdict"] == "fail"
    assert any("AV offset" in r for r in d["reasons"])
    # the untouched source is in sync, and the video was copied: visual figures are perfect
    assert abs(d["sync"]["reference"]["offset_frames"]) <= 1
    assert d["visual"]["ssim"] == pytest.approx(1.0)
    assert "verdict: FAIL" in broken[1]


def test_intact_clip_does_not_fail_on_sync(intact):
    d = intact.data
    assert abs(d["sync"]["dub"]["offset_frames"]) <= 1
    for c in d["checks"]:
        if c["group"] == "sync":
            assert c["verdict"] != "fail", c


def test_report_files_are_complete_and_self_contained(broken):
    d = json.loads((broken[0] / "report.json").read_text())
    for c in d["checks"]:
        assert c["unit"] and c["threshold"] and c["source"] and c["verdict"] in ("pass", "warn", "fail", "n/a")
    assert set(d["thresholds"]) == set(Thresholds.model_fields)
    assert {"integrated_lufs", "true_peak_dbtp", "loudness_range_lu", "clipped_samples"} <= set(d["audio"])
    page = (broken[0] / "report.html").read_text()
    assert page.index("Verdict: FAIL") < page.index("<img")
    srcs = re.findall(r"src='([^']*)'", page)
    assert len(srcs) >= 5 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in page and "https://" not in page


def test_thresholds_judge_and_load(tmp_path):
    t = Threshold(pass_at=7.0, warn_at=8.0, higher_is_better=False, unit="distance")
    assert [t.judge(v) for v in (6.5, 7.0, 7.5, 8.5, None)] == ["pass", "pass", "warn", "fail", "n/a"]
    assert Threshold(pass_at=0.85, warn_at=None).judge(0.1) == "warn"
    assert worst(["pass", "n/a", "warn"]) == "warn" and worst(["fail", "pass"]) == "fail"
    f = tmp_path / "t.toml"
    f.write_text("[lse_d]\npass_at = 6.5\n")
    th = Thresholds.load(f)
    assert th.lse_d.pass_at == 6.5 and th.lse_d.warn_at == 8.0 and th.ssim.pass_at == 0.85
    f.write_text("[nope]\npass_at = 1\n")
    with pytest.raises(ConfigError, match="unknown threshold"):
        Thresholds.load(f)
    with pytest.raises(ConfigError):
        Thresholds.load(tmp_path / "missing.toml")


def _fit(start, end, ratio, overrun=0.0):
    return FitReport(tts_backend="x", synthesized_duration_s=(end - start) * ratio, trimmed_duration_s=(end - start) * ratio,
                     slot_start_s=start, slot_end_s=end, placed_start_s=start, placed_end_s=end, stretch_ratio=ratio, overrun_s=overrun)


def test_timing_figures_per_segment():
    from lipdub.qc.timing import timing_figures

    segs = [Segment(id=0, start_s=0.0, end_s=1.0, speaker="A", source_text="a", targets={"es": TargetLine(text="a", fit=_fit(0.0, 1.2, 1.1))}),
            Segment(id=1, start_s=1.1, end_s=2.0, speaker="A", source_text="b", targets={"es": TargetLine(text="b", fit=_fit(1.1, 2.0, 1.5, 0.4))}),
            Segment(id=2, start_s=2.5, end_s=3.5, speaker="A", source_text="c", targets={"es": TargetLine(text="c", fit=_fit(2.5, 3.5, 1.0))})]
    script = Script(source_language="en", speakers=[Speaker(id="A", name="A")], segments=segs)
    t = timing_figures(script, "es", duration_s=3.2, thresholds=Thresholds())
    v = {s.id: s for s in t.segments}
    assert v[0].overlap_s == pytest.approx(0.1) and v[0].verdict == "fail"  # runs 0.1 s into line 1
    assert v[1].verdict == "fail" and any("speed-up" in r for r in v[1].reasons)
    assert v[2].verdict == "pass"
    assert t.fit_share == pytest.approx(2 / 3, abs=1e-3)
    assert t.subtitle_outside_s == pytest.approx(0.3, abs=1e-3)  # the last cue ends at 3.5 s in a 3.2 s video


def test_a_delayed_line_shows_its_delay_in_the_timing_figures_and_the_segments_table():
    from lipdub.qc.html import _segments_table
    from lipdub.qc.timing import timing_figures

    late = _fit(1.0, 2.0, 1.0).model_copy(update={"placed_start_s": 1.35, "placed_end_s": 2.35, "delayed_s": 0.35})
    segs = [Segment(id=0, start_s=0.0, end_s=1.0, speaker="A", source_text="a", targets={"es": TargetLine(text="a", fit=_fit(0.0, 1.35, 1.0))}),
            Segment(id=1, start_s=1.0, end_s=2.0, speaker="A", source_text="b", targets={"es": TargetLine(text="b", fit=late)})]
    script = Script(source_language="en", speakers=[Speaker(id="A", name="A")], segments=segs)
    t = timing_figures(script, "es", duration_s=3.0, thresholds=Thresholds())
    v = {s.id: s for s in t.segments}
    assert v[0].delayed_s == 0.0 and v[1].delayed_s == pytest.approx(0.35)
    html = "".join(_segments_table({"timing": t.as_dict()}, {}, lambda x: x))
    rows = html.split("<tr>")[2:]  # one row per segment after the header
    assert len(rows) == 2 and "delayed" not in rows[0] and "delayed 0.35 s" in rows[1]


def test_loudness_of_a_known_sine():
    from lipdub.qc.loudness import audio_figures

    sr = 48000
    t = np.arange(5 * sr) / sr
    x = 0.5 * np.sin(2 * np.pi * 997 * t)  # BS.1770: a 997 Hz sine of peak A reads 20 log10(A) - 3.01 LUFS
    x2 = np.stack([x, x], axis=1)
    f = audio_figures(x2, sr)
    assert f.integrated_lufs == pytest.approx(20 * np.log10(0.5) - 3.01 + 3.01, abs=0.2)  # two channels add 3.01 dB
    assert f.true_peak_dbtp == pytest.approx(20 * np.log10(0.5), abs=0.1)
    assert f.clipped_samples == 0
    x2[100:110] = 1.0
    assert audio_figures(x2, sr).clipped_samples == 20
    assert f.short_term_lufs and all(v == pytest.approx(f.integrated_lufs, abs=0.3) for v in f.short_term_lufs)


def test_visual_outside_the_mouth_ignores_mouth_changes():
    from lipdub.qc.visual import frame_figures, mouth_mask

    rng = np.random.default_rng(0)
    ref = rng.integers(0, 255, (120, 100, 3), dtype=np.uint8)
    lmk = np.zeros((478, 3), np.float32)
    lmk[:, 0] = np.linspace(30, 70, 478)
    lmk[:, 1] = np.linspace(20, 90, 478)
    lmk[1] = (50, 60, 0)  # nose tip: the mask covers rows 60..98 (90 + 20 % of the 40 px face width)
    mask = mouth_mask(ref.shape[:2], [lmk])
    assert mask[70, 50] and not mask[40, 50] and not mask[110, 50]
    dist = ref.copy()
    dist[70:85, 40:60] = 0  # a changed mouth
    ssim, ssim_out, psnr, psnr_out = frame_figures(ref, dist, mask)
    assert ssim < 0.99 and psnr is not None and psnr < 40
    assert ssim_out > ssim  # outside the mask only the SSIM window's edge sees the change
    assert psnr_out is None or psnr_out > psnr


def test_voice_similarity_same_vs_other_speaker(testdata):
    from lipdub.audio import read_audio, resample
    from lipdub.qc.voice import speaker_similarity

    a, sr = read_audio(testdata / "sp_en_jfk.flac", mono=True)
    jfk = resample(a, sr, 16000)
    b, sr = read_audio(testdata / "sp_zh_cosyvoice_zero_shot_prompt.wav", mono=True)
    other = resample(b, sr, 16000)
    dub = np.concatenate([jfk[5 * 16000:], other]).astype(np.float32)
    figs = {f.speaker: f for f in speaker_similarity(jfk, dub, {"A": [(0.0, 5.0)], "B": [(0.0, 5.0)]},
                                                  {"A": [(0.0, 6.0)], "B": [(6.0, 6.0 + len(other) / 16000)]})}
    assert figs["A"].similarity > 0.8  # the same voice, other words
    assert figs["B"].similarity < figs["A"].similarity - 0.1


def test_redo_failed_needs_a_previous_report(tmp_path):
    from lipdub.project import Project
    from lipdub.qc.redo import mark_failed_segments

    script = Script(source_language="en", segments=[])
    with pytest.raises(ConfigError, match="no quality report"):
        mark_failed_segments(Project(tmp_path / "p"), script, "es", lambda seg: None)
