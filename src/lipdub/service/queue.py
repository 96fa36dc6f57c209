"""Job queues: the embedded in-process pool (default) and Celery on Redis (``LIPDUB_BROKER_URL``).

Both only carry job ids; the job store is the truth. :func:`make_queue` picks one from the settings.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from .db import Database, Job
from .jobs import Reaper, execute_job
from .settings import ServiceSettings

log = logging.getLogger(__name__)


class EmbeddedQueue:
    """A thread pool of ``settings.embedded_workers`` inside the API process; nothing to start.

    At start it submits the jobs left ``queued`` by a previous server and runs a :class:`Reaper`, so
    jobs interrupted by a crash are resumed. With 0 workers jobs stay queued until a server with
    workers starts on the same database.
    """

    kind = "embedded"

    def __init__(self, settings: ServiceSettings, db: Database) -> None:
        self.settings, self.db = settings, db
        self.pool = ThreadPoolExecutor(settings.embedded_workers, thread_name_prefix="lipdub-job") if settings.embedded_workers else None
        self.reaper = Reaper(settings, db, self.submit)

    def submit(self, job_id: str) -> None:
        if self.pool is not None:
            self.pool.submit(self._run, job_id)

    def _run(self, job_id: str) -> None:
        try:
            execute_job(self.settings, self.db, job_id, self.submit)
        except Exception:  # pragma: no cover - execute_job records failures itself
            log.exception("job %s", job_id)

    def start(self) -> None:
        if self.pool is None:
            return
        with self.db.session() as s:
            for job_id in s.scalars(select(Job.id).where(Job.state == "queued").order_by(Job.created_at)).all():
                self.submit(job_id)
        self.reaper.start()

    def stop(self) -> None:
        self.reaper.stop()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


class CeleryQueue:
    """Sends job ids to the Celery workers (``lipdub worker``) through ``settings.broker_url``.

    The API process runs a :class:`Reaper` too, so a job whose worker was killed is resubmitted
    even when no other worker's reaper is up.
    """

    kind = "celery"

    def __init__(self, settings: ServiceSettings, db: Database) -> None:
        from .worker import make_celery  # celery is imported only when a broker is configured

        self.settings, self.db = settings, db
        self.celery = make_celery(settings)
        self.reaper = Reaper(settings, db, self.submit)

    def submit(self, job_id: str) -> None:
        self.celery.send_task("lipdub.run_job", args=[job_id])

    def start(self) -> None:
        self.reaper.start()

    def stop(self) -> None:
        self.reaper.stop()


def make_queue(settings: ServiceSettings, db: Database):
    """:class:`CeleryQueue` when ``settings.broker_url`` is set, else :class:`EmbeddedQueue`."""
    return CeleryQueue(settings, db) if settings.broker_url else EmbeddedQueue(settings, db)
