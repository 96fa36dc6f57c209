"""Stage 14, report (per language): the quality report of the rendered dub (:mod:`lipdub.qc.report`),
written to ``report/<lang>/`` and copied beside the output as ``NAME.report.json`` / ``.html``."""

from __future__ import annotations

import json
import shutil

from ...contracts.faces import FaceAnalysis
from ...layout import ProjectLayout as L
from ...media.prefetch import fanned_out
from ...media.probe import video_frame_times
from ...qc.output_faces import changed_frames, output_analysis, remeasured_frames
from ...qc.report import build_report, write_report
from ...qc.visual import VisualRun, iter_selected_frames, ssim_picks
from ..context import PipelineContext
from ..runner import Stage, StageDetails, StageOutput


class ReportDetails(StageDetails):
    verdict: str
    reasons: list[str]
    report: str


def _render_video(ctx: PipelineContext) -> str | None:
    """What the render stage did with the video (its record's ``video`` detail: ``"copied"``,
    ``"lip-synced (H.264)"``, ...); None: no render record."""
    render = ctx.project.manifest.stages.get(f"render:{ctx.language.code}")
    return None if render is None else render.details.get("video")


def _changed(ctx: PipelineContext, source: FaceAnalysis | None, video: str | None) -> dict | None:
    """Track id -> frames the lip-sync changed, when the output is lip-synced (``video``, see
    :func:`_render_video`) and its faces are to be measured again there
    (:mod:`lipdub.qc.output_faces`); else None."""
    if source is None or video != "lip-synced (H.264)":
        return None
    plans = ctx.layout.abs(L.lipsync_plans(ctx.language.code))
    return changed_frames(json.loads(plans.read_text())) if plans.exists() else None


def _output_analysis(ctx: PipelineContext, source: FaceAnalysis | None, video: str | None, changed: dict | None,
                     wanted: dict | None, frames=None) -> FaceAnalysis | None:
    """The output's faces without analysing the whole output: a copied video stream has the source's
    frames (its analysis is the project's); a lip-synced one has them too except where the lip-sync
    composited a mouth (``changed``, :func:`_changed`), and only those frames (``wanted``,
    :func:`lipdub.qc.output_faces.remeasured_frames`) are measured again
    (:mod:`lipdub.qc.output_faces`; ``frames``: the output's frames decoded for it and the SSIM at
    once). None: no face analysis in the project (the report analyses the output itself).
    ``source``: the project's analysis (:func:`_source_analysis`); ``video``: :func:`_render_video`."""
    if video is None or source is None:
        return None
    if video == "copied":
        return source
    if changed is not None:
        return output_analysis(ctx.output, source, changed, video_frame_times(ctx.output), frames=frames, wanted=wanted)
    return None


def _source_analysis(ctx: PipelineContext) -> FaceAnalysis | None:
    """The project's face analysis of the source, loaded once for the whole report (None: none)."""
    return FaceAnalysis.load(ctx.layout.abs(L.FACES_DIR)) if ctx.layout.abs(L.FACES_JSON).exists() else None


def _start_visual(ctx: PipelineContext, source: FaceAnalysis | None, wanted: dict | None) -> tuple["VisualRun | bool", object]:
    """The visual figures (SSIM / PSNR in a thread, VMAF in its own process) started now, beside the
    rest of the report (True: the project has no face analysis; the report measures them itself),
    and the output's frames the output's faces are measured on (``wanted``: frame -> tracks,
    :func:`lipdub.qc.output_faces.remeasured_frames`; None: none measured again, and no frames
    returned). When both the SSIM and the output's faces read the output, it is decoded once for
    both (:func:`lipdub.media.prefetch.fanned_out`), as :class:`lipdub.media.colour.Picture`: the
    SSIM converts its frames whole, the faces only the region around each face. The SSIM frames are picked from the source's
    frame count (the ingest stage's), the source is not demuxed again for it."""
    if not ctx.info.has_video or not ctx.output.exists() or source is None:
        return True, None
    if wanted is None:
        return VisualRun(ctx.source, ctx.output, analysis=source), None
    picks = ssim_picks(ctx.info.video.frame_count)
    ssim_frames, face_frames = fanned_out(iter_selected_frames(ctx.output, picks | set(wanted), pictures=True), [picks, set(wanted)])
    try:
        return VisualRun(ctx.source, ctx.output, analysis=source, dub_frames=ssim_frames), face_frames
    except BaseException:
        ssim_frames.close()
        face_frames.close()
        raise


class Report(Stage):
    name = "report"
    version = 9  # 3: loudness checked against the named standard; 4: own colour matrix per video, output tracks cut at the source shots;
    # 5: a lip-synced output's faces measured on the changed frames only; 6: intelligibility group, one effective speed-up
    # 7: the dub heard by deterministic decoding (lipdub.runtime.WHISPER_TEMPERATURE); 8: SSIM in float32 (within 1e-7 of float64),
    # the output's faces measured on the region around them converted alone (sync confidence within 0.006 on demo1, th2, face5)
    # 9: each segment's placement delay (SegmentTiming.delayed_s) in the timing figures and the segments table;
    # a dub with no lines warned about (dub_lines) instead of its silence judged
    per_language = True

    def inputs(self, ctx: PipelineContext) -> list:
        code, p = ctx.language.code, ctx.project
        lt = ctx.config.loudness()
        return [p.output_hash(f"render:{code}"), p.output_hash(f"synthesize:{code}"), lt.target_lufs, lt.standard, ctx.config.asr_model]

    def run(self, ctx: PipelineContext) -> StageOutput:
        code, p = ctx.language.code, ctx.project
        source = _source_analysis(ctx)
        video = _render_video(ctx)
        changed = _changed(ctx, source, video)
        wanted = remeasured_frames(source, changed) if changed is not None else None
        vmaf, frames = _start_visual(ctx, source, wanted)
        try:
            analysis = _output_analysis(ctx, source, video, changed, wanted, frames)
        except BaseException:
            if isinstance(vmaf, VisualRun):
                vmaf.cancel()
            if frames is not None:
                frames.close()
            raise
        lt = ctx.config.loudness()
        whisper = ctx.caches.whisper.get(ctx.config.asr_model)  # the run's, when the synthesize stage loaded it
        rep = build_report(ctx.output, source=ctx.source, project_dir=p.root, language=code, target_lufs=lt.target_lufs,
                           loudness_standard=lt.standard, output_analysis=analysis, source_analysis=source, vmaf=vmaf,
                           whisper=whisper)
        j, h = write_report(rep, p.root / L.report_dir(code))
        out = ctx.deliverables
        for src, dst in ((j, out.report_json), (h, out.report_html)):
            shutil.copyfile(src, dst)
        details = ReportDetails(verdict=rep.verdict, reasons=rep.data["reasons"][:10], report=str(out.report_html))
        return StageOutput([j, h, out.report_json, out.report_html], details, "qc")
