"""Stage 4, diarize: who speaks when (speaker turns) over the VAD's speech regions."""

from __future__ import annotations

from dataclasses import asdict

from ...contracts.diarize import DIARIZERS, SpeakerTurn
from ...contracts.vad import SpeechRegion
from ...layout import ProjectLayout as L
from ...media.probe import ANALYSIS_RATE_HZ
from ..context import PipelineContext
from ..runner import Stage, StageDetails, StageOutput


class DiarizeDetails(StageDetails):
    speakers: int
    turns: int


class Diarize(Stage):
    name = "diarize"
    version = 2  # 2: a cluster's speech measured as the time its windows cover (short turns kept)

    def inputs(self, ctx: PipelineContext) -> list:
        backend = [ctx.config.diarizer] if ctx.config.diarizer != "resemblyzer" else []  # see Vad.inputs
        return [ctx.project.output_hash("ingest"), ctx.project.output_hash("vad"), ctx.config.speakers, *backend]

    def run(self, ctx: PipelineContext) -> StageOutput:
        regions = [SpeechRegion(**r) for r in ctx.project.read_json(L.VAD)]
        turns: list[SpeakerTurn] = []
        if regions:
            diarizer = DIARIZERS.create(ctx.config.diarizer)
            turns = diarizer.diarize(ctx.analysis_audio(), ANALYSIS_RATE_HZ, regions, ctx.config.speakers)
        ctx.project.write_json(L.DIARIZATION, [asdict(t) for t in turns])
        details = DiarizeDetails(speakers=len({t.speaker for t in turns}), turns=len(turns))
        return StageOutput([L.DIARIZATION], details, ctx.config.diarizer)
