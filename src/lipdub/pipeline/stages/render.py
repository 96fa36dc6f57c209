"""Stage 13, render (per language): subtitles, stems and the dubbed media (the source's video stream
copied, or the lip-synced one), beside the output."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import soundfile as sf

from ...audio import read_audio
from ...layout import ProjectLayout as L
from ...media import render as media_render
from ...script import source_cues, target_cues
from ...subtitles import write_srt, write_vtt
from ..context import PipelineContext
from ..runner import Stage, StageDetails, StageOutput


class RenderDetails(StageDetails):
    output: str
    video: str | None


def lipsync_video(ctx: PipelineContext) -> tuple[Path | None, int]:
    """The lip-synced video stream of this language and its rotation tag, or ``(None, 0)``."""
    rec = ctx.project.manifest.stages.get(f"lipsync:{ctx.language.code}")
    if ctx.config.lipsync == "none" or not ctx.info.has_video or rec is None or not rec.details.get("video"):
        return None, 0
    return ctx.layout.abs(rec.details["video"]), int(rec.details.get("rotate_tag_deg", 0))


class Render(Stage):
    name = "render"
    version = 1
    per_language = True

    def inputs(self, ctx: PipelineContext) -> list:
        code, p = ctx.language.code, ctx.project
        script = ctx.script()
        video, _ = lipsync_video(ctx)
        return [p.output_hash(f"mix:{code}"), p.output_hash("ingest"), str(ctx.output.resolve()),
                p.output_hash(f"lipsync:{code}") if video else None,
                [asdict(c) for c in target_cues(script, code)], [asdict(c) for c in source_cues(script)], ctx.config.keep_original_audio]

    def run(self, ctx: PipelineContext) -> StageOutput:
        code, lang, src_lang = ctx.language.code, ctx.language, ctx.source_language
        script = ctx.script()
        out = ctx.deliverables
        subs, stems = out.subtitles, out.stems
        tgt, src = target_cues(script, code), source_cues(script)
        write_srt(tgt, subs["target_srt"])
        write_vtt(tgt, subs["target_vtt"])
        write_srt(src, subs["source_srt"])
        write_vtt(src, subs["source_vtt"])
        for name, path in stems.items():
            data, sr = read_audio(ctx.layout.abs(L.stem(code, name)))
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), data, sr, subtype="PCM_24")
        mix_wav = ctx.layout.abs(L.stem(code, "mix"))
        video, rotation = lipsync_video(ctx)
        if ctx.info.has_video:
            tracks = [media_render.SubtitleTrack(subs["target_srt"], lang, f"{lang.name}"),
                      media_render.SubtitleTrack(subs["source_srt"], src_lang, f"{src_lang.name} (original)")]
            media_render.render_video(source=ctx.source, mix_wav=mix_wav, output=ctx.output, language=lang,
                                      source_language=src_lang, subtitles=tracks, keep_original_audio=ctx.config.keep_original_audio,
                                      video_override=video, video_codec="h264" if video else ctx.info.video.codec,
                                      rotation_deg=rotation)
        else:
            data, sr = read_audio(mix_wav)
            media_render.render_audio(mix=data, sample_rate_hz=sr, output=ctx.output, language=lang)
        arts = [ctx.output, *subs.values(), *stems.values()]
        kind = ("lip-synced (H.264)" if video else "copied") if ctx.info.has_video else None
        return StageOutput(arts, RenderDetails(output=str(ctx.output), video=kind), "ffmpeg")
