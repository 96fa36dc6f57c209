"""Colour through the dub (issue 18): the broadcast master shows the source's colours whether the
source is tagged or not, SD or HD; the quality report reads every video with its own matrix; the
lip-sync renderer writes composited frames in the source's matrix and keeps its tags.

The reference decoder here is the ffmpeg CLI with the matrix given explicitly (exact rounding), not
lipdub's code: an untagged source is read as players read it (mpv, ffplay/SDL2: BT.601 up to 576
lines, BT.709 above), a master by its own tags.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from media_fixtures import decode_rgb, ffmpeg, ffprobe_streams, make_clip

from lipdub.contracts.lipsync import LipsyncPlan
from lipdub.faces.analyze import analyze_video
from lipdub.lipsync.render import render_lipsync
from lipdub.media.broadcast import AudioTrack, render_broadcast
from lipdub.media.colour import guess_matrix, video_colour
from lipdub.media.probe import probe_video
from lipdub.qc.visual import compare_videos, vmaf_score

# (clip, colour tags written on the cut or None, the matrix a player reads the cut with)
SOURCES = {
    "sd_untagged": ("th_retalking_face5.mp4", None, "bt601"),        # 524x524, no tags
    "hd_untagged": ("mf_facenet_crowd.mp4", None, "bt709"),          # 1920x1080, no tags
    "sd_tagged": ("th_retalking_face5.mp4", ("smpte170m",) * 3, "bt601"),
    "hd_tagged": ("th_latentsync_demo1_video.mp4", ("bt709",) * 3, "bt709"),  # 1080x1920, tagged BT.709 as shared
}


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0 ** 2 / np.mean((a - b) ** 2)))


@pytest.fixture(scope="module")
def silence(tmp_path_factory) -> Path:
    wav = tmp_path_factory.mktemp("audio") / "silence.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo", "-t", "1", str(wav))
    return wav


@pytest.fixture(scope="module")
def sources(testdata, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("colour_src")
    return {k: make_clip(testdata / clip, d / f"{k}.mp4", seconds=0.4, colour=tags) for k, (clip, tags, _) in SOURCES.items()}


@pytest.fixture(scope="module")
def masters(sources, silence, tmp_path_factory):
    d = tmp_path_factory.mktemp("colour_masters")
    return {k: render_broadcast(source=s, output=d / f"{k}.mov", audio=[AudioTrack(silence, "mix")]) for k, s in sources.items()}


def retagged_master(src: Path, out: Path, vf: str) -> Path:
    """A ProRes master made by ffmpeg alone: ``vf`` applied, then tagged BT.709 (a wrong master when
    ``vf`` does not turn the source's matrix into BT.709)."""
    tags = "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv"
    ffmpeg("-i", str(src), "-vf", f"{vf},{tags}", "-c:v", "prores_ks", "-profile:v", "3", "-pix_fmt", "yuv422p10le",
           "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv", "-an", str(out))
    return out


def test_untagged_matrix_follows_the_players_rule():
    # mpv's mp_csp_guess_colorspace: HD when at least 1280 wide or more than 576 lines
    assert [guess_matrix(w, h) for w, h in ((524, 524), (720, 576), (720, 480), (1280, 544), (1080, 1920), (1920, 1080))] == \
        ["smpte170m", "smpte170m", "smpte170m", "bt709", "bt709", "bt709"]


@pytest.mark.parametrize("kind", list(SOURCES))
def test_master_shows_the_source_colours(kind, sources, masters):
    src, master = sources[kind], masters[kind]
    v = next(s for s in ffprobe_streams(master.path) if s["codec_type"] == "video")
    tags = SOURCES[kind][1] or ("bt709",) * 3  # kept when tagged, BT.709 otherwise
    assert (v["color_primaries"], v["color_transfer"], v["color_space"], v["color_range"]) == (*tags, "tv")
    a = decode_rgb(src, SOURCES[kind][2])  # as a player shows the source
    b = decode_rgb(master.path)            # the master by its own tags
    shift = (b - a).reshape(-1, 3).mean(axis=0)
    assert np.abs(shift).max() < 0.5, f"{kind}: mean R/G/B shift {shift.round(2)} levels"
    assert psnr_db(a, b) > 45.0
    assert (master.colour_conversion is not None) == (kind == "sd_untagged")  # only an untagged SD picture is re-encoded


def test_quality_report_reads_each_video_with_its_own_matrix(sources, masters, tmp_path):
    # right masters compare as near lossless (ProRes HQ), with or without a matrix conversion
    right = {k: compare_videos(sources[k], masters[k].path, None, max_frames=4, vmaf=False) for k in SOURCES}
    for k, fig in right.items():
        assert fig.psnr_db > 45.0 and fig.ssim > 0.99, (k, fig.psnr_db, fig.ssim)
    # wrong masters are scored as shifted: SD pixels tagged BT.709 unconverted (the old master), and
    # HD pixels converted as if they were BT.601
    sd_wrong = retagged_master(sources["sd_untagged"], tmp_path / "sd_wrong.mov", "null")
    hd_wrong = retagged_master(sources["hd_untagged"], tmp_path / "hd_wrong.mov",
                               "scale=in_color_matrix=bt601:out_color_matrix=bt709")
    for k, wrong in (("sd_untagged", sd_wrong), ("hd_untagged", hd_wrong)):
        fig = compare_videos(sources[k], wrong, None, max_frames=4, vmaf=False)
        assert fig.psnr_db < 41.0 and fig.psnr_db < right[k].psnr_db - 10, (k, fig.psnr_db, right[k].psnr_db)
    # VMAF reads Y'CbCr: the right SD master (re-encoded to BT.709) scores near 100, the wrong one lower
    assert vmaf_score(sources["sd_untagged"], masters["sd_untagged"].path) > vmaf_score(sources["sd_untagged"], sd_wrong) + 2


@pytest.mark.parametrize("tags", [None, ("bt709",) * 3], ids=["untagged", "bt709"])
def test_lipsync_render_keeps_the_source_colour(testdata, tmp_path, tags):
    """Composited frames (donor lower faces from 6 frames later) are written back in the source's
    matrix: the picture above the face stays as it was, and the output carries the source's tags."""
    src = make_clip(testdata / "th_retalking_face5.mp4", tmp_path / "src.mp4", seconds=1.2, colour=tags, audio=False)
    analysis = analyze_video(src)
    track = analysis.tracks[0]
    frames = track.frames[(track.frames >= 4) & (track.frames + 6 <= track.frames.max())].astype(np.int64)
    plan = LipsyncPlan(track.id, frames, frames + 6)
    out = tmp_path / "lip.mp4"
    render_lipsync(src, analysis, [(plan, track)], out, lossless=True)
    s_info, o_info = probe_video(src), probe_video(out)
    assert (o_info.color_space, o_info.color_primaries, o_info.color_transfer) == \
        (s_info.color_space, s_info.color_primaries, s_info.color_transfer)
    assert video_colour(o_info) == video_colour(s_info)
    top = int(track.landmarks[:, :, 1].min()) - 2  # rows above the face: never composited
    matrix = "bt709" if tags else "bt601"
    a, b = decode_rgb(src, matrix, frames=30), decode_rgb(out, matrix, frames=30)
    changed = [int(f) for f in frames if f < len(a) and np.abs(b[f] - a[f]).mean() > 0]
    assert len(changed) > len(frames) // 2  # the planned frames were composited
    shift = (b[changed, :top] - a[changed, :top]).reshape(-1, 3).mean(axis=0)
    assert np.abs(shift).max() < 0.3, f"composited frames moved by R/G/B {shift.round(2)} levels above the face"


def test_picture_region_is_the_whole_conversions_region(testdata):
    """A face-sized region of a decoded frame converted alone: at even bounds inside the frame, the
    pixels of the whole frame's conversion to within a few levels (chroma interpolation, see
    lipdub.media.colour.Picture), clipped at the frame's edge; the whole frame is the exact
    frame_to_rgb."""
    import av

    from lipdub.media.colour import Picture, frame_to_rgb

    path = testdata / "th_latentsync_demo1_video.mp4"  # 1080x1920 HEVC, tagged BT.709
    colour = video_colour(probe_video(path))
    with av.open(str(path)) as c:
        frame = next(f for i, f in enumerate(c.decode(video=0)) if i == 40)
    pic = Picture(frame, colour)
    whole = pic.rgb()
    assert np.array_equal(whole, frame_to_rgb(frame, colour))
    rgb, ox, oy = pic.region(301, 611, 913, 1207)
    assert (ox, oy) == (300, 610) and rgb.shape == (1208 - 610, 914 - 300, 3)
    diff = np.abs(rgb.astype(int) - whole[610:1208, 300:914].astype(int))
    assert diff.max() <= 8 and np.mean(diff > 0) < 0.2 and psnr_db(rgb.astype(float), whole[610:1208, 300:914].astype(float)) > 45
    edge, ex, ey = pic.region(-50, 1800, 200, 2100)  # past the frame: clipped to it
    assert (ex, ey) == (0, 1800) and edge.shape == (120, 200, 3)


def test_one_picture_converted_from_two_threads_at_once(testdata, tmp_path):
    """The report hands one decoded picture to two consumers (SSIM: the whole frame; the faces: a
    region, which for a 4:4:4 or odd-sized frame is a slice of the whole): both converting it at once
    give the pixels of one conversion. PyAV keeps one libswscale context per frame, and without the
    picture's lock this hung, crashed or gave wrong pixels on such a clip."""
    import threading

    import av

    from lipdub.media.colour import Picture, frame_to_rgb

    clip = tmp_path / "odd444.mp4"  # the fault corpus's 351x351 case: yuv444p, so no region path
    ffmpeg("-i", str(testdata / "th2_retalking_face1.mp4"), "-vf", "scale=351:351,setsar=1", "-pix_fmt", "yuv444p",
           "-frames:v", "4", "-c:v", "libx264", str(clip))
    colour = video_colour(probe_video(clip))
    with av.open(str(clip)) as c:
        frames = list(c.decode(video=0))
    expected = [frame_to_rgb(f, colour) for f in frames]
    pictures = [Picture(f, colour) for f in frames]
    wrong: list[tuple[str, int]] = []

    def convert(kind: str) -> None:
        for _ in range(150):
            for k, (pic, want) in enumerate(zip(pictures, expected)):
                got = pic.rgb() if kind == "whole" else pic.region(40, 40, 300, 300)[0]
                if not np.array_equal(got, want if kind == "whole" else want[40:300, 40:300]):
                    wrong.append((kind, k))

    threads = [threading.Thread(target=convert, args=(kind,), daemon=True) for kind in ("whole", "region")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)  # a hang, not a speed limit: the conversions take about a second
    assert not any(t.is_alive() for t in threads), "the conversions hung"
    assert not wrong, f"{len(wrong)} conversions gave other pixels, first {wrong[0]}"
