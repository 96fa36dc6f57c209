"""Shot boundaries on PySceneDetect's own test video against its reference cut list."""

from __future__ import annotations

import json

from lipdub.faces.shots import detect_shots
from lipdub.media.probe import video_frame_times


def test_cuts_match_reference(testdata):
    path = testdata / "sc_pyscenedetect_testvideo.mp4"
    reference = json.loads((testdata / "sc_pyscenedetect_testvideo.ContentDetector.default.json").read_text())
    n = len(video_frame_times(path))
    assert n == 720
    shots = detect_shots(path, n)
    cuts = [s.start_frame for s in shots[1:]]
    assert cuts == reference["cuts"]
    assert shots[0].start_frame == 0 and shots[-1].end_frame == n
    assert all(a.end_frame == b.start_frame for a, b in zip(shots, shots[1:]))


def test_single_shot_talking_head(testdata):
    path = testdata / "th_retalking_face5.mp4"
    n = len(video_frame_times(path))
    shots = detect_shots(path, n)
    assert [(s.start_frame, s.end_frame) for s in shots] == [(0, n)]
