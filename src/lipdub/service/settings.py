"""Service settings, read from ``LIPDUB_*`` environment variables (pydantic-settings).

| variable | default | meaning |
|---|---|---|
| ``LIPDUB_DATA_DIR`` | ``./lipdub-data`` | every upload, project and output lives under it |
| ``LIPDUB_DATABASE_URL`` | ``sqlite:///DATA_DIR/lipdub.db`` | SQLAlchemy URL of the job store (PostgreSQL at scale) |
| ``LIPDUB_BROKER_URL`` | unset | Redis URL: jobs go to Celery workers (``lipdub worker``); unset: in-process pool |
| ``LIPDUB_TOKENS`` | unset | ``user=token,user2=token2``: API tokens (hashed into the database at start) |
| ``LIPDUB_MAX_UPLOAD_BYTES`` | 2 GiB | larger uploads are refused with 413 |
| ``LIPDUB_EMBEDDED_WORKERS`` | 1 | jobs run at once by the in-process pool; 0 = this server runs none |
| ``LIPDUB_HEARTBEAT_S`` | 5 | how often a running job proves its worker is alive |
| ``LIPDUB_STALE_AFTER_S`` | 60 | a running job silent this long is requeued (its worker died) |
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..errors import ConfigError


class ServiceSettings(BaseSettings):
    """Configuration of the API server and the workers (one object, shared by both).

    Raises:
        ConfigError: a malformed ``tokens`` string.
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

    @field_validator("data_dir")
    @classmethod
    def _abs(cls, v: Path) -> Path:
        return Path(v).expanduser().resolve()

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL: ``database_url`` or a SQLite file in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'lipdub.db'}"

    def token_map(self) -> dict[str, str]:
        """``{token: user name}`` parsed from ``tokens`` (``user=token,...``)."""
        out: dict[str, str] = {}
        for item in filter(None, (s.strip() for s in (self.tokens or "").split(","))):
            user, sep, token = item.partition("=")
            if not sep or not user.strip() or len(token.strip()) < 8:
                raise ConfigError(f"bad LIPDUB_TOKENS entry {item.split('=')[0]!r}=...",
                                  "write user=token pairs separated by commas; tokens at least 8 characters")
            out[token.strip()] = user.strip()
        return out
