"""Stage 10, faces: shots, face tracks with 478 landmarks, head pose and skip flags (video only)."""

from __future__ import annotations

import logging

import numpy as np

from ...faces.analyze import analyze_video
from ...faces.shots import detect_shots, find_jump_cuts, split_shots
from ...layout import ProjectLayout as L
from ...media.probe import video_frame_times
from ..context import PipelineContext
from ..runner import Stage, StageDetails, StageOutput

log = logging.getLogger(__name__)


class FacesDetails(StageDetails):
    shots: int
    tracks: int
    frames: int
    jump_cuts: list[int] = []
    note: str | None = None


class Faces(Stage):
    name = "faces"
    version = 2  # 2: jump cuts found on the faces split the shots
    video = True  # runs beside the audio stages (lipdub.pipeline.branches)

    def applies(self, ctx: PipelineContext) -> bool:
        return ctx.info.has_video

    def inputs(self, ctx: PipelineContext) -> list:
        return [ctx.source_sha256]

    def total(self, ctx: PipelineContext) -> int | None:
        return ctx.info.video.frame_count

    def run(self, ctx: PipelineContext) -> StageOutput:
        src = ctx.source
        frame_times = video_frame_times(src)
        np.save(ctx.project.path(L.FRAME_TIMES), frame_times)
        shots = detect_shots(src, len(frame_times))
        analysis = analyze_video(src, shots, progress=ctx.progress(self.name))
        jumps = find_jump_cuts(analysis, frame_times)
        if jumps:  # a cut the content detector missed: tracks must not cross it (analysed again, rare)
            log.info("%s: jump cuts at frames %s", src.name, jumps)
            analysis = analyze_video(src, split_shots(shots, jumps), progress=ctx.progress(self.name))
        faces_dir = ctx.project.path(f"{L.FACES_DIR}/.keep").parent
        for stale in faces_dir.glob("track_*.npz"):
            stale.unlink()
        paths = analysis.save(faces_dir)
        details = FacesDetails(shots=len(analysis.shots), tracks=len(analysis.tracks), frames=analysis.frame_count, jump_cuts=jumps)
        if not analysis.tracks:
            details.note = "no faces found: lip-sync will be skipped"
            log.warning("%s: no faces found; the dub goes on and lip-sync will be skipped", src.name)
        return StageOutput([*paths, ctx.project.path(L.FRAME_TIMES)], details, "mediapipe")
