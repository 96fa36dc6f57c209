"""Stage 1, ingest: check that the source's video decodes, decode its audio (48 kHz mix, 16 kHz mono
analysis) and store its probe."""

from __future__ import annotations

from ...audio import write_audio
from ...layout import ProjectLayout as L
from ...media.probe import ANALYSIS_RATE_HZ, MIX_RATE_HZ, check_video_decodes, decode_audio
from ..context import PipelineContext
from ..runner import Stage, StageDetails, StageOutput


class IngestDetails(StageDetails):
    video: bool
    audio_layout: str | None


class Ingest(Stage):
    name = "ingest"
    version = 1

    def inputs(self, ctx: PipelineContext) -> list:
        return [ctx.source_sha256]

    def run(self, ctx: PipelineContext) -> StageOutput:
        if ctx.info.has_video:  # a damaged video stream: one clear error now, not in the faces stage
            check_video_decodes(ctx.source)
        mix, analysis = decode_audio(ctx.source, ctx.info)
        p = ctx.project
        write_audio(p.path(L.MIX_48K), mix, MIX_RATE_HZ)
        write_audio(p.path(L.ANALYSIS_16K), analysis, ANALYSIS_RATE_HZ)
        p.write_json(L.MEDIA, ctx.info)
        return StageOutput([L.MIX_48K, L.ANALYSIS_16K, L.MEDIA],
                           IngestDetails(video=ctx.info.video is not None, audio_layout=ctx.info.audio.layout), "pyav")
