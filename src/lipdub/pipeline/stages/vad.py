"""Stage 3, vad: the speech regions of the source."""

from __future__ import annotations

from dataclasses import asdict

from ...contracts.vad import VADS
from ...layout import ProjectLayout as L
from ...media.probe import ANALYSIS_RATE_HZ
from ..context import PipelineContext
from ..runner import Stage, StageDetails, StageOutput


class VadDetails(StageDetails):
    regions: int
    speech_s: float


class Vad(Stage):
    name = "vad"
    version = 1

    def inputs(self, ctx: PipelineContext) -> list:
        # the backend name keys the cache only when it is not the default (projects made before the
        # option existed keep their records)
        backend = [ctx.config.vad] if ctx.config.vad != "silero" else []
        return [ctx.project.output_hash("ingest"), *backend]

    def run(self, ctx: PipelineContext) -> StageOutput:
        regions = VADS.create(ctx.config.vad).detect(ctx.analysis_audio(), ANALYSIS_RATE_HZ)
        ctx.project.write_json(L.VAD, [asdict(r) for r in regions])
        details = VadDetails(regions=len(regions), speech_s=round(sum(r.end_s - r.start_s for r in regions), 3))
        return StageOutput([L.VAD], details, ctx.config.vad)
