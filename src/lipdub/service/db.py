"""The job store: SQLAlchemy models and the few atomic state changes the queue relies on.

SQLite (embedded, WAL journal; the file is created readable by its owner only, 0600) or PostgreSQL
(at scale), chosen by the URL alone. API keys and web sessions are stored as SHA-256 digests only
(:mod:`lipdub.service.keys` manages them). A job's state moves
``queued -> running -> done | failed | cancelled``; a campaign's language jobs wait in ``waiting``
until its ``prepare`` job has run the language-independent stages. Claiming a job and requeueing a
job whose worker died are single conditional ``UPDATE`` statements, so two workers never run one job.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, MetaData, String, Table, Text, create_engine, event, inspect, make_url, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

log = logging.getLogger(__name__)

ACTIVE = ("waiting", "queued", "running")
FINISHED = ("done", "failed", "cancelled")


def utcnow() -> datetime:
    """Timezone-aware current UTC time."""
    return datetime.now(timezone.utc)


def new_id() -> str:
    """A random 32-hex-digit id (uuid4): ids are not guessable and carry no path characters."""
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class ApiKey(Base):
    """An API key: only its SHA-256 digest is stored.

    ``origin`` is ``cli`` (``lipdub keys add``) or ``env`` (seeded from ``LIPDUB_TOKENS``). A revoked key
    has ``revoked_at`` set and ``revoked_by`` ``cli`` (``lipdub keys revoke``: for good) or ``env`` (no
    longer named by ``LIPDUB_TOKENS``: it comes back if the variable names it again).
    """

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    origin: Mapped[str] = mapped_column(String(8), default="cli")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(8), nullable=True)


class WebSession(Base):
    """A signed-in web page: the ``lipdub_session`` cookie's SHA-256 digest, the key it signed in with,
    an absolute expiry and the last request time (for the idle timeout)."""

    __tablename__ = "web_sessions"
    session_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Source(Base):
    """An uploaded media file: ``path`` is relative to the data directory and chosen by the server."""

    __tablename__ = "sources"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[float] = mapped_column(Float)
    has_video: Mapped[bool] = mapped_column(Boolean)
    media: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Campaign(Base):
    """One source dubbed into several languages: a ``prepare`` job then one job per language."""

    __tablename__ = "campaigns"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id"))
    languages: Mapped[list] = mapped_column(JSON)
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    """One pipeline run over one project directory (``project`` is relative to the data directory).

    ``kind`` is ``dub`` (one target language, up to ``until``) or ``prepare`` (a campaign's
    language-independent stages). ``attempts`` lists each run: worker, times, stages ran and reused.
    """

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id"))
    campaign_id: Mapped[str | None] = mapped_column(ForeignKey("campaigns.id"), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(16), default="dub")
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    project: Mapped[str] = mapped_column(String(500))
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    until: Mapped[str] = mapped_column(String(16), default="render")
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class StageProgress(Base):
    """Live progress of one stage of one job (from the pipeline hooks)."""

    __tablename__ = "stage_progress"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="running")  # running | done | reused
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Database:
    """Engine + session factory for ``url``; creates the tables when missing.

    SQLite gets WAL journaling and a 30 s busy timeout, so the API, the in-process pool and several
    worker processes can share one file. The SQLite file is created with mode 0600 (a looser existing
    file is tightened); SQLite gives its ``-wal`` and ``-shm`` files the same mode.
    """

    def __init__(self, url: str) -> None:
        kw: dict[str, Any] = {"pool_pre_ping": True}
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            _private_sqlite_file(url)
            kw["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine = create_engine(url, **kw)
        if self.is_sqlite:
            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn, _rec):  # noqa: ANN001
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()
        _drop_legacy_tokens(self.engine)
        Base.metadata.create_all(self.engine)
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    # -- atomic job transitions -------------------------------------------------------------
    def claim(self, job_id: str, worker: str) -> bool:
        """``queued -> running`` for ``worker``; False when another worker has it or it is no longer queued."""
        with self.session.begin() as s:
            now = utcnow()
            res = s.execute(update(Job).where(Job.id == job_id, Job.state == "queued", Job.cancel_requested.is_(False))
                            .values(state="running", worker=worker, heartbeat_at=now, started_at=now, error=None))
            return res.rowcount == 1

    def heartbeat(self, job_id: str, worker: str) -> bool:
        """Refresh the heartbeat; returns whether cancellation was requested."""
        with self.session.begin() as s:
            s.execute(update(Job).where(Job.id == job_id, Job.worker == worker, Job.state == "running").values(heartbeat_at=utcnow()))
            return bool(s.scalar(select(Job.cancel_requested).where(Job.id == job_id)))

    def stale_jobs(self, stale_after_s: float) -> list[str]:
        """Requeue running jobs whose heartbeat is older than ``stale_after_s`` (their worker died);
        returns the ids this call requeued (a conditional update per job: one caller wins)."""
        cutoff = utcnow() - timedelta(seconds=stale_after_s)
        requeued = []
        with self.session() as s:
            rows = s.execute(select(Job.id, Job.heartbeat_at).where(Job.state == "running")).all()
        for job_id, hb in rows:
            if hb is None or as_utc(hb) >= cutoff:
                continue
            with self.session.begin() as s:
                res = s.execute(update(Job).where(Job.id == job_id, Job.state == "running", Job.heartbeat_at == hb)
                                .values(state="queued", worker=None))
                if res.rowcount == 1:
                    requeued.append(job_id)
        return requeued


def _private_sqlite_file(url: str) -> None:
    """Create the SQLite file of ``url`` with mode 0600 before SQLite does (it would use 0644), or
    tighten an existing one; in-memory databases are left alone."""
    name = make_url(url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            log.warning("job store %s was readable by other users: mode set to 0600", path)
            os.chmod(path, 0o600)


def _drop_legacy_tokens(engine) -> None:  # noqa: ANN001
    """Drop the ``tokens`` table of older versions: their tokens never expired and could not be
    revoked; keys now come from ``LIPDUB_TOKENS`` (re-seeded at start) or ``lipdub keys add``."""
    if inspect(engine).has_table("tokens"):
        log.warning("dropping the old API token table: re-issue keys with `lipdub keys add` or LIPDUB_TOKENS")
        Table("tokens", MetaData(), autoload_with=engine).drop(engine)


def as_utc(t: datetime) -> datetime:
    """``t`` as an aware UTC datetime: SQLite returns naive datetimes (stored as UTC)."""
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)
