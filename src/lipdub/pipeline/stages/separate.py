"""Stage 2, separate: the dialogue stem and the music-and-effects (M&E) stem of the source mix."""

from __future__ import annotations

from ...audio import read_audio, write_audio
from ...contracts.separate import SEPARATORS
from ...layout import ProjectLayout as L
from ..context import PipelineContext
from ..runner import Stage, StageDetails, StageOutput


class SeparateDetails(StageDetails):
    delay_samples: int | None


class Separate(Stage):
    name = "separate"
    version = 1

    def inputs(self, ctx: PipelineContext) -> list:
        return [ctx.project.output_hash("ingest"), ctx.config.separation]

    def run(self, ctx: PipelineContext) -> StageOutput:
        name = ctx.config.separation
        p = ctx.project
        mix, sr = read_audio(ctx.layout.abs(L.MIX_48K))
        res = SEPARATORS.create(name).separate(mix, sr)
        if res.dialogue is not None and res.music_effects is not None:
            write_audio(p.path(L.DIALOGUE_48K), res.dialogue, sr)
            write_audio(p.path(L.ME_48K), res.music_effects, sr)
            arts = [L.DIALOGUE_48K, L.ME_48K]
        else:
            for stale in (L.DIALOGUE_48K, L.ME_48K):
                ctx.layout.abs(stale).unlink(missing_ok=True)
            p.write_json(L.SEPARATION_NONE, {"separation": "none"})
            arts = [L.SEPARATION_NONE]
        return StageOutput(arts, SeparateDetails(delay_samples=res.delay_samples), name)
