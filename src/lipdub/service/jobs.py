"""Running one job: the bridge between the job store and :class:`lipdub.pipeline.Dubber`.

Both queues (the in-process pool and the Celery workers) call :func:`execute_job`. It claims the job
(a conditional update: one worker wins), runs the pipeline over the job's project directory with
hooks that write per-stage progress to the database, keeps a heartbeat so that a job whose worker
dies is requeued by :class:`Reaper`, and resumes from the project directory on the next attempt
(the pipeline's manifest skips every stage that had finished).

A campaign's ``prepare`` job runs the language-independent stages once (and the translations, up to
``translate``), then
copies its project into one project per language (so that the language jobs run in parallel, each
holding its own project lock and writing its own manifest and script) and queues those jobs.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Callable

from sqlalchemy import select, update

from ..config import DubConfig
from ..errors import LipdubError
from ..pipeline import Dubber, PipelineHooks
from .db import Campaign, Database, Job, Source, StageProgress, utcnow
from .schemas import JobOptions
from .settings import ServiceSettings

log = logging.getLogger(__name__)

#: ``DubConfig`` fields a client may set (``JobOptions`` in the API); nothing else reaches the config.
OPTION_FIELDS = tuple(JobOptions.model_fields)


#: A campaign's prepare job runs every language-independent stage (voice profiles included) and the
#: translation of every language (text only, cheap; it checks each language pair before the fan-out).
PREPARE_UNTIL = "translate"


class JobCancelled(Exception):
    """Raised from a pipeline hook when the job's cancellation was requested."""


def worker_name() -> str:
    """``host:pid`` of this process (with the thread for the in-process pool)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


def project_dir(settings: ServiceSettings, job: Job) -> Path:
    """A job's project directory (``DATA_DIR/projects/...``; the relative path is chosen by the server)."""
    return settings.data_dir / job.project


def output_dir(settings: ServiceSettings, job: Job) -> Path:
    """Where a job's deliverables are rendered: ``PROJECT/out``."""
    return project_dir(settings, job) / "out"


def dub_config(settings: ServiceSettings, job: Job, source: Source, languages: list[str]) -> DubConfig:
    """The :class:`lipdub.config.DubConfig` of ``job``: paths from the server, options from the client."""
    opts = {k: v for k, v in (job.options or {}).items() if k in OPTION_FIELDS and v is not None}
    return DubConfig(input=settings.data_dir / source.path, targets=languages, output=output_dir(settings, job),
                     project_dir=project_dir(settings, job), **opts)


