"""Issue 18's "done when" for the broadcast master: a dub of a shared clip (th_retalking_face5, untagged
524x524 H.264) delivered with ``--deliver broadcast`` passes the ffprobe checks, opens in FFmpeg and in
PyAV, and shows the source's colours where the dub left the picture alone (the lip-synced picture is
re-encoded from BT.601 to the BT.709 the master is tagged with)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from media_fixtures import decode_rgb, ffprobe_streams

from lipdub.config import DubConfig
from lipdub.contracts.faces import FaceAnalysis
from lipdub.pipeline import dub
from lipdub.tools import ffmpeg_exe

pytestmark = pytest.mark.slow  # a whole dub: about 50 s on 2 cores, more when they are busy


@pytest.fixture(scope="module")
def master(testdata, tmp_path_factory):
    out = tmp_path_factory.mktemp("broadcast_dub") / "face5.es.mov"
    result = dub(DubConfig(input=testdata / "th_retalking_face5.mp4", targets=["es"], output=out, deliver="broadcast", voice_search=0))
    return result


def test_master_passes_the_ffprobe_checks(master, testdata):
    out = master.outputs["es"]
    streams = ffprobe_streams(out.media)
    v = next(s for s in streams if s["codec_type"] == "video")
    assert (v["codec_name"], v["profile"], v["pix_fmt"], v["codec_tag_string"]) == ("prores", "HQ", "yuv422p10le", "apch")
    assert (v["color_primaries"], v["color_transfer"], v["color_space"], v["color_range"]) == ("bt709", "bt709", "bt709", "tv")
    src_v = next(s for s in ffprobe_streams(testdata / "th_retalking_face5.mp4") if s["codec_type"] == "video")
    assert int(v["nb_read_packets"]) == int(src_v["nb_read_packets"]) == 122
    assert v["r_frame_rate"] == src_v["r_frame_rate"] == "25/1"
    audio = [s for s in streams if s["codec_type"] == "audio"]
    assert [(a["codec_name"], a["sample_rate"]) for a in audio] == [("pcm_s24le", "48000")] * 3
    assert [a["tags"]["handler_name"] for a in audio] == ["Spanish dub mix", "M&E (music and effects)", "Spanish dialogue stem"]
    assert out.subtitles["target_ttml"].exists()


def test_master_opens_in_ffmpeg_and_pyav(master):
    import av

    media = master.outputs["es"].media
    proc = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(media), "-map", "0", "-f", "null", "-"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr.strip() == ""
    with av.open(str(media)) as c:
        assert c.format.name.startswith("mov")
        assert sum(1 for _ in c.decode(video=0)) == 122


def test_master_shows_the_source_colours_away_from_the_mouth(master, testdata):
    """Outside the mouth region (the quality report's mask: what the compositor may touch) the
    master, decoded by its tags, matches the untagged SD source decoded as players read it (BT.601);
    tagging BT.709 over BT.601 pixels, as the master did, shifts R/G/B by about +2.8 / +3.0 / -1.1
    levels on frame 5."""
    from lipdub.qc.visual import mouth_mask

    faces = FaceAnalysis.load(master.project_dir / "faces")
    src = decode_rgb(testdata / "th_retalking_face5.mp4", "bt601", frames=122)
    out = decode_rgb(master.outputs["es"].media, frames=122)
    diffs = []
    for i in range(0, 122, 3):
        lmks = [t.landmarks_raw[t.index_of(i)] for t in faces.tracks_at(i)]
        keep = ~mouth_mask(src.shape[1:3], lmks)
        diffs.append((out[i] - src[i])[keep])
    d = np.concatenate(diffs)
    shift = d.mean(axis=0)
    assert np.abs(shift).max() < 0.5, shift.round(2)
    assert 10 * np.log10(255 ** 2 / np.mean(d ** 2)) > 40.0
