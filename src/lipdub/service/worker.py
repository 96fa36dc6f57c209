"""Celery worker (``lipdub worker``): runs jobs sent by the API through Redis.

One worker process runs one job at a time in its main process (Celery's ``solo`` pool), so one
worker per GPU (``CUDA_VISIBLE_DEVICES=i lipdub worker``) and a killed worker takes its job with it;
the job's heartbeat stops and a :class:`lipdub.service.jobs.Reaper` (in every worker and in the API)
requeues it; the next worker resumes it from the project directory. Tasks are acknowledged on
receipt: the job store, not the broker, decides what runs.
"""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from ..errors import ConfigError
from .db import Database
from .jobs import Reaper, execute_job
from .settings import ServiceSettings

log = logging.getLogger(__name__)
_state: dict = {}


def make_celery(settings: ServiceSettings) -> Celery:
    """The Celery app on ``settings.broker_url`` (Redis), with the ``lipdub.run_job`` task.

    Raises:
        ConfigError: no broker URL is configured.
    """
    if not settings.broker_url:
        raise ConfigError("no broker URL for the Celery workers", "set LIPDUB_BROKER_URL=redis://HOST:6379/0")
    app = Celery("lipdub", broker=settings.broker_url)
    app.conf.update(task_default_queue="lipdub", worker_prefetch_multiplier=1, task_acks_late=False,
                    broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
                    task_ignore_result=True)

    @app.task(name="lipdub.run_job")
    def run_job(job_id: str) -> None:
        db = _database(settings)
        execute_job(settings, db, job_id, lambda jid: app.send_task("lipdub.run_job", args=[jid]))

    return app


def _database(settings: ServiceSettings):
    if "db" not in _state:
        _state["db"] = Database(settings.db_url)
    return _state["db"]


def run_worker(settings: ServiceSettings, name: str | None = None, loglevel: str = "INFO") -> None:
    """Start a Celery worker in this process (blocks): solo pool, one job at a time."""
    app = make_celery(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    @worker_ready.connect(weak=False)
    def _start_reaper(**_kw) -> None:
        _state["reaper"] = Reaper(settings, _database(settings), lambda jid: app.send_task("lipdub.run_job", args=[jid])).start()

    @worker_shutdown.connect(weak=False)
    def _stop_reaper(**_kw) -> None:
        if "reaper" in _state:
            _state["reaper"].stop()

    node = name or f"lipdub-{os.getpid()}@%h"
    app.worker_main(["worker", "--pool=solo", "--concurrency=1", f"--loglevel={loglevel}", "-n", node, "-Q", "lipdub",
                     "--without-gossip", "--without-mingle"])
