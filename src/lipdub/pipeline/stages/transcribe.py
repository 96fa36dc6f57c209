"""Stage 5, transcribe: the source text with word timestamps (ASR, or an imported SRT/VTT)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ...backends.transcribe.subtitles import fit_to_media, import_subtitles
from ...contracts.transcribe import TRANSCRIBERS, Transcript
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
    notes: list[str] | None = None  # imported cues dropped, cut at the end of the media or split


def imported_transcript(ctx: PipelineContext) -> tuple[Transcript, list[str]]:
    """The ``--transcript`` file read and fitted to the media (:func:`fit_to_media`): cues past its
    end dropped or cut, over-long lines split; with the notes of what changed.

    Raises:
        InputError / ConfigError: see :func:`import_subtitles` and :func:`fit_to_media`.
    """
    cfg = ctx.config
    transcript = import_subtitles(cfg.transcript, cfg.source_language)
    return fit_to_media(transcript, ctx.info.duration_s, f"transcript {Path(cfg.transcript).name}")


class Transcribe(Stage):
    name = "transcribe"
    # 2: deterministic decoding (temperature 0, looping segments dropped: lipdub.runtime.WHISPER_TEMPERATURE);
    # 3: a detected language whose transcript is a repetition loop gives way to the next most probable (language_note)
    version = 3

    def inputs(self, ctx: PipelineContext) -> list:
        cfg = ctx.config
        if cfg.transcript is not None:
            # the media duration keys the cache only when it changes the cues (projects whose cues
            # all fit keep their records)
            _, notes = imported_transcript(ctx)
            fitted = [round(ctx.info.duration_s, 3)] if notes else []
            return ["import", sha256_file(cfg.transcript), cfg.source_language, *fitted]
        backend = [cfg.transcriber] if cfg.transcriber != "faster-whisper" else []  # see Vad.inputs
        return [ctx.project.output_hash("ingest"), cfg.asr_model, cfg.source_language, *backend]

    def run(self, ctx: PipelineContext) -> StageOutput:
        cfg = ctx.config
        notes: list[str] = []
        if cfg.transcript is not None:
            transcript, notes = imported_transcript(ctx)
            backend = "import"
        else:
            asr = TRANSCRIBERS.create(cfg.transcriber, model=cfg.asr_model)
            transcript = asr.transcribe(ctx.analysis_audio(), ANALYSIS_RATE_HZ, language=cfg.source_language)
            backend = cfg.transcriber
        ctx.project.write_json(L.TRANSCRIPT, asdict(transcript))
        details = TranscribeDetails(language=transcript.language, language_probability=transcript.language_probability,
                                    segments=len(transcript.segments), model=transcript.model)
        if transcript.language_note:
            notes = [transcript.language_note, *notes]
        if notes:
            details.notes = notes[:20] + ([f"... and {len(notes) - 20} more"] if len(notes) > 20 else [])
        return StageOutput([L.TRANSCRIPT], details, backend)
