"""FastAPI dependencies shared by the routers: the settings, the job store and a database session per
request, the queue, the key store, the authenticated user, and the ownership checks.

Authentication: ``Authorization: Bearer KEY`` (API clients) or the ``lipdub_session`` cookie of a
signed-in web page; a cookie request that changes state must pass the CSRF check of
:func:`lipdub.service.security.check_cookie_request`. A user sees only their own sources, jobs and
campaigns: another user's id answers 404, as an unknown one does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from .db import Campaign, Database, Job, Source, User
from .keys import KeyStore
from .security import JSON, OCTET_STREAM, SESSION_COOKIE, check_cookie_request
from .settings import ServiceSettings


def problem(status: int, message: str, hint: str = "", headers: dict[str, str] | None = None) -> HTTPException:
    """An API error: ``{"detail": {"message": ..., "hint": ...}}`` with ``status``."""
    return HTTPException(status, detail={"message": message, "hint": hint}, headers=headers)


def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_queue(request: Request) -> Any:
    return request.app.state.queue


def get_keys(request: Request) -> KeyStore:
    return request.app.state.keys


def db_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    """One SQLAlchemy session per request (routes commit what they change; the rest is rolled back)."""
    with db.session() as s:
        yield s


SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
DbDep = Annotated[Database, Depends(get_db)]
QueueDep = Annotated[Any, Depends(get_queue)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
SessionDep = Annotated[Session, Depends(db_session)]
bearer = HTTPBearer(auto_error=False, description="API key (`lipdub keys add USER`, or LIPDUB_TOKENS)")


class Authenticated:
    """The caller's :class:`User`, from an API key or a web session; 401 otherwise.

    Args:
        body_types: the content types a state-changing request made with the session cookie may
            send (JSON for every route but the raw upload).
    """

    def __init__(self, body_types: tuple[str, ...] = (JSON,)) -> None:
        self.body_types = body_types

    def __call__(self, request: Request, settings: SettingsDep, keys: KeysDep,
                 cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> User:
        challenge = {"WWW-Authenticate": "Bearer"}
        if cred is not None:
            principal = keys.authenticate(cred.credentials)
            if principal is None:
                raise problem(401, "unknown or revoked API key", "ask the administrator for a key (lipdub keys add)", challenge)
            return principal.user
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            principal = keys.session(cookie, settings.session_idle_s)
            if principal is None:
                raise problem(401, "the session has ended (signed out, expired, or its key revoked)", "sign in again at /login", challenge)
            check_cookie_request(request, settings, self.body_types)
            return principal.user
        raise problem(401, "no API key", "send Authorization: Bearer KEY", challenge)


UserDep = Annotated[User, Depends(Authenticated())]
UploaderDep = Annotated[User, Depends(Authenticated((OCTET_STREAM,)))]


def own_job(s: Session, job_id: str, user: User) -> Job:
    """Job ``job_id`` of ``user`` (404 when unknown or another user's)."""
    job = s.get(Job, job_id)
    if job is None or job.user_id != user.id:
        raise problem(404, f"no job {job_id}", "list your jobs with GET /jobs")
    return job


def own_source(s: Session, source_id: str, user: User) -> Source:
    """Source ``source_id`` of ``user`` (404 when unknown or another user's)."""
    src = s.get(Source, source_id)
    if src is None or src.user_id != user.id:
        raise problem(404, f"no source {source_id}", "upload it with POST /sources")
    return src


def own_campaign(s: Session, campaign_id: str, user: User) -> Campaign:
    """Campaign ``campaign_id`` of ``user`` (404 when unknown or another user's)."""
    c = s.get(Campaign, campaign_id)
    if c is None or c.user_id != user.id:
        raise problem(404, f"no campaign {campaign_id}", "list your jobs with GET /jobs")
    return c
