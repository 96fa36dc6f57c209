"""Stage 13, render (per language): subtitles laid out for the language (line length, two lines,
reading speed), stems, and the dubbed media beside the output: the ``web`` MP4 (the source's video
stream copied, or the lip-synced one) or the ``broadcast`` master (ProRes 422 HQ MOV, PCM stem tracks,
timecode, TTML)."""

from __future__ import annotations

from dataclasses import asdict
from fractions import Fraction
from pathlib import Path

import soundfile as sf

from ...audio import read_audio
from ...languages import Language
from ...layout import ProjectLayout as L
from ...media import render as media_render
from ...media.broadcast import AudioTrack, render_broadcast, stem_tracks
from ...script import source_cues, target_cues
from ...subtitles import Cue, layout_cues, style_for, write_srt, write_ttml, write_vtt
from ...subtitles.writers import MIN_CUE_S
from ..context import PipelineContext
from ..runner import Stage, StageDetails, StageOutput
from .translate import not_dubbed_segments


class RenderDetails(StageDetails):
    model_config = {"extra": "allow"}  # a broadcast master's figures (codec, frames, timecode, colour, tracks)

    output: str
    video: str | None


def lipsync_video(ctx: PipelineContext) -> Path | None:
    """The lip-synced video stream of this language, or None (``--lipsync none``, no speaking face)."""
    rec = ctx.project.manifest.stages.get(f"lipsync:{ctx.language.code}")
    if ctx.config.lipsync == "none" or not ctx.info.has_video or rec is None or not rec.details.get("video"):
        return None
    return ctx.layout.abs(rec.details["video"])


def within_media(cues: list[Cue], duration_s: float) -> list[Cue]:
    """``cues`` cut at the end of the media (the layout may lengthen the last one past it, which made
    the container longer than its source): cues ending there are cut, cues left shorter than the
    writers' shortest cue (:data:`lipdub.subtitles.writers.MIN_CUE_S`) are dropped."""
    out = []
    for c in cues:
        end = min(c.end_s, duration_s)
        if end - c.start_s >= MIN_CUE_S:
            out.append(c if end == c.end_s else Cue(c.start_s, end, c.text))
    return out


def styled_cues(ctx: PipelineContext) -> tuple[list[Cue], list[Cue]]:
    """Target and source cues laid out for their language (:func:`lipdub.subtitles.layout_cues`),
    within the media (:func:`within_media`); lines that are not dubbed (no speech under them, see
    :mod:`lipdub.pipeline.stages.translate`) have no source cue either."""
    script = ctx.script()
    skipped = set(not_dubbed_segments(ctx))
    fps = ctx.info.video.fps_fraction if ctx.info.has_video else Fraction(25)
    dur = ctx.info.duration_s
    source = [c for c, s in zip(source_cues(script), script.segments) if s.id not in skipped]
    return (within_media(layout_cues(target_cues(script, ctx.language.code), style_for(ctx.language.code), fps), dur),
            within_media(layout_cues(source, style_for(ctx.source_language.code), fps), dur))


class Render(Stage):
    name = "render"
    version = 4  # 2: subtitles laid out per language, display rotation from the source, broadcast masters;
    # 3: BT.709 pixels for untagged SD; 4: subtitles within the media, no subtitle stream without cues, no source cue for lines not dubbed
    per_language = True
    needs_video = True  # muxes the lip-sync stage's video

    def inputs(self, ctx: PipelineContext) -> list:
        code, p, cfg = ctx.language.code, ctx.project, ctx.config
        tgt, src = styled_cues(ctx)
        video = lipsync_video(ctx)
        return [p.output_hash(f"mix:{code}"), p.output_hash("ingest"), str(ctx.output.resolve()),
                p.output_hash(f"lipsync:{code}") if video else None,
                [asdict(c) for c in tgt], [asdict(c) for c in src], cfg.keep_original_audio, cfg.deliver, cfg.timecode]

    def run(self, ctx: PipelineContext) -> StageOutput:
        lang, src_lang = ctx.language, ctx.source_language
        out = ctx.deliverables
        subs, stems = out.subtitles, out.stems
        tgt, src = styled_cues(ctx)
        for cues, key, language in ((tgt, "target", lang), (src, "source", src_lang)):
            write_srt(cues, subs[f"{key}_srt"])
            write_vtt(cues, subs[f"{key}_vtt"])
            if f"{key}_ttml" in subs:
                write_ttml(cues, subs[f"{key}_ttml"], language=language.code)
        for name, path in stems.items():
            data, sr = read_audio(ctx.layout.abs(L.stem(lang.code, name)))
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), data, sr, subtype="PCM_24")
        video = lipsync_video(ctx)
        details: dict = {}
        if not ctx.info.has_video:
            data, sr = read_audio(ctx.layout.abs(L.stem(lang.code, "mix")))
            media_render.render_audio(mix=data, sample_rate_hz=sr, output=ctx.output, language=lang)
        elif ctx.config.deliver == "broadcast":
            details = self._broadcast(ctx, video, stems, lang, src_lang)
        else:
            tracks = [track for track, cues in ((media_render.SubtitleTrack(subs["target_srt"], lang, f"{lang.name}"), tgt),
                                                 (media_render.SubtitleTrack(subs["source_srt"], src_lang, f"{src_lang.name} (original)"), src))
                      if cues]  # an empty SRT is invalid data to the muxer (a 1-frame clip, pure silence)
            media_render.render_video(source=ctx.source, mix_wav=ctx.layout.abs(L.stem(lang.code, "mix")), output=ctx.output,
                                      language=lang, source_language=src_lang, subtitles=tracks,
                                      keep_original_audio=ctx.config.keep_original_audio, video_override=video,
                                      video_codec="h264" if video else ctx.info.video.codec)
        kind = None
        if ctx.info.has_video:
            kind = ("lip-synced" if video else "source") + " (ProRes 422 HQ)" if ctx.config.deliver == "broadcast" \
                else ("lip-synced (H.264)" if video else "copied")
        arts = [ctx.output, *subs.values(), *stems.values()]
        return StageOutput(arts, RenderDetails(output=str(ctx.output), video=kind, **details), "ffmpeg")

    @staticmethod
    def _broadcast(ctx: PipelineContext, video: Path | None, stems: dict[str, Path], lang: Language, src_lang: Language) -> dict:
        """Write the broadcast master: the dub mix, M&E and dialogue as labelled PCM tracks (and the
        original soundtrack with ``--keep-original-audio``)."""
        tracks = stem_tracks(stems, lang)
        if ctx.config.keep_original_audio:
            tracks.append(AudioTrack(ctx.layout.abs(L.MIX_48K), f"{src_lang.name} (original)", src_lang.alpha3))
        res = render_broadcast(source=ctx.source, output=ctx.output, audio=tracks, picture=video, timecode=ctx.config.timecode)
        return {k: v for k, v in res.details.items() if k != "video"}
