"""What the API answers about the rows of the job store: jobs, campaigns and sources as response
models, a job's deliverable files, its script, and error text fit for an API client."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import LipdubError
from ..layout import Deliverables
from ..script import Script
from .db import Campaign, Job, Source, StageProgress
from .deps import problem
from .jobs import output_dir, project_dir
from .schemas import CampaignOut, JobOut, SourceOut, StageOut
from .settings import ServiceSettings

_CLI_HINT = re.compile(r"(^|\s)--[a-z]|\blipdub [a-z]")


def api_text(settings: ServiceSettings, text: str) -> str:
    """``text`` without the server's data directory (paths inside it become relative)."""
    return text.replace(f"{settings.data_dir}/", "").replace(str(settings.data_dir), "data directory")


def api_error(settings: ServiceSettings, exc: LipdubError) -> dict[str, str]:
    """A lipdub error as an API client should read it: no server path, no command-line hint."""
    hint = "" if _CLI_HINT.search(exc.hint) else api_text(settings, exc.hint)
    return {"message": api_text(settings, exc.message), "hint": hint}


def source_out(src: Source) -> SourceOut:
    return SourceOut(**{k: getattr(src, k) for k in SourceOut.model_fields})


def deliverables(s: Session, settings: ServiceSettings, job: Job) -> dict[str, Path]:
    """The deliverable files of a language job by download kind (they may not exist yet)."""
    if job.kind != "dub":
        return {}
    src = s.get(Source, job.source_id)
    media = output_dir(settings, job) / f"{Path(src.path).stem}.{job.language}{'.mp4' if src.has_video else '.wav'}"
    target_srt = Deliverables(media, "").subtitles["target_srt"]
    # the source language is the one the dub detected: its subtitles are NAME.<src>.srt
    src_subs = sorted(p for p in media.parent.glob(f"{media.stem}.*.srt") if p != target_srt)
    out = Deliverables(media, src_subs[0].name[len(media.stem) + 1:-len(".srt")] if src_subs else "")
    subs = out.subtitles
    files = {"video": out.media, "subtitles": subs["target_srt"], "subtitles_vtt": subs["target_vtt"],
             **{f"stem_{k}": p for k, p in out.stems.items()}, "report": out.report_json, "report_html": out.report_html}
    if src_subs:
        files["source_subtitles"] = subs["source_srt"]
    return files


def job_error(s: Session, settings: ServiceSettings, job: Job) -> str | None:
    """The job's error without server paths: the source file is named as it was uploaded, the
    project as "the job's project"."""
    if not job.error:
        return None
    src = s.get(Source, job.source_id)
    text = job.error.replace(str(settings.data_dir / src.path), src.filename) if src is not None else job.error
    return api_text(settings, text.replace(str(settings.data_dir / job.project), "the job's project"))


def job_out(s: Session, settings: ServiceSettings, job: Job) -> JobOut:
    rows = s.scalars(select(StageProgress).where(StageProgress.job_id == job.id).order_by(StageProgress.position)).all()
    downloads = {k: f"/jobs/{job.id}/download/{k}" for k, p in deliverables(s, settings, job).items() if p.is_file()}
    return JobOut(id=job.id, kind=job.kind, language=job.language, source_id=job.source_id, campaign_id=job.campaign_id,
                  state=job.state, until=job.until, error=job_error(s, settings, job),
                  options=job.options or {},
                  stages=[StageOut(stage=r.stage, state=r.state, done=r.done, total=r.total, duration_s=r.duration_s, attempt=r.attempt)
                          for r in rows],
                  attempts=job.attempts or [], downloads=downloads, created_at=job.created_at,
                  started_at=job.started_at, finished_at=job.finished_at)


def campaign_out(s: Session, settings: ServiceSettings, c: Campaign) -> CampaignOut:
    """The campaign with its jobs; its state is the most active of theirs (then failed, cancelled, done)."""
    jobs = s.scalars(select(Job).where(Job.campaign_id == c.id).order_by(Job.created_at)).all()
    states = {j.state for j in jobs}
    state = next((st for st in ("running", "queued", "waiting") if st in states), None) or \
        ("failed" if "failed" in states else "cancelled" if "cancelled" in states else "done")
    return CampaignOut(id=c.id, source_id=c.source_id, languages=list(c.languages), state=state,
                       jobs=[job_out(s, settings, j) for j in jobs])


def load_script(settings: ServiceSettings, job: Job) -> Script:
    """The job's ``script.json`` (404 before the script stage ran)."""
    path = project_dir(settings, job) / "script.json"
    if not path.is_file():
        raise problem(404, "this job has no script yet", "wait for the transcription to finish")
    return Script.load(path)
