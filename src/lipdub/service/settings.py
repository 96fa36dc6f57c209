"""Service settings, read from ``LIPDUB_*`` environment variables (pydantic-settings).

| variable | default | meaning |
|---|---|---|
| ``LIPDUB_DATA_DIR`` | ``./lipdub-data`` | every upload, project and output lives under it |
| ``LIPDUB_DATABASE_URL`` | ``sqlite:///DATA_DIR/lipdub.db`` | SQLAlchemy URL of the job store (PostgreSQL at scale) |
| ``LIPDUB_BROKER_URL`` | unset | Redis URL: jobs go to Celery workers (``lipdub worker``); unset: in-process pool |
| ``LIPDUB_TOKENS`` | unset | ``user=key,user2=key2``: API keys seeded at start (stored hashed); the keys it no longer names are revoked |
| ``LIPDUB_MAX_UPLOAD_BYTES`` | 2 GiB | larger uploads are refused with 413 |
| ``LIPDUB_EMBEDDED_WORKERS`` | 1 | jobs run at once by the in-process pool; 0 = this server runs none |
| ``LIPDUB_HEARTBEAT_S`` | 5 | how often a running job proves its worker is alive |
| ``LIPDUB_STALE_AFTER_S`` | 60 | a running job silent this long is requeued (its worker died) |
| ``LIPDUB_SESSION_TTL_S`` | 28800 (8 h) | a web page session ends this long after sign-in |
| ``LIPDUB_SESSION_IDLE_S`` | 3600 (1 h) | ... or this long after its last request |
| ``LIPDUB_HTTPS`` | false | the service is reached over HTTPS (directly or behind a TLS proxy): ``Secure`` cookies, HSTS |
| ``LIPDUB_ALLOWED_ORIGINS`` | unset | ``https://studio.example.com,...``: origins the web page is served from (default: the request's own host) |
| ``LIPDUB_LOGIN_RATE_LIMIT`` | ``10/minute`` | sign-in attempts per client address (``limits`` notation: ``N/second|minute|hour``) |
"""

from __future__ import annotations

from pathlib import Path

import limits
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import make_url

from ..errors import ConfigError


class ServiceSettings(BaseSettings):
    """Configuration of the API server and the workers (one object, shared by both).

    Raises:
        ConfigError: a malformed ``tokens``, ``allowed_origins`` or ``login_rate_limit`` string.
    """

    model_config = SettingsConfigDict(env_prefix="LIPDUB_", extra="ignore")

    data_dir: Path = Path("lipdub-data")
    database_url: str | None = None
    broker_url: str | None = None
    tokens: str | None = None
    max_upload_bytes: int = Field(default=2 << 30, gt=0)
    embedded_workers: int = Field(default=1, ge=0, le=64)
    heartbeat_s: float = Field(default=5.0, gt=0)
    stale_after_s: float = Field(default=60.0, gt=0)
    session_ttl_s: float = Field(default=8 * 3600.0, gt=0, le=30 * 86400)
    session_idle_s: float = Field(default=3600.0, gt=0)
    https: bool = False
    allowed_origins: str | None = None
    login_rate_limit: str = "10/minute"

    @field_validator("data_dir")
    @classmethod
    def _abs(cls, v: Path) -> Path:
        return Path(v).expanduser().resolve()

    @field_validator("login_rate_limit")
    @classmethod
    def _rate(cls, v: str) -> str:
        try:
            limits.parse(v)
        except ValueError:
            raise ConfigError(f"bad LIPDUB_LOGIN_RATE_LIMIT {v!r}", "write e.g. 10/minute or 50/hour") from None
        return v

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, v: str | None) -> str | None:
        for o in filter(None, (s.strip() for s in (v or "").split(","))):
            scheme, sep, host = o.partition("://")
            if scheme not in ("http", "https") or not sep or not host or "/" in host:
                raise ConfigError(f"bad LIPDUB_ALLOWED_ORIGINS entry {o!r}", "write origins as scheme://host[:port], e.g. https://studio.example.com")
        return v

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL: ``database_url`` or a SQLite file in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'lipdub.db'}"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file of the job store, or None (another database, or in memory)."""
        url = make_url(self.db_url)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        return Path(url.database)

    def origins(self) -> set[str]:
        """``allowed_origins`` as a set (empty: the request's own origin is the only one allowed)."""
        return {o.strip().rstrip("/") for o in (self.allowed_origins or "").split(",") if o.strip()}

    def token_map(self) -> dict[str, str]:
        """``{key: user name}`` parsed from ``tokens`` (``user=key,...``)."""
        out: dict[str, str] = {}
        for item in filter(None, (s.strip() for s in (self.tokens or "").split(","))):
            user, sep, token = item.partition("=")
            if not sep or not user.strip() or len(token.strip()) < 8:
                raise ConfigError(f"bad LIPDUB_TOKENS entry {item.split('=')[0]!r}=...",
                                  "write user=key pairs separated by commas; keys at least 8 characters")
            out[token.strip()] = user.strip()
        return out
