"""The ``external`` lip-sync backend with a stand-in "model" (a small Python script written here that
changes the lower half of every frame it is given): only the chosen track's lower face comes back
through the compositor, other faces and unplanned frames stay as decoded, frames past the end of the
tool's output are left alone, and a failing or misconfigured tool stops with a clear error."""

from __future__ import annotations

import shlex
import sys

import numpy as np
import pytest
from media_utils import ffmpeg

from lipdub.backends.lipsync.external import ExternalBackend, parse_command
from lipdub.errors import BackendUnavailable, ConfigError, StageFailed

FAKE_TOOL = r'''
import argparse, sys
import av, numpy as np, soundfile as sf
ap = argparse.ArgumentParser()
ap.add_argument("--video"); ap.add_argument("--audio"); ap.add_argument("--output")
ap.add_argument("--size", type=int, default=0); ap.add_argument("--max-frames", type=int, default=10**9)
a = ap.parse_args()
wav, sr = sf.read(a.audio)
with av.open(a.video) as src:
    vs = src.streams.video[0]
    rate = vs.guessed_rate
    n = vs.frames
    if sr != 16000 or abs(len(wav) / sr - n / float(rate)) > 0.05:
        sys.exit(f"audio {len(wav) / sr:.3f} s does not match the video {n / float(rate):.3f} s")
    with av.open(a.output, "w") as out:
        os_ = out.add_stream("libx264", rate=rate)
        w = a.size or vs.codec_context.width
        h = a.size or vs.codec_context.height
        os_.width, os_.height, os_.pix_fmt = w, h, "yuv420p"
        os_.options = {"crf": "10"}
        for i, fr in enumerate(src.decode(vs)):
            if i >= a.max_frames:
                break
            img = fr.to_ndarray(format="rgb24")
            img[img.shape[0] // 2:] = 255 - img[img.shape[0] // 2:]  # a very visible "new mouth"
            vf = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(width=w, height=h, format="yuv420p")
            vf.pts = i
            for p in os_.encode(vf):
                out.mux(p)
        for p in os_.encode():
            out.mux(p)
print("fake tool done")
'''


@pytest.fixture(scope="module")
def two_faces(testdata, tmp_path_factory):
    """Two talking heads side by side (320x320 each), 25 fps, 2.4 s, and its face analysis."""
    from lipdub.faces.analyze import analyze_video
    from lipdub.media.probe import video_frame_times

    d = tmp_path_factory.mktemp("ext")
    clip = d / "two.mp4"
    ffmpeg("-i", str(testdata / "th2_retalking_face1.mp4"), "-i", str(testdata / "th_retalking_face5.mp4"),
           "-filter_complex", "[0:v]scale=320:320,setsar=1[a];[1:v]scale=320:320,setsar=1[b];[a][b]hstack,fps=25[v]",
           "-map", "[v]", "-t", "2.4", "-an", "-c:v", "libx264", "-crf", "16", "-pix_fmt", "yuv420p", str(clip))
    tool = d / "fake_tool.py"
    tool.write_text(FAKE_TOOL)
    analysis = analyze_video(clip)
    analysis.save(d / "out.lipdub" / "faces")
    return clip, analysis, tool, video_frame_times(clip), d


def _command(tool, *extra: str) -> str:
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(tool))} --video {{video}} --audio {{audio}} --output {{output}} " + " ".join(extra)


def _yuv_frames(path, via_rgb: bool = False):
    """Decoded YUV 4:2:0 planes of every frame; ``via_rgb``: after the RGB round trip a composited
    frame goes through in render_lipsync (the source's matrix both ways, lipdub.media.colour)."""
    import av

    from lipdub.media.colour import frame_to_rgb, rgb_to_frame, video_colour
    from lipdub.media.probe import probe_video

    colour = video_colour(probe_video(path))
    with av.open(str(path)) as c:
        if not via_rgb:
            return [f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]
        return [rgb_to_frame(frame_to_rgb(f, colour), "yuv420p", colour).to_ndarray() for f in c.decode(video=0)]


