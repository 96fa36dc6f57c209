"""API keys and web sessions of the studio service, stored as SHA-256 digests in the job store.

Keys. ``lipdub keys add USER`` makes one (``lipdub_`` + 43 URL-safe characters of
:func:`secrets.token_urlsafe`, 256 random bits) and prints it once; the database keeps its SHA-256
digest only. A key of 256 random bits needs no slow password hash: its digest can be neither inverted
nor searched (the same reasoning as GitHub's token scanning format; keys seeded from the environment
are as strong as the administrator makes them). ``LIPDUB_TOKENS`` (``user=key,...``) seeds keys too,
and is the whole truth about the keys it seeds: at each start of the API server the keys it names are
active and every key it named before but no longer names is revoked (it comes back if the variable
names it again). ``lipdub keys revoke`` revokes a key for good, whatever the variable says. Each key
records when it was last used (to :data:`LAST_USED_RESOLUTION_S`).

Web sessions. ``POST /login`` with a key opens a session: a new random cookie value (only its digest
stored), valid ``session_ttl_s`` at most and ``session_idle_s`` without a request. Logout deletes it;
revoking the key it signed in with ends it too. The cookie is never the API key.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session as DbSession

from ..errors import ConfigError
from .db import ApiKey, Database, User, WebSession, as_utc, new_id, utcnow
from .settings import ServiceSettings

log = logging.getLogger(__name__)

KEY_PREFIX = "lipdub_"
#: ``last_used_at`` and a session's ``last_seen_at`` are written at most this often (seconds), so that
#: a page polling every second does not write to the database every second.
LAST_USED_RESOLUTION_S = 60.0
MAX_SECRET_CHARS = 500


def digest(secret: str) -> str:
    """Hex SHA-256 of a key or session secret (what the database stores)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    """What ``lipdub keys list`` shows of a key (never the key itself). Times are aware UTC."""

    id: str
    user: str
    label: str
    origin: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def state(self) -> str:
        """``active``, ``revoked`` (``lipdub keys revoke``) or ``removed from LIPDUB_TOKENS``."""
        if self.revoked_at is None:
            return "active"
        return "removed from LIPDUB_TOKENS" if self.revoked_by == "env" else "revoked"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the user, the key that proves it, and ``via`` ``key`` (an
    ``Authorization: Bearer`` header) or ``session`` (the web page's cookie)."""

    user: User
    key_id: str
    via: str


def _info(key: ApiKey, user_name: str) -> KeyInfo:
    return KeyInfo(id=key.id, user=user_name, label=key.label, origin=key.origin, created_at=as_utc(key.created_at),
                   last_used_at=as_utc(key.last_used_at) if key.last_used_at else None,
                   revoked_at=as_utc(key.revoked_at) if key.revoked_at else None, revoked_by=key.revoked_by)


def _check_user_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200 or any(unicodedata.category(c).startswith("C") for c in name) or "=" in name or "," in name:
        raise ConfigError(f"bad user name {name[:40]!r}", "use 1-200 printable characters without '=' or ','")
    return name


class KeyStore:
    """The API keys and web sessions in ``db``.

    Raises (every method that takes a name or id):
        ConfigError: an unknown key id or user, or a malformed user name.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- keys --------------------------------------------------------------------------------
    def add(self, user_name: str, label: str = "") -> tuple[str, KeyInfo]:
        """Create a key for ``user_name`` (the user is created when new).

        Returns:
            ``(key, info)``: the key itself, to hand over once (it is not stored), and its record.
        """
        name = _check_user_name(user_name)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.db.session.begin() as s:
            user = self._user(s, name, create=True)
            key = ApiKey(id=self._new_key_id(s), user_id=user.id, key_sha256=digest(secret), label=label.strip()[:200], origin="cli")
            s.add(key)
            s.flush()
            return secret, _info(key, user.name)

    def keys(self) -> list[KeyInfo]:
        """Every key, active and revoked, oldest first."""
        with self.db.session() as s:
            rows = s.execute(select(ApiKey, User.name).join(User, User.id == ApiKey.user_id).order_by(ApiKey.created_at)).all()
        return [_info(k, n) for k, n in rows]

    def has_active_keys(self) -> bool:
        """Whether any key can sign in (``lipdub serve`` makes a key for ``admin`` when none can)."""
        with self.db.session() as s:
            return s.scalar(select(ApiKey.id).where(ApiKey.revoked_at.is_(None)).limit(1)) is not None

    def revoke(self, key_id: str) -> KeyInfo:
        """Revoke key ``key_id`` for good and end its web sessions (a revoked key stays revoked)."""
        with self.db.session.begin() as s:
            key = s.get(ApiKey, key_id.strip())
            if key is None:
                raise ConfigError(f"no API key {key_id.strip()[:40]!r}", "list the key ids with: lipdub keys list")
            self._revoke(s, key, "cli")
            return _info(key, s.get(User, key.user_id).name)

    def revoke_user(self, user_name: str) -> list[KeyInfo]:
        """Revoke every key of ``user_name``; returns the keys this call revoked."""
        with self.db.session.begin() as s:
            user = self._user(s, _check_user_name(user_name), create=False)
            keys = s.scalars(select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))).all()
            for key in keys:
                self._revoke(s, key, "cli")
            return [_info(k, user.name) for k in keys]

    def sync_env(self, token_map: dict[str, str]) -> None:
        """Make the keys seeded from ``LIPDUB_TOKENS`` exactly ``token_map`` (``{key: user name}``).

        Named keys are created (or re-activated when only the variable had removed them, or moved to
        the user the variable now gives them); env-seeded keys it no longer names are revoked and their
        sessions end. Keys revoked with ``lipdub keys revoke`` stay revoked (a warning is logged).
        """
        named = {digest(token): _check_user_name(name) for token, name in token_map.items()}
        with self.db.session.begin() as s:
            for h, name in named.items():
                user = self._user(s, name, create=True)
                key = s.scalar(select(ApiKey).where(ApiKey.key_sha256 == h))
                if key is None:
                    s.add(ApiKey(id=self._new_key_id(s), user_id=user.id, key_sha256=h, label="LIPDUB_TOKENS", origin="env"))
                elif key.revoked_by == "cli":
                    log.warning("LIPDUB_TOKENS names key %s (user %s), revoked with `lipdub keys revoke`: it stays revoked", key.id, name)
                elif key.origin == "env":
                    key.revoked_at, key.revoked_by = None, None
                    if key.user_id != user.id:
                        self._end_sessions(s, key.id)
                        key.user_id = user.id
            stale = s.scalars(select(ApiKey).where(ApiKey.origin == "env", ApiKey.revoked_at.is_(None))).all()
            for key in stale:
                if key.key_sha256 not in named:
                    log.info("key %s is no longer in LIPDUB_TOKENS: revoked", key.id)
                    self._revoke(s, key, "env")

    def authenticate(self, secret: str) -> Principal | None:
        """The caller holding API key ``secret`` (compared by digest), or None (unknown or revoked)."""
        if not secret or len(secret) > MAX_SECRET_CHARS:
            return None
        with self.db.session() as s:
            row = s.execute(select(ApiKey, User).join(User, User.id == ApiKey.user_id)
                            .where(ApiKey.key_sha256 == digest(secret), ApiKey.revoked_at.is_(None))).first()
            if row is None:
                return None
            key, user = row
            now = utcnow()
            if key.last_used_at is None or now - as_utc(key.last_used_at) >= timedelta(seconds=LAST_USED_RESOLUTION_S):
                s.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
                s.commit()
            return Principal(user, key.id, "key")

    # -- web sessions ------------------------------------------------------------------------
    def open_session(self, principal: Principal, ttl_s: float) -> str:
        """A new session for ``principal`` valid ``ttl_s`` seconds; returns the cookie value
        (32 random bytes, URL-safe). Expired sessions are deleted on the way."""
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        with self.db.session.begin() as s:
            s.execute(delete(WebSession).where(WebSession.expires_at < now))
            s.add(WebSession(session_sha256=digest(secret), key_id=principal.key_id, user_id=principal.user.id,
                             created_at=now, expires_at=now + timedelta(seconds=ttl_s), last_seen_at=now))
        return secret

    def session(self, cookie: str, idle_s: float) -> Principal | None:
        """The caller of web session ``cookie``, or None: unknown, logged out, expired, idle longer
        than ``idle_s`` seconds, or its key revoked (an ended session is deleted)."""
        if not cookie or len(cookie) > MAX_SECRET_CHARS:
            return None
        with self.db.session() as s:
            row = s.execute(select(WebSession, ApiKey, User).join(ApiKey, ApiKey.id == WebSession.key_id)
                            .join(User, User.id == WebSession.user_id).where(WebSession.session_sha256 == digest(cookie))).first()
            if row is None:
                return None
            sess, key, user = row
            now = utcnow()
            seen = as_utc(sess.last_seen_at)
            if (key.revoked_at is not None or key.user_id != sess.user_id or as_utc(sess.expires_at) <= now
                    or now - seen >= timedelta(seconds=idle_s)):
                s.delete(sess)
                s.commit()
                return None
            if now - seen >= timedelta(seconds=min(LAST_USED_RESOLUTION_S, idle_s / 10)):
                s.execute(update(WebSession).where(WebSession.session_sha256 == sess.session_sha256).values(last_seen_at=now))
                s.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
                s.commit()
            return Principal(user, key.id, "session")

    def close_session(self, cookie: str) -> None:
        """End web session ``cookie`` (logout); an unknown cookie is ignored."""
        if cookie and len(cookie) <= MAX_SECRET_CHARS:
            with self.db.session.begin() as s:
                s.execute(delete(WebSession).where(WebSession.session_sha256 == digest(cookie)))

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _user(s: DbSession, name: str, create: bool) -> User:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            if not create:
                raise ConfigError(f"no user {name!r}", "list the users and their keys with: lipdub keys list")
            user = User(name=name)
            s.add(user)
            s.flush()
        return user

    @staticmethod
    def _new_key_id(s: DbSession) -> str:
        while True:  # 48 random bits: short enough to type, a clash is retried
            key_id = new_id()[:12]
            if s.get(ApiKey, key_id) is None:
                return key_id

    def _revoke(self, s: DbSession, key: ApiKey, by: str) -> None:
        if key.revoked_at is None or (by == "cli" and key.revoked_by != "cli"):
            key.revoked_at, key.revoked_by = key.revoked_at or utcnow(), by
        self._end_sessions(s, key.id)

    @staticmethod
    def _end_sessions(s: DbSession, key_id: str) -> None:
        s.execute(delete(WebSession).where(WebSession.key_id == key_id))


def open_key_store(settings: ServiceSettings, create: bool) -> KeyStore:
    """The key store of the service configured by ``settings`` (for ``lipdub keys``).

    Args:
        create: create the data directory and the database when missing (``keys add``); otherwise a
            missing SQLite database is an error (``keys list`` / ``revoke`` on a mistyped directory).

    Raises:
        ConfigError: ``create`` is False and the SQLite database does not exist.
    """
    db_file = settings.sqlite_path
    if db_file is not None and not db_file.is_file():
        if not create:
            raise ConfigError(f"no studio database at {db_file}", "pass the server's --data-dir (or set LIPDUB_DATA_DIR)")
        db_file.parent.mkdir(parents=True, exist_ok=True)
    return KeyStore(Database(settings.db_url))
