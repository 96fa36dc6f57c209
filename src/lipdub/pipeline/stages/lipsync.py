"""Stage 11, lipsync (per language): new mouth motion for every on-screen speaker of the dub, through
the shared compositor (:func:`lipdub.lipsync.tracks.lipsync_tracks`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from ... import mixing
from ...audio import read_audio, resample_blocks
from ...contracts.faces import FaceAnalysis
from ...layout import ProjectLayout as L
from ...lipsync.phonemes import dub_phonemes
from ...lipsync.tracks import NOT_PLANNED, TrackRequest, lipsync_tracks, speaker_speech
from ...media.probe import ANALYSIS_RATE_HZ, MIX_RATE_HZ
from ...script import Script
from ..context import PipelineContext
from ..runner import Stage, StageDetails, StageOutput

log = logging.getLogger(__name__)

LIPSYNC_PAD_S = 0.2  # frames re-animated around a line: the mouth settles before and after speech


class LipsyncDetails(StageDetails):
    model_config = {"extra": "allow"}  # the renderer's figures (frames composited, ...)

    tracks: dict[str, dict]
    note: str | None = None
    video: str | None = None
    rotate_tag_deg: int | None = None


def lipsync_options(config) -> dict:
    """Keyword options of the lip-sync backend from ``config`` (None: not given, the backend's default)."""
    return {"checkpoint": config.lipsync_checkpoint, "device": config.lipsync_device, "command": config.lipsync_command}


def track_requests(ctx: PipelineContext, script: Script, analysis: FaceAnalysis,
                   speech: np.ndarray | None = None) -> Iterator[TrackRequest]:
    """One request per face track of a speaker with dubbed lines (a speaker seen in several shots has
    a track in each; each track is planned on its own frames and library): the spans of its lines (source
    and placed time, padded by :data:`LIPSYNC_PAD_S`), its lines placed over the whole video (16 kHz),
    their phoneme timings in video time, the speaker's own source phonemes (the align stage) and, when
    other speakers talk too, the speaker's own source speech (the dialogue stem over their segments).

    Made lazily, a speaker at a time: a speaker's whole-length 16 kHz arrays (its dub, its own speech)
    are let go once its tracks are planned, so one speaker's are held at a time, not every speaker's.
    ``speech``: the source speech at 16 kHz (:meth:`PipelineContext.source_speech_16k`) when the
    caller has it; default: read here when needed."""
    code = ctx.language.code
    n48 = int(round(ctx.info.duration_s * MIX_RATE_HZ))
    uses_phonemes = bool(ctx.lipsync_backend is not None and ctx.lipsync_backend.uses_phonemes)
    source: dict[str, list] = {}
    if uses_phonemes and ctx.layout.abs(L.SOURCE_PHONEMES).exists():  # the align stage's, per speaker
        source = {k: [tuple(p) for p in v] for k, v in ctx.project.read_json(L.SOURCE_PHONEMES).items()}
    several = len({seg.speaker for seg in script.segments}) > 1
    if several and speech is None:
        speech = ctx.source_speech_16k()
    for spk in script.speakers:
        tracks = [t for t in analysis.tracks if t.id in spk.track_ids()]
        if not tracks:
            continue
        placed, spans = [], []
        for seg in script.segments:
            t = seg.targets.get(code)
            if seg.speaker != spk.id or t is None or t.fit is None or not t.fit.audio_path:
                continue
            samples, _ = read_audio(ctx.layout.abs(t.fit.audio_path), mono=True)
            placed.append(mixing.PlacedLine(t.fit.placed_start_s, samples))
            spans.append((min(seg.start_s, t.fit.placed_start_s) - LIPSYNC_PAD_S, max(seg.end_s, t.fit.placed_end_s) + LIPSYNC_PAD_S))
        if not placed:
            continue
        lines48 = mixing.LineTrack(placed, n48, MIX_RATE_HZ)  # placed and resampled a block at a time (no 48 kHz whole-length copy)
        dub = resample_blocks(lines48.read, n48, MIX_RATE_HZ, ANALYSIS_RATE_HZ)
        del lines48, placed
        # phonemes: the TTS's (or, for a backend that uses them, the text aligned to a line without any)
        phonemes = dub_phonemes(ctx.project.root, script, code, spk.id, align=uses_phonemes)
        own = speaker_speech(speech, ANALYSIS_RATE_HZ, [(s.start_s, s.end_s) for s in script.segments if s.speaker == spk.id]) \
            if several else None
        for track in tracks:
            yield TrackRequest(track, spans, dub, phonemes or None, spk.id, source_phonemes=source.get(spk.id) or None, source_audio=own)


class Lipsync(Stage):
    name = "lipsync"
    # 2: source's colour matrix and tags kept, each actor's model fitted on their own speech; 3: visemes; 4: x264 preset/CRF set, decoded planes kept outside the face;
    # 5: lip tone (the donor's lips colour-matched to the target frame's lips); 6: espeak's reduced vowel
    # ᵻ (English, and English names kept in other languages' Kokoro lines) is the viseme ih, not unmapped
    version = 6
    per_language = True
    video = True  # runs beside the mix (and the next language's stages)

    def applies(self, ctx: PipelineContext) -> bool:
        return ctx.config.lipsync != "none" and ctx.info.has_video

    def inputs(self, ctx: PipelineContext) -> list:
        cfg, p = ctx.config, ctx.project
        script = ctx.script()
        mapping = [(s.id, s.track) for s in script.speakers]
        turns = [(s.speaker, s.start_s, s.end_s) for s in script.segments]  # each actor's own source speech
        opts = [{k: str(v) for k, v in lipsync_options(cfg).items() if v is not None}] if cfg.lipsync != "retrieval" else []
        aligned = [p.output_hash("align")] if ctx.lipsync_backend.uses_phonemes else []
        encoder = [cfg.video_preset, cfg.video_crf]
        return [cfg.lipsync, p.output_hash("faces"), p.output_hash(f"synthesize:{ctx.language.code}"), mapping, *opts, turns, *aligned, *encoder]

    def total(self, ctx: PipelineContext) -> int | None:
        return ctx.info.video.frame_count

    def run(self, ctx: PipelineContext) -> StageOutput:
        code, p = ctx.language.code, ctx.project
        analysis = FaceAnalysis.load(ctx.layout.abs(L.FACES_DIR))
        frame_times = np.load(ctx.layout.abs(L.FRAME_TIMES))
        speech = ctx.source_speech_16k()  # once for the stage (the requests' own speech is cut from it)
        requests = track_requests(ctx, ctx.script(), analysis, speech)  # lazy: a speaker's arrays at a time
        run = lipsync_tracks(ctx.lipsync_backend, ctx.source, analysis, frame_times, speech, requests,
                             p.path(L.lipsync_video(code)), sample_rate_hz=ANALYSIS_RATE_HZ, preset=ctx.config.video_preset,
                             crf=ctx.config.video_crf, progress=ctx.progress(self.record_name(ctx)), skip_unusable=True)
        if run.video is None:
            if not analysis.tracks:
                note = "lip-sync skipped: no faces in the video"
            elif not any(t.get("note", "").startswith(NOT_PLANNED) for t in run.tracks.values()):
                note = "lip-sync skipped: no speaking face on screen"
            else:
                note = "lip-sync skipped: no track could be lip-synced (see tracks)"
            log.warning("%s", note)
            details = LipsyncDetails(tracks=run.tracks, note=note)
            p.write_json(L.lipsync_plans(code), details.as_record())
            return StageOutput([L.lipsync_plans(code)], details, ctx.config.lipsync)
        details = LipsyncDetails(tracks=run.tracks, **run.render, video=L.lipsync_video(code), rotate_tag_deg=run.rotate_tag_deg)
        p.write_json(L.lipsync_plans(code), {**details.as_record(), "plans": [
            {"track": pl.track_id, "frames": pl.frames.tolist(),
             "source_frames": pl.source_frames.tolist() if pl.source_frames is not None else None} for pl, _ in run.plans]})
        return StageOutput([L.lipsync_video(code), L.lipsync_plans(code)], details, ctx.config.lipsync)
