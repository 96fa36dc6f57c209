"""Active speaker: which face track is each diarized speaker (video only); the match lands in script.json."""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np

from ...contracts.diarize import SpeakerTurn
from ...contracts.faces import FaceAnalysis
from ...faces.speakers import match_speakers
from ...layout import ProjectLayout as L
from ...media.probe import ANALYSIS_RATE_HZ
from ...script import Script
from ..context import PipelineContext
from ..runner import Stage, StageDetails, StageOutput

log = logging.getLogger(__name__)


class SpeakersDetails(StageDetails):
    tracks: dict[str, list[int]]
    note: str | None


def apply_speaker_tracks(script: Script, speakers_json: dict) -> None:
    """Set each script speaker's ``track`` (one id, or a list when seen in several shots) /
    ``track_confidence`` from ``faces/speakers.json``."""
    by_id = {m["speaker"]: m for m in speakers_json.get("speakers", [])}
    for spk in script.speakers:
        m = by_id.get(spk.id)
        if m is not None:
            tracks = m.get("tracks") or []
            spk.track, spk.track_confidence = (tracks if len(tracks) > 1 else m["track"]), m["confidence"]


class Speakers(Stage):
    name = "speakers"
    version = 2  # 2: matched by sync in their own turns and mouth activity, not the opening level; a track per shot
    needs_video = True  # reads the faces stage's tracks

    def applies(self, ctx: PipelineContext) -> bool:
        return ctx.info.has_video

    def inputs(self, ctx: PipelineContext) -> list:
        return [ctx.project.output_hash("faces"), ctx.project.output_hash("diarize")]

    def media_s(self, ctx: PipelineContext) -> float | None:
        return None

    def run(self, ctx: PipelineContext) -> StageOutput:
        p = ctx.project
        analysis = FaceAnalysis.load(ctx.layout.abs(L.FACES_DIR))
        turns = [SpeakerTurn(**t) for t in p.read_json(L.DIARIZATION)]
        frame_times = np.load(ctx.layout.abs(L.FRAME_TIMES))
        matches, turn_matches = match_speakers(analysis, turns, ctx.analysis_audio(), ANALYSIS_RATE_HZ, frame_times)
        note = None
        shots = [t.shot for t in analysis.tracks]
        if len(matches) == 1 and matches[0].track is None and analysis.tracks and len(set(shots)) == len(shots) \
                and sum(len(t.frames) for t in analysis.tracks) >= 0.5 * analysis.frame_count:
            # A talking-head video: one voice, one face on screen most of the time (one per shot when
            # it is cut). Its mouth may not follow the soundtrack (a voice-over, a re-dub) yet it is
            # the face to animate; said so.
            ids = [t.id for t in analysis.tracks]
            matches[0].track, matches[0].tracks = ids[0], ids
            note = "one speaker and one face per shot: the face is assigned to the speaker although its mouth does not follow the soundtrack"
            log.warning(note)
        p.write_json(L.SPEAKERS, {"speakers": [asdict(m) for m in matches], "turns": [asdict(t) for t in turn_matches], "note": note})
        script = p.load_script()
        if script is not None:  # the script exists already: carry the new match into it
            apply_speaker_tracks(script, p.read_json(L.SPEAKERS))
            p.save_script(script)
        details = SpeakersDetails(tracks={m.speaker: m.tracks for m in matches}, note=note)
        return StageOutput([L.SPEAKERS], details, "landmark-correlation")