class ServiceHooks(PipelineHooks):
    """Pipeline hooks writing per-stage progress rows; raise :class:`JobCancelled` when asked to stop.

    Progress rows are written at most every ``min_interval_s`` per stage (and always at the end).
    """

    def __init__(self, db: Database, job_id: str, attempt: int, cancelled: threading.Event, min_interval_s: float = 0.5) -> None:
        self.db, self.job_id, self.attempt, self.cancelled = db, job_id, attempt, cancelled
        self.min_interval_s = min_interval_s
        self._last: dict[str, float] = {}
        self.ran: list[str] = []
        self.skipped: list[str] = []

    def _check(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled()

    def _upsert(self, stage: str, finished: bool = False, **values) -> None:
        with self.db.session.begin() as s:
            row = s.get(StageProgress, (self.job_id, stage))
            if row is None:
                n = len(s.scalars(select(StageProgress.stage).where(StageProgress.job_id == self.job_id)).all())
                row = StageProgress(job_id=self.job_id, stage=stage, position=n)
                s.add(row)
            for k, v in values.items():
                setattr(row, k, v)
            if finished:  # all work items done; a reused stage keeps the total it had when it ran here
                row.total = row.total or 1
                row.done = row.total
            row.attempt = self.attempt
            row.updated_at = utcnow()

    def stage_started(self, stage: str, total: int | None = None) -> None:
        self._check()
        self._upsert(stage, state="running", done=0, total=total, duration_s=None)

    def stage_progress(self, stage: str, done: int, total: int) -> None:
        self._check()
        now = time.monotonic()
        if done < total and now - self._last.get(stage, 0.0) < self.min_interval_s:
            return
        self._last[stage] = now
        self._upsert(stage, done=done, total=total)

    def stage_finished(self, stage: str, record, skipped: bool) -> None:
        (self.skipped if skipped else self.ran).append(stage)
        self._upsert(stage, finished=True, state="reused" if skipped else "done", duration_s=record.duration_s)
        _update_attempt(self.db, self.job_id, self.attempt, ran=list(self.ran), skipped=list(self.skipped))
        self._check()


def _update_attempt(db: Database, job_id: str, attempt: int, **values) -> None:
    with db.session.begin() as s:
        job = s.get(Job, job_id)
        attempts = [dict(a) for a in job.attempts or []]
        if 0 < attempt <= len(attempts):
            attempts[attempt - 1].update(values)
            job.attempts = attempts


def _finish(db: Database, job_id: str, worker: str, state: str, error: str | None = None) -> bool:
    """Record the outcome, if the job still belongs to ``worker``; False when it was requeued
    meanwhile (its heartbeat went stale) and another worker owns it now."""
    with db.session.begin() as s:
        job = s.get(Job, job_id)
        if job.worker != worker or job.state != "running":
            log.warning("job %s: finished here (%s) but it was requeued meanwhile; its new run decides", job_id, state)
            return False
        job.state, job.error, job.finished_at, job.worker = state, error, utcnow(), None
        if state == "cancelled":
            job.cancel_requested = False
        return True


def execute_job(settings: ServiceSettings, db: Database, job_id: str, submit: Callable[[str], None], worker: str | None = None) -> str | None:
    """Run job ``job_id`` if it is still queued; returns its final state (None: not claimed).

    Args:
        settings: the service settings (data directory, heartbeat period).
        db: the job store.
        job_id: the job to run.
        submit: queues a job id (used by a campaign's prepare job to queue the language jobs).
        worker: name recorded on the job (default :func:`worker_name`).

    Never raises for a pipeline failure: the job ends ``failed`` with the error's one-line message.
    """
    worker = worker or worker_name()
    if not db.claim(job_id, worker):
        log.info("job %s not claimed (no longer queued)", job_id)
        return None
    with db.session.begin() as s:
        job = s.get(Job, job_id)
        source = s.get(Source, job.source_id)
        attempts = [dict(a) for a in job.attempts or []]
        attempts.append({"attempt": len(attempts) + 1, "worker": worker, "started_at": utcnow().isoformat(),
                         "finished_at": None, "outcome": None, "until": job.until, "ran": [], "skipped": []})
        job.attempts = attempts
        attempt = len(attempts)
        if job.kind == "prepare":
            languages = list(s.get(Campaign, job.campaign_id).languages)
        else:
            languages = [job.language]
    cancelled = threading.Event()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(settings.heartbeat_s):
            try:
                if db.heartbeat(job_id, worker):
                    cancelled.set()
            except Exception:  # pragma: no cover - a database hiccup must not kill the job
                log.exception("heartbeat of job %s failed", job_id)

    hb = threading.Thread(target=beat, name=f"heartbeat-{job_id[:8]}", daemon=True)
    hb.start()
    state, error = "done", None
    try:
        hooks = ServiceHooks(db, job_id, attempt, cancelled)
        cfg = dub_config(settings, job, source, languages)
        Dubber(cfg, hooks).run(until=PREPARE_UNTIL if job.kind == "prepare" else job.until)
        if job.kind == "prepare":
            _fan_out(settings, db, job, worker, submit)
    except JobCancelled:
        state = "cancelled"
    except LipdubError as exc:
        state, error = "failed", str(exc)
    except Exception as exc:  # a bug: the job fails with the exception named, the traceback goes to the log
        log.exception("job %s crashed", job_id)
        state, error = "failed", f"internal error: {type(exc).__name__}: {exc}"
    finally:
        stop.set()
        hb.join()
    _update_attempt(db, job_id, attempt, finished_at=utcnow().isoformat(), outcome=state)
    if _finish(db, job_id, worker, state, error) and job.kind == "prepare" and state != "done":
        _fail_waiting(db, job.campaign_id, state, error)
    log.info("job %s %s", job_id, state)
    return state


def _fan_out(settings: ServiceSettings, db: Database, prepare: Job, worker: str, submit: Callable[[str], None]) -> None:
    """Copy the prepared project into each waiting language job's project and queue those jobs
    (unless the prepare job was requeued meanwhile: then its new run fans out)."""
    src = project_dir(settings, prepare)
    with db.session() as s:
        if s.scalar(select(Job.worker).where(Job.id == prepare.id)) != worker:
            return
        jobs = s.scalars(select(Job).where(Job.campaign_id == prepare.campaign_id, Job.kind == "dub", Job.state == "waiting")).all()
    for job in jobs:
        dst = project_dir(settings, job)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock", "out", ".*.tmp"), dirs_exist_ok=True)
        with db.session.begin() as s:
            res = s.execute(update(Job).where(Job.id == job.id, Job.state == "waiting").values(state="queued"))
        if res.rowcount == 1:
            submit(job.id)


def _fail_waiting(db: Database, campaign_id: str, state: str, error: str | None) -> None:
    with db.session.begin() as s:
        for job in s.scalars(select(Job).where(Job.campaign_id == campaign_id, Job.state == "waiting")).all():
            job.state = "cancelled" if state == "cancelled" else "failed"
            job.error = None if state == "cancelled" else f"the campaign's shared stages failed: {error}"
            job.finished_at = utcnow()


class Reaper:
    """Background thread requeueing running jobs whose worker stopped sending heartbeats.

    Runs in the API server and in every worker; each requeue is a conditional update, so a dead
    worker's job is resubmitted exactly once.
    """

    def __init__(self, settings: ServiceSettings, db: Database, submit: Callable[[str], None]) -> None:
        self.settings, self.db, self.submit = settings, db, submit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lipdub-reaper", daemon=True)

    def start(self) -> "Reaper":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        period = max(0.5, min(self.settings.stale_after_s / 4, 10.0))
        while not self._stop.wait(period):
            try:
                for job_id in self.db.stale_jobs(self.settings.stale_after_s):
                    log.warning("job %s: its worker stopped responding; requeued", job_id)
                    self.submit(job_id)
            except Exception:  # pragma: no cover
                log.exception("reaper pass failed")
