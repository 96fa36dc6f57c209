"""Stage 14, report (per language): the quality report of the rendered dub (:mod:`lipdub.qc.report`),
written to ``report/<lang>/`` and copied beside the output as ``NAME.report.json`` / ``.html``."""

from __future__ import annotations

import shutil

from ...contracts.faces import FaceAnalysis
from ...layout import ProjectLayout as L
from ...qc.report import build_report, write_report
from ..context import PipelineContext
from ..runner import Stage, StageDetails, StageOutput


class ReportDetails(StageDetails):
    verdict: str
    reasons: list[str]
    report: str


class Report(Stage):
    name = "report"
    version = 4  # 3: loudness checked against the named standard; 4: intelligibility group, one effective speed-up
    per_language = True

    def inputs(self, ctx: PipelineContext) -> list:
        code, p = ctx.language.code, ctx.project
        lt = ctx.config.loudness()
        return [p.output_hash(f"render:{code}"), p.output_hash(f"synthesize:{code}"), lt.target_lufs, lt.standard, ctx.config.asr_model]

    def run(self, ctx: PipelineContext) -> StageOutput:
        code, p = ctx.language.code, ctx.project
        render = p.manifest.stages.get(f"render:{code}")
        copied = render is not None and render.details.get("video") == "copied" and ctx.layout.abs(L.FACES_JSON).exists()
        # a copied video stream has the source's frames: its face analysis is the project's
        analysis = FaceAnalysis.load(ctx.layout.abs(L.FACES_DIR)) if copied else None
        lt = ctx.config.loudness()
        whisper = ctx.caches.whisper.get(ctx.config.asr_model)  # the run's, when the synthesize stage loaded it
        rep = build_report(ctx.output, source=ctx.source, project_dir=p.root, language=code, target_lufs=lt.target_lufs,
                           loudness_standard=lt.standard, output_analysis=analysis, whisper=whisper)
        j, h = write_report(rep, p.root / L.report_dir(code))
        out = ctx.deliverables
        for src, dst in ((j, out.report_json), (h, out.report_html)):
            shutil.copyfile(src, dst)
        details = ReportDetails(verdict=rep.verdict, reasons=rep.data["reasons"][:10], report=str(out.report_html))
        return StageOutput([j, h, out.report_json, out.report_html], details, "qc")
