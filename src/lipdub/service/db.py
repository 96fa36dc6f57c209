"""The job store: SQLAlchemy models and the few atomic state changes the queue relies on.

SQLite (embedded, WAL journal) or PostgreSQL (at scale), chosen by the URL alone. A job's state moves
``queued -> running -> done | failed | cancelled``; a campaign's language jobs wait in ``waiting``
until its ``prepare`` job has run the language-independent stages. Claiming a job and requeueing a
job whose worker died are single conditional ``UPDATE`` statements, so two workers never run one job.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, create_engine, event, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

ACTIVE = ("waiting", "queued", "running")
FINISHED = ("done", "failed", "cancelled")


def utcnow() -> datetime:
    """Timezone-aware current UTC time."""
    return datetime.now(timezone.utc)


def new_id() -> str:
    """A random 32-hex-digit id (uuid4): ids are not guessable and carry no path characters."""
    return uuid.uuid4().hex


def hash_token(token: str) -> str:
    """Hex SHA-256 of an API token (the database stores only this)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class Token(Base):
    __tablename__ = "tokens"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))


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
    worker processes can share one file.
    """

    def __init__(self, url: str) -> None:
        kw: dict[str, Any] = {"pool_pre_ping": True}
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            kw["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine = create_engine(url, **kw)
        if self.is_sqlite:
            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn, _rec):  # noqa: ANN001
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()
        Base.metadata.create_all(self.engine)
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    def ensure_tokens(self, token_map: dict[str, str]) -> None:
        """Create the users and (hashed) tokens of ``{token: user}``; existing ones are kept."""
        with self.session.begin() as s:
            for token, name in token_map.items():
                user = s.scalar(select(User).where(User.name == name))
                if user is None:
                    user = User(name=name)
                    s.add(user)
                    s.flush()
                if s.get(Token, hash_token(token)) is None:
                    s.add(Token(token_sha256=hash_token(token), user_id=user.id))

    def user_for_token(self, token: str) -> User | None:
        """The user owning ``token`` (compared by SHA-256), or None."""
        with self.session() as s:
            tok = s.get(Token, hash_token(token))
            return s.get(User, tok.user_id) if tok else None

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
            if hb is None or _aware(hb) >= cutoff:
                continue
            with self.session.begin() as s:
                res = s.execute(update(Job).where(Job.id == job_id, Job.state == "running", Job.heartbeat_at == hb)
                                .values(state="queued", worker=None))
                if res.rowcount == 1:
                    requeued.append(job_id)
        return requeued


def _aware(t: datetime) -> datetime:
    """SQLite returns naive datetimes (stored as UTC)."""
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)
