"""Display rotation of the rendered deliverables (issue 16): the output, decoded with its display
matrix applied, shows the picture the way the source does, for 0/90/180/270 degree sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from media_fixtures import ffmpeg, first_frame_displayed, make_clip, orientation_error, rotate_clip

from lipdub.languages import parse_language
from lipdub.media.broadcast import AudioTrack, render_broadcast
from lipdub.media.probe import decode_audio, display_rotation_deg, probe
from lipdub.media.render import render_video

EN, ES = parse_language("en"), parse_language("es")


@pytest.fixture(scope="module")
def stored(testdata, tmp_path_factory):
    """A non-square (262x200) clip with sound and no display matrix, and its mix as a WAV."""
    d = tmp_path_factory.mktemp("rot")
    clip = make_clip(testdata / "th_retalking_face5.mp4", d / "stored.mp4", seconds=0.6, size="262:200")
    mix, _ = decode_audio(clip, probe(clip))
    sf.write(str(d / "mix.wav"), mix, 48000, subtype="FLOAT")
    return clip, d / "mix.wav"


def _same_orientation(source: Path, output: Path) -> None:
    a, b = first_frame_displayed(source), first_frame_displayed(output)
    errs = orientation_error(a, b)
    assert min(errs, key=errs.get) == 0, errs  # not turned against the source
    others = [e for k, e in errs.items() if k and np.isfinite(e)]
    assert all(errs[0] < e / 2 for e in others), errs


@pytest.mark.parametrize("ccw", [0, 90, 180, 270])
def test_fixture_rotation_reads_back(stored, tmp_path, ccw):
    src = rotate_clip(stored[0], tmp_path / "r.mp4", ccw)
    assert display_rotation_deg(src) == ccw
    assert probe(src).video.rotation_deg == ccw


@pytest.mark.parametrize("ccw", [0, 90, 180, 270])
def test_web_render_of_lip_synced_video_keeps_the_source_orientation(stored, tmp_path, ccw):
    clip, mix = stored
    src = rotate_clip(clip, tmp_path / "src.mp4", ccw)
    # the lip-sync stage's video is in the source's stored orientation, with no display matrix
    lip = tmp_path / "lip.mp4"
    ffmpeg("-i", str(clip), "-map", "0:v", "-c:v", "libx264", "-preset", "ultrafast", str(lip))
    assert display_rotation_deg(lip) == 0
    for rotation_deg, name in ((None, "auto.mp4"), ((-ccw) % 360, "tag.mp4")):  # pipeline passes the clockwise tag
        out = render_video(source=src, mix_wav=mix, output=tmp_path / name, language=ES, source_language=EN, subtitles=[],
                           video_override=lip, video_codec="h264", rotation_deg=rotation_deg)
        assert display_rotation_deg(out) == ccw
        _same_orientation(src, out)


@pytest.mark.parametrize("ccw", [90, 270])
def test_web_render_of_copied_stream_keeps_the_source_orientation(stored, tmp_path, ccw):
    clip, mix = stored
    src = rotate_clip(clip, tmp_path / "src.mp4", ccw)
    out = render_video(source=src, mix_wav=mix, output=tmp_path / "o.mp4", language=ES, source_language=EN, subtitles=[])
    assert display_rotation_deg(out) == ccw
    _same_orientation(src, out)


@pytest.mark.parametrize("ccw", [0, 90, 180, 270])
@pytest.mark.parametrize("picture", ["source", "lipsync"])
def test_broadcast_master_is_upright(stored, tmp_path, ccw, picture):
    clip, mix = stored
    src = rotate_clip(clip, tmp_path / "src.mp4", ccw)
    lip = None
    if picture == "lipsync":
        lip = tmp_path / "lip.mp4"
        ffmpeg("-i", str(clip), "-map", "0:v", "-c:v", "libx264", "-preset", "ultrafast", str(lip))
    res = render_broadcast(source=src, output=tmp_path / "m.mov", audio=[AudioTrack(mix, "mix", "spa")], picture=lip)
    assert display_rotation_deg(res.path) == 0  # the rotation is in the pixels
    assert res.rotation_applied_deg == ccw
    _same_orientation(src, res.path)
