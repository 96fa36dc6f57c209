"""Issue 18: two people talking on screen. Two shared talking heads side by side take turns (the left
person speaks for 2.5 s while the right one listens, then the other way round; each with their own
voice); the clip is dubbed to Spanish with the defaults (speaker count estimated). From the landmarks
of the output (a face analysis of the dubbed video) each face's mouth is re-animated during its own
speaker's lines and left as it was during the other's, and script.json maps each speaker to their face.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from media_fixtures import hstack_two_speakers

from lipdub.config import DubConfig
from lipdub.contracts.faces import FaceAnalysis
from lipdub.faces.analyze import analyze_video
from lipdub.lipsync.tracks import TrackRequest, lipsync_tracks, speaker_speech
from lipdub.pipeline import dub
from lipdub.pipeline.stages.lipsync import LIPSYNC_PAD_S
from lipdub.script import Script

TURN_S = 2.5
MARGIN_S = 0.3  # the faces stage's One Euro smoothing carries a re-animated mouth a few frames on


@pytest.fixture(scope="module")
def two_speaker_dub(testdata, tmp_path_factory):
    d = tmp_path_factory.mktemp("two_speakers")
    clip = hstack_two_speakers(testdata / "th_retalking_face5.mp4", testdata / "th_voxceleb_pcavs_00086.mp4",
                               d / "two.mp4", turn_s=TURN_S)
    cfg = DubConfig(input=clip, targets=["es"], output=d / "out", voice_search=0)
    result = dub(cfg)
    project = result.project_dir
    return {"clip": clip, "media": result.outputs["es"].media, "script": Script.load(project / "script.json"),
            "faces": FaceAnalysis.load(project / "faces"), "config": cfg, "project": project}


def _side(track, width: int) -> str:
    return "left" if np.median((track.boxes[:, 0] + track.boxes[:, 2]) / 2) < width / 2 else "right"


def _openings(analysis: FaceAnalysis) -> dict[str, np.ndarray]:
    """Mouth opening per frame (NaN where the face is not tracked) of the left and right face."""
    out = {}
    for t in analysis.tracks:
        o = np.full(analysis.frame_count, np.nan)
        o[t.frames] = t.mouth_opening
        out[_side(t, analysis.width)] = o
    return out


def _speaker_sides(dubbed) -> dict[str, str]:
    """Speaker id -> the side of the face track script.json gives them."""
    faces = dubbed["faces"]
    tracks = {t.id: t for t in faces.tracks}
    return {s.id: _side(tracks[s.track], faces.width) for s in dubbed["script"].speakers if s.track in tracks}


def test_script_maps_each_speaker_to_their_face(two_speaker_dub):
    script = two_speaker_dub["script"]
    assert len(script.speakers) == 2 and len(two_speaker_dub["faces"].tracks) == 2
    sides = _speaker_sides(two_speaker_dub)
    for seg in script.segments:  # the lines of the first turn are the left person's, the others the right's
        mid = (seg.start_s + seg.end_s) / 2
        assert sides.get(seg.speaker) == ("left" if mid < TURN_S else "right"), (seg.id, seg.start_s, seg.end_s, sides)


def test_each_mouth_moves_only_during_its_own_lines(two_speaker_dub):
    script, faces = two_speaker_dub["script"], two_speaker_dub["faces"]
    sides, n, fps = _speaker_sides(two_speaker_dub), faces.frame_count, float(Fraction(faces.fps))
    assert set(sides) == {s.id for s in script.speakers}, sides  # every speaker is on screen
    src = _openings(faces)
    out = _openings(analyze_video(two_speaker_dub["media"]))
    assert set(out) == set(src) == {"left", "right"}
    lines = {"left": np.zeros(n, bool), "right": np.zeros(n, bool)}
    near = {"left": np.zeros(n, bool), "right": np.zeros(n, bool)}  # re-animated span (padded) and the smoothing after it
    for seg in script.segments:
        t, side = seg.targets["es"], sides[seg.speaker]
        lines[side][int(t.fit.placed_start_s * fps): int(np.ceil(t.fit.placed_end_s * fps))] = True
        a = min(seg.start_s, t.fit.placed_start_s) - LIPSYNC_PAD_S - MARGIN_S
        b = max(seg.end_s, t.fit.placed_end_s) + LIPSYNC_PAD_S + MARGIN_S
        near[side][max(0, int(a * fps)): int(np.ceil(b * fps))] = True
    for side, other in (("left", "right"), ("right", "left")):
        own, others = lines[side], lines[other] & ~near[side]
        assert own.sum() > 25 and others.sum() > 25
        change = np.abs(out[side] - src[side])
        # re-animated during its own lines: the mouth moves, differently from the source
        assert np.nanmean(change[own]) > 0.02, (side, np.nanmean(change[own]))
        assert np.nanstd(out[side][own]) > 0.015, (side, np.nanstd(out[side][own]))
        # left alone during the other person's lines: as still as the source's listener
        assert np.nanmean(change[others]) < min(0.015, 0.25 * np.nanmean(change[own])), (side, np.nanmean(change[others]))
        assert np.nanstd(out[side][others]) < np.nanstd(src[side][others]) + 0.005, (side, np.nanstd(out[side][others]))


def test_lipsync_stage_gives_each_face_its_own_speech(two_speaker_dub):
    """The lip-sync stage's request for each face carries its speaker's source speech: the dialogue
    stem over their lines, silent over the other speaker's."""
    from lipdub.languages import parse_language
    from lipdub.media.probe import probe
    from lipdub.pipeline.context import PipelineContext
    from lipdub.pipeline.hooks import PipelineHooks
    from lipdub.pipeline.stages.lipsync import track_requests
    from lipdub.project import Project, sha256_file

    cfg, clip, script = two_speaker_dub["config"], two_speaker_dub["clip"], two_speaker_dub["script"]
    ctx = PipelineContext(cfg, Project(two_speaker_dub["project"]), PipelineHooks(), clip, probe(clip), sha256_file(clip), "lipsync")
    lctx = ctx.for_language(parse_language("es"), parse_language("en"), two_speaker_dub["media"])
    stem = lctx.source_speech_16k()
    requests = list(track_requests(lctx, script, two_speaker_dub["faces"]))
    assert len(requests) == 2
    for req in requests:
        mine = [(s.start_s, s.end_s) for s in script.segments if s.speaker == req.label]
        theirs = [(s.start_s, s.end_s) for s in script.segments if s.speaker != req.label]
        assert req.source_audio is not None and len(req.source_audio) == len(stem)
        for a, b in mine:
            sl = slice(int(a * 16000), int(b * 16000))
            assert np.array_equal(req.source_audio[sl], stem[sl])
        for a, b in theirs:
            sl = slice(int(a * 16000) + 1, int(b * 16000) - 1)
            assert not np.any(req.source_audio[sl]) and np.any(stem[sl])


