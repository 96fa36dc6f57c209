"""The broadcast master (ProRes 422 HQ MOV, PCM stems, timecode, exact rates), checked with ffprobe
and PyAV on short clips made from the shared talking heads."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from media_fixtures import ffprobe_streams, first_frame_displayed, make_clip, orientation_error

from lipdub import mixing as mix_stage
from lipdub.audio import read_audio, resample
from lipdub.errors import ConfigError, InputError
from lipdub.languages import parse_language
from lipdub.layout import deliverable_paths
from lipdub.media.broadcast import AudioTrack, check_timecode, render_broadcast, stem_tracks
from lipdub.media.probe import decode_audio, probe

SPANISH = parse_language("es")


@pytest.fixture(scope="module")
def stems_for(testdata, tmp_path_factory):
    """Stems of a dub of a clip: a real English line placed over the clip's own soundtrack as the
    M&E bed, mixed by the mix stage (so mix, M&E and dialogue all differ)."""
    speech, sr = read_audio(testdata / "sp_en_jfk.flac", mono=True)
    speech = resample(speech, sr, 48000)

    def make(clip: Path) -> dict[str, Path]:
        info = probe(clip)
        original, _ = decode_audio(clip, info)
        res = mix_stage.mix([mix_stage.PlacedLine(0.1, speech[: int(0.8 * 48000)])], original=original,
                            music_effects=original * 0.5, source_dialogue=None, sample_rate_hz=48000,
                            duck_spans_s=[(0.1, 0.9)], target_lufs=-23.0, true_peak_ceiling_dbtp=-1.0)
        d = tmp_path_factory.mktemp("stems")
        out = {}
        for name, data in (("mix", res.mix), ("me", res.music_effects), ("dialogue", res.dialogue)):
            out[name] = d / f"{name}.wav"
            sf.write(str(out[name]), data, 48000, subtype="FLOAT")
        return out

    return make


def _samples(frame) -> np.ndarray:
    """(n, channels) samples of a decoded audio frame, packed or planar."""
    a = frame.to_ndarray()
    return a.reshape(-1, len(frame.layout.channels)) if frame.format.is_packed else a.T


def _video(streams):
    return next(s for s in streams if s["codec_type"] == "video")


def _audio(streams):
    return [s for s in streams if s["codec_type"] == "audio"]


@pytest.mark.parametrize("rate, timecode", [("24000/1001", "01:00:00:00"), ("25", None), ("30000/1001", "00:59:59;28")])
def test_master_of_a_clip_passes_the_broadcast_checks(testdata, tmp_path, stems_for, rate, timecode):
    src = make_clip(testdata / "th_retalking_face5.mp4", tmp_path / "src.mp4", seconds=1.0, rate=rate, size="262:200",
                    timecode=timecode)
    stems = stems_for(src)
    out = render_broadcast(source=src, output=tmp_path / "master.mov", audio=stem_tracks(stems, SPANISH))
    streams = ffprobe_streams(out.path)
    v = _video(streams)
    assert (v["codec_name"], v["profile"], v["pix_fmt"]) == ("prores", "HQ", "yuv422p10le")
    assert v.get("codec_tag_string") == "apch"  # the ProRes 422 HQ fourcc
    assert (v["color_primaries"], v["color_transfer"], v["color_space"]) == ("bt709", "bt709", "bt709")
    assert Fraction(v["r_frame_rate"]) == Fraction(rate) == Fraction(v["avg_frame_rate"])
    src_frames = int(_video(ffprobe_streams(src))["nb_read_packets"])
    assert int(v["nb_read_packets"]) == src_frames == out.frame_count
    audio = _audio(streams)
    assert [(a["codec_name"], int(a["sample_rate"]), a["bits_per_raw_sample"]) for a in audio] == [("pcm_s24le", 48000, "24")] * 3
    assert [a["tags"]["handler_name"] for a in audio] == ["Spanish dub mix", "M&E (music and effects)", "Spanish dialogue stem"]
    assert [a["tags"].get("language", "und") for a in audio] == ["spa", "und", "spa"]
    tmcd = [s for s in streams if s.get("codec_tag_string") == "tmcd"]
    if timecode:
        assert len(tmcd) == 1 and tmcd[0]["tags"]["timecode"] == timecode == out.timecode
    else:
        assert not tmcd and out.timecode is None


def test_each_track_carries_its_own_stem(testdata, tmp_path, stems_for):
    import av

    src = make_clip(testdata / "th_retalking_face5.mp4", tmp_path / "src.mp4", seconds=1.0, size="262:200")
    stems = stems_for(src)
    out = render_broadcast(source=src, output=tmp_path / "master.mov", audio=stem_tracks(stems, SPANISH))
    with av.open(str(out.path)) as c:  # PyAV (FFmpeg's libraries) reads the QuickTime file
        assert c.format.name.startswith("mov")
        n_frames = sum(1 for _ in c.decode(video=0))
        tracks = []
        for i in range(3):
            c.seek(0)
            tracks.append(np.concatenate([_samples(f) for f in c.decode(audio=i)]).astype(np.float64))
    assert n_frames == out.frame_count
    for track, key in zip(tracks, ("mix", "me", "dialogue")):
        ref, _ = read_audio(stems[key])
        n = min(len(ref), len(track))
        assert n > 0.9 * len(ref)
        peak = np.abs(ref[:n]).max()
        assert np.abs(track[:n] / 2**31 - ref[:n]).max() < 1e-4 * max(peak, 1e-3) + 2**-22  # 24-bit PCM of that stem


def test_source_colour_tags_are_kept(testdata, tmp_path, stems_for):
    src = make_clip(testdata / "th_retalking_face5.mp4", tmp_path / "sd.mp4", seconds=0.5, size="262:200",
                    colour=("smpte170m", "smpte170m", "smpte170m"))
    out = render_broadcast(source=src, output=tmp_path / "m.mov", audio=stem_tracks(stems_for(src), SPANISH))
    v = _video(ffprobe_streams(out.path))
    assert (v["color_primaries"], v["color_transfer"], v["color_space"]) == ("smpte170m", "smpte170m", "smpte170m")


def test_bt709_source_keeps_its_tags(testdata, tmp_path, stems_for):
    # the shared portrait HEVC clip is tagged BT.709 (limited range); a short cut of it, tags copied
    src = tmp_path / "hd.mp4"
    from media_fixtures import ffmpeg

    ffmpeg("-i", str(testdata / "th_latentsync_demo1_video.mp4"), "-t", "0.4", "-c", "copy", str(src))
    out = render_broadcast(source=src, output=tmp_path / "m.mov", audio=stem_tracks(stems_for(src), SPANISH))
    v = _video(ffprobe_streams(out.path))
    assert (v["color_primaries"], v["color_transfer"], v["color_space"], v["color_range"]) == ("bt709", "bt709", "bt709", "tv")
    assert (v["width"], v["height"]) == (1080, 1920)


def test_lip_synced_picture_is_the_one_encoded(testdata, tmp_path, stems_for):
    src = make_clip(testdata / "th_retalking_face5.mp4", tmp_path / "src.mp4", seconds=1.0, size="262:200", timecode="10:00:00:00")
    # stand-in for the lip-sync stage's output: the same frames and timestamps, picture changed (mirrored)
    from media_fixtures import ffmpeg

    lip = tmp_path / "lipsync.mp4"
    ffmpeg("-i", str(src), "-map", "0:v", "-vf", "hflip", "-c:v", "libx264", "-preset", "ultrafast", str(lip))
    out = render_broadcast(source=src, output=tmp_path / "m.mov", audio=stem_tracks(stems_for(src), SPANISH), picture=lip)
    assert out.frame_count == probe(src).video.frame_count and out.timecode == "10:00:00:00"
    master, lipped, source = (first_frame_displayed(p) for p in (out.path, lip, src))
    assert np.abs(master.astype(float) - lipped).mean() < np.abs(master.astype(float) - source).mean() / 3


def test_vfr_source_is_conformed_to_its_nominal_rate(testdata, tmp_path, stems_for):
    from media_fixtures import ffmpeg

    src = tmp_path / "vfr.mp4"  # the first 2.5 s of a VFR clip (nominal 30 fps, 22.1 fps on average), packets copied
    ffmpeg("-i", str(testdata / "th2_retalking_face1.mp4"), "-t", "2.5", "-c", "copy", str(src))
    assert probe(src).video.is_vfr
    out = render_broadcast(source=src, output=tmp_path / "m.mov", audio=stem_tracks(stems_for(src), SPANISH))
    v = _video(ffprobe_streams(out.path))
    assert Fraction(v["r_frame_rate"]) == 30 == Fraction(v["avg_frame_rate"])
    duration_s = probe(src).video.duration_s
    assert abs(out.frame_count - duration_s * 30) <= 2 and out.details["conformed_from_vfr"]


def test_bad_requests_are_refused(testdata, tmp_path, stems_for):
    src = make_clip(testdata / "th_retalking_face5.mp4", tmp_path / "src.mp4", seconds=0.3, size="262:200")
    tracks = stem_tracks(stems_for(src), SPANISH)
    with pytest.raises(ConfigError):
        render_broadcast(source=src, output=tmp_path / "m.mp4", audio=tracks)
    with pytest.raises(ConfigError):
        render_broadcast(source=src, output=tmp_path / "m.mov", audio=[])
    with pytest.raises(InputError):
        render_broadcast(source=src, output=tmp_path / "m.mov", audio=[AudioTrack(tmp_path / "none.wav", "mix")])
    with pytest.raises(ConfigError):  # drop-frame at 25 fps
        render_broadcast(source=src, output=tmp_path / "m.mov", audio=tracks, timecode="01:00:00;00")
    with pytest.raises(InputError):
        stem_tracks({"mix": tracks[0].path}, SPANISH)
    with pytest.raises(ConfigError):
        deliverable_paths(tmp_path / "x.mp4", "broadcast")


@pytest.mark.parametrize("tc, fps, ok", [
    ("01:00:00;00", Fraction(30000, 1001), True), ("01:01:00;02", Fraction(30000, 1001), True),
    ("01:01:00;00", Fraction(30000, 1001), False), ("01:10:00;00", Fraction(30000, 1001), True),
    ("01:01:00;03", Fraction(60000, 1001), False), ("00:00:00:24", Fraction(24000, 1001), False),
    ("00:00:00:23", Fraction(24000, 1001), True), ("1:00:00:00", Fraction(25), False), ("01:00:00;00", Fraction(25), False),
])
def test_timecode_rules(tc, fps, ok):
    if ok:
        assert check_timecode(tc, fps) == tc
    else:
        with pytest.raises(ConfigError):
            check_timecode(tc, fps)


def test_deliverable_names(tmp_path):
    web = deliverable_paths(tmp_path / "ad.es.mp4", "web", "en")
    assert {k: p.name for k, p in web.items()} == {
        "media": "ad.es.mp4", "target_srt": "ad.es.srt", "target_vtt": "ad.es.vtt", "source_srt": "ad.es.en.srt",
        "source_vtt": "ad.es.en.vtt", "stems_dir": "ad.es.stems"}
    bc = deliverable_paths(tmp_path / "ad.es.mov", "broadcast", "en")
    assert bc["target_ttml"].name == "ad.es.ttml" and bc["source_ttml"].name == "ad.es.en.ttml"
    with pytest.raises(ConfigError):
        deliverable_paths(tmp_path / "ad.es.mov", "dcp")


def test_orientation_helper_can_tell_rotations_apart(testdata, tmp_path):
    # the helper the rotation tests rely on: a clip against itself and its quarter turns
    src = make_clip(testdata / "th_retalking_face5.mp4", tmp_path / "src.mp4", seconds=0.2, size="262:200", audio=False)
    img = first_frame_displayed(src)
    for k in range(4):
        errs = orientation_error(img, np.rot90(img, k))
        assert min(errs, key=errs.get) == k * 90
