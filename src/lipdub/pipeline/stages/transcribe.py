"""Stage 5, transcribe: the source text with word timestamps (ASR, or an imported SRT/VTT)."""

from __future__ import annotations

from dataclasses import asdict

from ...backends.transcribe.subtitles import import_subtitles
from ...contracts.transcribe import TRANSCRIBERS
from ...layout import ProjectLayout as L
from ...media.probe import ANALYSIS_RATE_HZ
from ...project import sha256_file
from ..context import PipelineContext
from ..runner import Stage, StageDetails, StageOutput


class TranscribeDetails(StageDetails):
    language: str
    language_probability: float | None
    segments: int
    model: str | None


class Transcribe(Stage):
    name = "transcribe"
    version = 1

    def inputs(self, ctx: PipelineContext) -> list:
        cfg = ctx.config
        if cfg.transcript is not None:
            return ["import", sha256_file(cfg.transcript), cfg.source_language]
        backend = [cfg.transcriber] if cfg.transcriber != "faster-whisper" else []  # see Vad.inputs
        return [ctx.project.output_hash("ingest"), cfg.asr_model, cfg.source_language, *backend]

    def run(self, ctx: PipelineContext) -> StageOutput:
        cfg = ctx.config
        if cfg.transcript is not None:
            transcript = import_subtitles(cfg.transcript, cfg.source_language)
            backend = "import"
        else:
            asr = TRANSCRIBERS.create(cfg.transcriber, model=cfg.asr_model)
            transcript = asr.transcribe(ctx.analysis_audio(), ANALYSIS_RATE_HZ, language=cfg.source_language)
            backend = cfg.transcriber
        ctx.project.write_json(L.TRANSCRIPT, asdict(transcript))
        details = TranscribeDetails(language=transcript.language, language_probability=transcript.language_probability,
                                    segments=len(transcript.segments), model=transcript.model)
        return StageOutput([L.TRANSCRIPT], details, backend)
