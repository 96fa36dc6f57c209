"""Stage 9, mix (per language): place the fitted lines over the M&E bed (or the ducked original) at
the target loudness; writes the dialogue, M&E and full-mix stems."""

from __future__ import annotations

from dataclasses import asdict

from ... import mixing
from ...audio import read_audio
from ...layout import STEMS
from ...layout import ProjectLayout as L
from ..context import PipelineContext
from ..runner import Stage, StageDetails, StageOutput


class MixDetails(StageDetails):
    """The mix's loudness (:class:`lipdub.mixing.LoudnessReport`) and the mixer's figures."""

    integrated_lufs: float
    true_peak_dbtp: float
    loudness_range_lu: float | None
    gain_db: float
    limiter_max_reduction_db: float
    dialogue_gain_db: float
    bed: str
    source_dialogue_kept_s: float
    lines: int
    loudness_standard: str | None = None


class Mix(Stage):
    name = "mix"
    version = 2
    per_language = True

    def inputs(self, ctx: PipelineContext) -> list:
        p, lt = ctx.project, ctx.config.loudness()
        # the resolved figures (not the standard's name): the same target gives the same mix
        return [p.output_hash(f"synthesize:{ctx.language.code}"), p.manifest.stages["separate"].output_hash,
                p.output_hash("ingest"), lt.target_lufs, lt.true_peak_dbtp]

    def run(self, ctx: PipelineContext) -> StageOutput:
        code, p = ctx.language.code, ctx.project
        script = ctx.script()
        original = me = dialogue = None
        if p.has_dialogue_stem():  # the M&E and dialogue stems are all the mix needs (not the original)
            me, dialogue = ctx.layout.abs(L.ME_48K), ctx.layout.abs(L.DIALOGUE_48K)
        else:
            original = ctx.layout.abs(L.MIX_48K)
        placed, spans = [], []
        for seg in script.segments:
            t = seg.targets.get(code)
            spans.append((seg.start_s, seg.end_s))
            if t is None or t.fit is None or not t.fit.audio_path:
                continue
            samples, _ = read_audio(ctx.layout.abs(t.fit.audio_path), mono=True)
            placed.append(mixing.PlacedLine(t.fit.placed_start_s, samples))
            spans.append((t.fit.placed_start_s, t.fit.placed_end_s))
        lt = ctx.config.loudness()
        # a block at a time, file to file: no whole-length stem in memory (the chain of mixing.mix)
        outputs = {name: p.path(L.stem(code, name)) for name in STEMS}
        loudness, mix_details = mixing.mix_files(placed, original=original, music_effects=me, source_dialogue=dialogue,
                                                 duck_spans_s=spans, outputs=outputs, target_lufs=lt.target_lufs,
                                                 true_peak_ceiling_dbtp=lt.true_peak_dbtp)
        arts = [L.stem(code, name) for name in STEMS]
        details = MixDetails(**asdict(loudness), **mix_details, lines=len(placed), loudness_standard=lt.standard)
        return StageOutput(arts, details, "pyloudnorm")
