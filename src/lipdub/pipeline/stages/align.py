"""Phoneme timings of the source speech (DESIGN.md section 3): each speaker's transcript words
aligned to the source's dialogue (espeak-ng G2P + DTW, :func:`lipdub.lipsync.align.try_align_segments`),
so that every library frame of an actor carries a viseme label. Runs only for a lip-sync backend that
uses phonemes; a speaker whose speech cannot be aligned gets none (the backend then falls back to its
acoustic model) and the record says why."""

from __future__ import annotations

import logging

from ...layout import ProjectLayout as L
from ...lipsync.align import try_align_segments
from ...media.probe import ANALYSIS_RATE_HZ
from ..context import PipelineContext
from ..runner import Stage, StageDetails, StageOutput

log = logging.getLogger(__name__)


class AlignDetails(StageDetails):
    speakers: dict[str, dict]


class Align(Stage):
    name = "align"
    # 2: espeak-ng renders every word from one pristine library state (backends/tts/espeak_zygote.py),
    # not from whatever the process synthesized before
    version = 2

    def applies(self, ctx: PipelineContext) -> bool:
        return ctx.info.has_video and ctx.lipsync_backend is not None and ctx.lipsync_backend.uses_phonemes

    def inputs(self, ctx: PipelineContext) -> list:
        script = ctx.script()
        sep = ctx.project.manifest.stages.get("separate")
        return [ctx.project.output_hash("ingest"), sep.output_hash if sep else None, script.source_language,
                [(s.speaker, s.start_s, s.end_s, s.source_text, [(w.start_s, w.end_s, w.text) for w in s.words]) for s in script.segments]]

    def run(self, ctx: PipelineContext) -> StageOutput:
        script = ctx.script()
        speech = ctx.source_speech_16k()
        out, details = {}, {}
        for spk in script.speakers:
            segs = [s for s in script.segments if s.speaker == spk.id]
            alignment, reason = try_align_segments(speech, ANALYSIS_RATE_HZ, segs, script.source_language)
            if alignment is None:
                log.warning("align: %s: %s (the lip-sync uses its acoustic model for this speaker)", spk.id, reason)
                out[spk.id], details[spk.id] = [], {"phonemes": 0, "note": reason}
                continue
            out[spk.id] = [[p.start_s, p.end_s, p.phoneme] for p in alignment.phonemes]
            details[spk.id] = alignment.summary()
        ctx.project.write_json(L.SOURCE_PHONEMES, out)
        return StageOutput([L.SOURCE_PHONEMES], AlignDetails(speakers=details), "espeak-ng+dtw")
