"""``/jobs``: dub a source into one language, list and follow jobs, cancel, retry, re-synthesize, re-render."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ...errors import LipdubError
from ..db import FINISHED, Job, User, new_id, utcnow
from ..deps import QueueDep, SessionDep, SettingsDep, UserDep, own_job, own_source, problem
from ..schemas import ID, JobCreate, JobOptions, JobOut
from ..settings import ServiceSettings
from ..targets import check_targets
from ..views import api_error, job_out

router = APIRouter(tags=["jobs"])
CONFLICT = {404: {"description": "not found"}, 409: {"description": "wrong state"}}


def checked_languages(settings: ServiceSettings, options: JobOptions, codes: list[str]) -> list[str]:
    """The target codes, once each, after :func:`check_targets` (422 naming what is not reachable)."""
    try:
        return check_targets(options.translator, options.source_language, codes)
    except LipdubError as exc:
        raise problem(422, **api_error(settings, exc)) from None


@router.post("/jobs", status_code=201, response_model=JobOut, responses={404: {"description": "no such source"}})
def create_job(body: JobCreate, user: UserDep, settings: SettingsDep, s: SessionDep, queue: QueueDep) -> JobOut:
    """Dub a source into one language (its own project directory); queued at once."""
    own_source(s, body.source_id, user)
    lang = checked_languages(settings, body.options, [body.language])[0]
    jid = new_id()
    job = Job(id=jid, user_id=user.id, source_id=body.source_id, kind="dub", language=lang, project=f"projects/{jid}",
              options=body.options.model_dump(), state="queued")
    s.add(job)
    s.commit()
    queue.submit(jid)
    return job_out(s, settings, job)


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(user: UserDep, settings: SettingsDep, s: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[JobOut]:
    """The caller's jobs, newest first."""
    rows = s.scalars(select(Job).where(Job.user_id == user.id).order_by(Job.created_at.desc()).limit(limit)).all()
    return [job_out(s, settings, j) for j in rows]


@router.get("/jobs/{job_id}", response_model=JobOut, responses={404: {"description": "not found"}})
def get_job(job_id: ID, user: UserDep, settings: SettingsDep, s: SessionDep) -> JobOut:
    """State, per-stage progress (``done``/``total`` work items), attempts and download links."""
    return job_out(s, settings, own_job(s, job_id, user))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, responses={404: {"description": "not found"}, 409: {"description": "already finished"}})
def cancel_job(job_id: ID, user: UserDep, settings: SettingsDep, s: SessionDep) -> JobOut:
    """Cancel a waiting or queued job at once; a running one stops at its next progress event."""
    job = own_job(s, job_id, user)
    if job.state in FINISHED:
        raise problem(409, f"job {job_id} is already {job.state}", "retry it instead")
    if job.state == "running":
        job.cancel_requested = True
    else:
        job.state, job.finished_at = "cancelled", utcnow()
    s.commit()
    s.refresh(job)
    return job_out(s, settings, job)


def _requeue(s: Session, settings: ServiceSettings, queue: Any, job_id: str, user: User, until: str | None,
             allowed: tuple[str, ...]) -> JobOut:
    """Queue the job again (one conditional update: 409 unless it is in one of ``allowed``)."""
    job = own_job(s, job_id, user)
    if until is not None and job.kind != "dub":
        raise problem(409, "only a language job can be re-synthesized or re-rendered", "use the campaign's language jobs")
    values: dict[str, Any] = {"state": "queued", "error": None, "finished_at": None, "cancel_requested": False}
    if until is not None:
        values["until"] = until
    state = job.state
    res = s.execute(update(Job).where(Job.id == job_id, Job.state.in_(allowed)).values(**values))
    if res.rowcount != 1:
        s.rollback()
        raise problem(409, f"job {job_id} is {state}", f"only a job that is {' or '.join(allowed)} can do that")
    if job.kind == "prepare":  # its language jobs wait for it again
        s.execute(update(Job).where(Job.campaign_id == job.campaign_id, Job.kind == "dub",
                                    Job.state.in_(("failed", "cancelled"))).values(state="waiting", error=None))
    s.commit()
    queue.submit(job_id)
    s.refresh(job)
    return job_out(s, settings, job)


@router.post("/jobs/{job_id}/retry", response_model=JobOut, responses=CONFLICT)
def retry_job(job_id: ID, user: UserDep, settings: SettingsDep, s: SessionDep, queue: QueueDep) -> JobOut:
    """Run a failed or cancelled job again: finished stages are reused from its project."""
    return _requeue(s, settings, queue, job_id, user, None, ("failed", "cancelled"))


@router.post("/jobs/{job_id}/resynthesize", response_model=JobOut, responses=CONFLICT)
def resynthesize_job(job_id: ID, user: UserDep, settings: SettingsDep, s: SessionDep, queue: QueueDep) -> JobOut:
    """Re-synthesize the edited lines (only those) and remix; preview them with the line audio."""
    return _requeue(s, settings, queue, job_id, user, "synthesize", FINISHED)


@router.post("/jobs/{job_id}/render", response_model=JobOut, responses=CONFLICT)
def render_job(job_id: ID, user: UserDep, settings: SettingsDep, s: SessionDep, queue: QueueDep) -> JobOut:
    """Run the job to the end again (after edits): only what depends on the edits is redone."""
    return _requeue(s, settings, queue, job_id, user, "render", FINISHED)

