"""Issue 18: a line that follows the cut. The first 2 s of a shared talking head, then the same 2 s
again after a hard cut (a jump cut: same person, same framing, which PySceneDetect's content detector
does not see), dubbed to Spanish from a transcript whose middle line runs across the cut. The face
tracks end at the cut, the speaker is each shot's face, the lip-sync plan covers the line on both
sides with that side's track and that side's frames only, and the output's sync on each side is not
worse than the no-lip-sync floor (source picture, dubbed speech).
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from media_fixtures import hard_cut_repeat

from lipdub.config import DubConfig
from lipdub.contracts.faces import FaceAnalysis
from lipdub.faces.analyze import analyze_video
from lipdub.faces.shots import detect_shots, find_jump_cuts
from lipdub.media.probe import video_frame_times
from lipdub.pipeline import dub
from lipdub.qc.thresholds import Thresholds
from lipdub.script import Script

CUT_S = 2.0
SRT = """1
00:00:00,100 --> 00:00:01,200
Bringing in reforms

2
00:00:01,300 --> 00:00:03,200
to tighten that regulation, bringing in reforms

3
00:00:03,300 --> 00:00:03,950
to tighten it.
"""


@pytest.fixture(scope="module")
def cut_clip(testdata, tmp_path_factory):
    d = tmp_path_factory.mktemp("hard_cut")
    return hard_cut_repeat(testdata / "th_retalking_face5.mp4", d / "cut.mp4", seconds=CUT_S)


@pytest.fixture(scope="module")
def cut_dub(cut_clip):
    srt = cut_clip.with_suffix(".en.srt")
    srt.write_text(SRT)
    result = dub(DubConfig(input=cut_clip, targets=["es"], output=cut_clip.parent / "out", transcript=srt, source_language="en", voice_search=0))
    project = result.project_dir
    media = result.outputs["es"].media
    report = json.loads(media.with_name(media.stem + ".report.json").read_text())
    return {"project": project, "faces": FaceAnalysis.load(project / "faces"), "script": Script.load(project / "script.json"),
            "plans": json.loads((project / "lipsync/es/plans.json").read_text()), "report": report, "media": media}


def _cut_frame(analysis: FaceAnalysis) -> int:
    return int(round(CUT_S * Fraction(analysis.fps)))


def test_jump_cut_is_found_on_the_face_and_nowhere_else(cut_clip, testdata):
    n = len(video_frame_times(cut_clip))
    shots = detect_shots(cut_clip, n)
    assert [(s.start_frame, s.end_frame) for s in shots] == [(0, n)]  # the content detector misses it
    assert find_jump_cuts(analyze_video(cut_clip, shots), video_frame_times(cut_clip)) == [50]
    still = testdata / "th_retalking_face5.mp4"  # the same face without the cut
    assert find_jump_cuts(analyze_video(still), video_frame_times(still)) == []


def test_tracks_end_at_the_cut(cut_dub):
    faces = cut_dub["faces"]
    cut = _cut_frame(faces)
    assert [(s.start_frame, s.end_frame) for s in faces.shots] == [(0, cut), (cut, faces.frame_count)]
    assert len(faces.tracks) == 2
    before, after = sorted(faces.tracks, key=lambda t: t.start_frame)
    assert before.end_frame == cut == after.start_frame
    assert before.shot != after.shot


def test_the_speaker_is_the_face_of_each_shot(cut_dub):
    (speaker,) = cut_dub["script"].speakers
    assert sorted(speaker.track_ids()) == sorted(t.id for t in cut_dub["faces"].tracks)


def test_line_across_the_cut_is_planned_on_both_sides_with_each_sides_frames(cut_dub):
    faces, script, plans = cut_dub["faces"], cut_dub["script"], cut_dub["plans"]
    fps, cut = float(Fraction(faces.fps)), _cut_frame(faces)
    across = [s for s in script.segments if s.targets["es"].fit.placed_start_s < CUT_S < s.targets["es"].fit.placed_end_s]
    assert len(across) == 1
    fit = across[0].targets["es"].fit
    line = set(range(int(fit.placed_start_s * fps), int(fit.placed_end_s * fps)))
    by_track = {t.id: t for t in faces.tracks}
    planned = {}
    for plan in plans["plans"]:
        track = by_track[plan["track"]]
        frames, donors = np.array(plan["frames"]), np.array(plan["source_frames"])
        assert ((frames >= track.start_frame) & (frames < track.end_frame)).all()
        # every donor mouth comes from the shot of the frame it is warped onto: nothing crosses the cut
        crossing = int(((frames < cut) != (donors < cut)).sum())
        assert crossing == 0, f"track {track.id}: {crossing} of {len(frames)} frames get a donor from the other shot"
        planned[track.id] = set(frames.tolist())
    before, after = sorted(faces.tracks, key=lambda t: t.start_frame)
    left, right = {f for f in line if f < cut}, {f for f in line if f >= cut}
    assert len(left) > 10 and len(right) > 10
    assert left <= planned[before.id] and right <= planned[after.id]


def test_sync_on_each_side_is_not_worse_than_the_floor(cut_dub):
    """The report's landmark sync score of each shot's face in the output against the dubbed speech,
    beside the floor (the source face of that shot against the same speech), read in sync: the best
    correlation within the offset that passes (ITU-R BT.1359-1, 1 frame). The peak over all +-15
    lags is no measure on a 2 s shot: both find spurious peaks at the edge of the search there."""
    tol = int(Thresholds().sync_offset_frames.pass_at)
    rows = cut_dub["report"]["sync"]["per_track"]
    assert len(rows) == 2 and all(r["floor"] is not None for r in rows)

    def in_sync(score: dict) -> float:
        return max(r for lag, r in zip(score["lags"], score["correlation_by_lag"]) if abs(lag) <= tol)

    for r in rows:
        assert r["n_frames"] >= 40 and r["floor"]["n_frames"] == r["n_frames"]
        assert in_sync(r) > 0.3, (r["track"], in_sync(r))  # the mouth follows the dubbed speech on this side
    # and, over both sides, better than the untouched pictures: on a 2 s shot the in-sync correlation of one
    # side varies by +-0.2 from run to run (the TTS), and the second shot's source mouth can follow the dub
    # speech by chance (floor 0.54-0.67 measured), so the comparison with the floor is made over the two
    dub_mean = float(np.mean([in_sync(r) for r in rows]))
    floor_mean = float(np.mean([in_sync(r["floor"]) for r in rows]))
    assert dub_mean >= floor_mean + 0.1, (dub_mean, floor_mean)