def test_only_the_chosen_tracks_lower_face_comes_through(two_faces, testdata):
    import av

    from lipdub.lipsync.api import lipsync_video

    clip, analysis, tool, _, d = two_faces
    left = min(analysis.tracks, key=lambda t: t.landmarks[:, :, 0].mean())
    right = max(analysis.tracks, key=lambda t: t.landmarks[:, :, 0].mean())
    assert left.landmarks[:, :, 0].max() < 320 <= right.landmarks[:, :, 0].min()  # one face per half
    out = d / "out.mp4"
    # the tool returns a 256x256 video: the backend resizes it back to its crop
    result = lipsync_video(clip, testdata / "sp_en_jfk.flac", out, backend="external", face=left.id, lossless=True,
                           backend_options={"command": _command(tool, "--size", "256")})
    assert result.track == left.id and result.details["backend"] == "external"
    # luma planes; only the region the compositor changed goes back through RGB (render_lipsync), so
    # a composited frame's untouched pixels (the other face) equal the source's decoded planes exactly
    src = [f[:320].astype(int) for f in _yuv_frames(clip)]
    via_rgb = [f[:320].astype(int) for f in _yuv_frames(clip, via_rgb=True)]
    dst = [f[:320].astype(int) for f in _yuv_frames(out)]
    assert len(src) == len(dst) == analysis.frame_count == 60
    with av.open(str(out)) as c:
        assert c.streams.video[0].guessed_rate == 25
        assert (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height) == (640, 320)
    planned = set(left.frames[left.skip == 0].tolist())
    assert len(planned) > 40
    for i in range(len(src)):
        a, b = via_rgb[i], dst[i]
        if i not in planned:
            assert np.array_equal(src[i], b), f"unplanned frame {i} changed"
            continue
        assert np.array_equal(src[i][:, 320:], b[:, 320:]), f"frame {i}: the other face changed"
        lm = left.landmarks[left.index_of(i)]
        mouth = np.round(lm[[13, 14, 61, 291]].mean(0)[:2]).astype(int)
        x, y = mouth
        # the tool inverted the lower half; colour transfer pulls the mean back, the texture stays
        assert np.abs(a[y - 4:y + 5, x - 4:x + 5] - b[y - 4:y + 5, x - 4:x + 5]).mean() > 15, f"frame {i}: the mouth did not come through"
        eyes_y = int(lm[[33, 263], 1].mean())
        # above the eyes: the decoded pixels, or (inside the compositor's region) their RGB round trip
        top = slice(0, eyes_y + 1)
        assert np.all((b[top] == src[i][top]) | (b[top] == a[top])), f"frame {i}: the upper face changed"


def test_unplanned_frames_stay_bit_identical_and_a_short_output_is_left_alone(two_faces, testdata):
    from lipdub.lipsync.render import render_lipsync
    from lipdub.media.probe import decode_audio, probe

    clip, analysis, tool, times, d = two_faces
    track = analysis.tracks[0]
    frames = track.frames[(track.skip == 0) & (track.frames >= 10) & (track.frames < 40)].astype(np.int64)
    _, jfk = decode_audio(testdata / "sp_en_jfk.flac", probe(testdata / "sp_en_jfk.flac"))
    backend = ExternalBackend(command=_command(tool, "--max-frames", "20"), work_dir=d / "work")
    plan = backend.plan(analysis, track, frames, times, jfk, jfk, 16000, None)
    out = d / "short.mp4"
    details = render_lipsync(clip, analysis, [(plan, track)], out, lossless=True)
    first = int(frames.min())
    reached = frames[frames < first + 20]
    assert details["composited_frames"] == {str(track.id): len(reached)}
    assert plan.details["frames_past_tool_output"] == len(frames) - len(reached)
    assert (d / "work" / f"track_{track.id:04d}" / "tool.log").read_text().strip().endswith("fake tool done")
    src, dst = _yuv_frames(clip), _yuv_frames(out)
    assert len(src) == len(dst)
    changed = {i for i in range(len(src)) if not np.array_equal(src[i], dst[i])}
    assert changed == set(reached.tolist())


def test_command_templates_and_tool_failures_are_clear(two_faces, tmp_path, monkeypatch):
    from lipdub.lipsync.render import render_lipsync

    with pytest.raises(ConfigError, match=r"lacks \{output\}"):
        parse_command("tool {video} {audio}")
    with pytest.raises(ConfigError, match=r"unknown placeholder \{face\}"):
        parse_command("tool {video} {audio} {output} {face}")
    with pytest.raises(ConfigError, match="bad external"):
        parse_command("tool {video {audio} {output}")
    assert parse_command("sh -c 'echo {{}}' {video} {audio} {output}")
    monkeypatch.delenv("LIPDUB_LIPSYNC_COMMAND", raising=False)
    with pytest.raises(ConfigError, match="needs a command"):
        ExternalBackend()
    with pytest.raises(BackendUnavailable, match="LIPDUB_LIPSYNC_COMMAND"):
        ExternalBackend.check()
    monkeypatch.setenv("LIPDUB_LIPSYNC_COMMAND", "tool --in {video} --audio {audio} --out {output}")
    assert "tool --in" in ExternalBackend.check()

    clip, analysis, tool, times, _ = two_faces
    track = analysis.tracks[0]
    frames = track.frames[track.skip == 0][:5].astype(np.int64)
    audio = np.zeros(16000 * 3, np.float32)
    failing = ExternalBackend(command="echo model exploded >&2; exit 3 # {video} {audio} {output}")
    plan = failing.plan(analysis, track, frames, times, audio, audio, 16000, None)
    with pytest.raises(StageFailed, match="exit code 3: model exploded"):
        render_lipsync(clip, analysis, [(plan, track)], tmp_path / "x.mp4")
    lazy = ExternalBackend(command="true {video} {audio} {output}")
    plan = lazy.plan(analysis, track, frames, times, audio, audio, 16000, None)
    with pytest.raises(StageFailed, match="wrote no output.mp4"):
        render_lipsync(clip, analysis, [(plan, track)], tmp_path / "y.mp4")
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "y.mp4").exists()