def test_each_track_learns_from_its_own_speaker(testdata, tmp_path):
    """lipsync_tracks gives a backend the request's own source speech (speaker_speech: silent
    outside that speaker's turns) rather than the whole dialogue."""

    class Recorder:
        name = "recorder"
        uses_phonemes = False  # the capability every lip-sync backend declares (contracts/lipsync.py)

        def __init__(self):
            self.seen = {}

        def plan(self, analysis, track, frames, frame_times, source_audio, dub_audio, sr, phonemes, source_phonemes=None):
            from lipdub.contracts.lipsync import LipsyncPlan

            self.seen[track.id] = source_audio
            return LipsyncPlan(track.id, frames[:0], frames[:0])

    clip = hstack_two_speakers(testdata / "th_retalking_face5.mp4", testdata / "th_voxceleb_pcavs_00086.mp4",
                               tmp_path / "two.mp4", turn_s=TURN_S)
    from lipdub.media.probe import decode_audio, probe, video_frame_times

    _, audio = decode_audio(clip, probe(clip))
    analysis = analyze_video(clip)
    left, right = sorted(analysis.tracks, key=lambda t: _side(t, analysis.width) != "left")
    requests = [TrackRequest(left, [(0.0, TURN_S)], audio, None, "A", speaker_speech(audio, 16000, [(0.0, TURN_S)])),
                TrackRequest(right, [(TURN_S, 2 * TURN_S)], audio, None, "B", speaker_speech(audio, 16000, [(TURN_S, 2 * TURN_S)]))]
    backend = Recorder()
    lipsync_tracks(backend, clip, analysis, video_frame_times(clip), audio, requests, tmp_path / "lip.mp4", sample_rate_hz=16000)
    cut = int(TURN_S * 16000)
    rms = lambda x: float(np.sqrt(np.mean(np.square(x))))  # noqa: E731
    assert rms(backend.seen[left.id][:cut]) > 0.01 and rms(backend.seen[left.id][cut:]) == 0.0
    assert rms(backend.seen[right.id][:cut]) == 0.0 and rms(backend.seen[right.id][cut:]) > 0.01
    assert np.array_equal(backend.seen[left.id][:cut], audio[:cut])
