"""The web pages: sign in (rate-limited per client), sign out, the job list and a job's page.

Signing in with an API key opens a web session (:meth:`lipdub.service.keys.KeyStore.open_session`):
the cookie holds the session's own random secret, never the key, and signing out deletes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from ..db import User
from ..deps import KeysDep, SessionDep, SettingsDep, own_job
from ..schemas import ID
from ..security import SESSION_COOKIE, check_same_origin, clear_session_cookie, set_session_cookie

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parents[1] / "templates"))


def page_user(request: Request, keys: KeysDep, settings: SettingsDep) -> User | None:
    """The signed-in user of a page request (session cookie only), or None."""
    cookie = request.cookies.get(SESSION_COOKIE)
    principal = keys.session(cookie, settings.session_idle_s) if cookie else None
    return principal.user if principal else None


def _to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request):
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, keys: KeysDep, settings: SettingsDep, token: Annotated[str, Form(max_length=500)]):
    """Check the key and open a session; at most ``login_rate_limit`` attempts per client address
    (429 past it, even with a good key)."""
    check_same_origin(request, settings, required=False)  # no cookie yet: refuse only a foreign origin
    client = request.client.host if request.client else "unknown"
    limiter = request.app.state.login_limiter
    if not limiter.hit(client):
        wait_s = limiter.retry_after_s(client)
        return templates.TemplateResponse(request, "login.html", {"error": f"too many sign-in attempts: try again in {wait_s} s"},
                                          status_code=429, headers={"Retry-After": str(wait_s)})
    principal = keys.authenticate(token.strip())
    if principal is None:
        return templates.TemplateResponse(request, "login.html", {"error": "unknown token (or revoked key)"}, status_code=401)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:  # signing in again replaces the browser's session
        keys.close_session(previous)
    resp = RedirectResponse("/", status_code=303)
    set_session_cookie(resp, keys.open_session(principal, settings.session_ttl_s), settings)
    return resp


@router.post("/logout")
def logout(request: Request, keys: KeysDep, settings: SettingsDep):
    """End the session (its cookie no longer works, even if kept) and go to the sign-in page."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        check_same_origin(request, settings)
        keys.close_session(cookie)
    resp = _to_login()
    clear_session_cookie(resp, settings)
    return resp


@router.get("/", response_class=HTMLResponse)
def index(request: Request, keys: KeysDep, settings: SettingsDep):
    user = page_user(request, keys, settings)
    if user is None:
        return _to_login()
    return templates.TemplateResponse(request, "index.html", {"user": user})


@router.get("/ui/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: ID, keys: KeysDep, settings: SettingsDep, s: SessionDep):
    user = page_user(request, keys, settings)
    if user is None:
        return _to_login()
    job = own_job(s, job_id, user)
    return templates.TemplateResponse(request, "job.html", {"user": user, "job": job})
