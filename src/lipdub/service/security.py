"""HTTP-level protections of the studio service: response headers, the cross-site request check, the
sign-in rate limit and the session cookie.

* Every response carries a Content-Security-Policy (scripts, styles, media and requests from this
  origin only; no framing: ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``),
  ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin``; with ``LIPDUB_HTTPS`` also
  ``Strict-Transport-Security``. A route may set a stricter policy of its own (the QC report page is
  served sandboxed).
* Cross-site request forgery: a state-changing request (POST, PUT, PATCH, DELETE) authenticated by
  the session cookie must come from the page's own origin (``Origin``, else ``Referer``; neither is
  refused, as OWASP's CSRF cheat sheet advises) and carry the route's body type (JSON; the raw upload
  ``application/octet-stream``). Neither can be sent cross-site without a CORS preflight, which this
  service never grants. Requests with an ``Authorization`` header are not affected: a browser never
  adds one by itself.
* Sign-in attempts are limited per client address with the ``limits`` package (moving window, in
  memory: one counter per API server process).
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, Response
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .settings import ServiceSettings

SESSION_COOKIE = "lipdub_session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON = "application/json"
OCTET_STREAM = "application/octet-stream"

#: The pages' policy: app.js and style.css from /static, fetches and media from this origin only.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
#: The QC report page (our own HTML with inline styles and data: plots): no script at all, sandboxed
#: (an opaque origin: it cannot read the API even if a transcript line smuggled markup into it).
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'none'"


class SecurityHeaders:
    """ASGI middleware adding the security headers to every HTTP response (a header the route set
    itself is kept)."""

    def __init__(self, app: ASGIApp, https: bool = False) -> None:
        self.app = app
        self.headers = [("content-security-policy", PAGE_CSP), ("x-frame-options", "DENY"),
                        ("x-content-type-options", "nosniff"), ("referrer-policy", "same-origin")]
        if https:
            self.headers.append(("strict-transport-security", "max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _problem(status: int, message: str, hint: str) -> HTTPException:
    return HTTPException(status, detail={"message": message, "hint": hint})


def request_origin(request: Request) -> str | None:
    """The ``Origin`` of ``request``, else the origin of its ``Referer``, else None."""
    origin = request.headers.get("origin")
    if origin:
        return origin.rstrip("/")
    referer = urlsplit(request.headers.get("referer", ""))
    return f"{referer.scheme}://{referer.netloc}" if referer.scheme and referer.netloc else None


def own_origins(request: Request, settings: ServiceSettings) -> set[str]:
    """The origins the page may be served from: ``allowed_origins``, or the request's own
    ``scheme://host`` (``https`` when ``settings.https``: behind a TLS proxy the app sees http)."""
    configured = settings.origins()
    if configured:
        return configured
    scheme = "https" if settings.https else request.url.scheme
    return {f"{scheme}://{request.headers.get('host', '')}"}


def check_same_origin(request: Request, settings: ServiceSettings, required: bool = True) -> None:
    """Refuse (403) a request from another origin; with ``required`` also one that names none."""
    origin = request_origin(request)
    if origin is None and not required:
        return
    if origin is None or origin not in own_origins(request, settings):
        raise _problem(403, "cross-site request refused: the session cookie only works from the studio's own pages",
                       "API clients send Authorization: Bearer KEY instead of the cookie")


def check_cookie_request(request: Request, settings: ServiceSettings, body_types: tuple[str, ...]) -> None:
    """The CSRF check of a request authenticated by the session cookie (no-op for GET and HEAD).

    Raises:
        HTTPException: 403 for a foreign or missing origin, 415 for a body type not in ``body_types``.
    """
    if request.method not in UNSAFE_METHODS:
        return
    check_same_origin(request, settings)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in body_types:
        raise _problem(415, f"a request with the session cookie must send Content-Type: {body_types[0]}",
                       f"send the body as {body_types[0]}")


class LoginLimiter:
    """Sign-in attempts per client address: at most ``rate`` (``limits`` notation, e.g. ``10/minute``)
    in any moving window of that length."""

    def __init__(self, rate: str) -> None:
        self.item = parse(rate)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, client: str) -> bool:
        """Count one attempt of ``client``; False when it is over the limit (refuse it)."""
        return self.limiter.hit(self.item, "login", client)

    def retry_after_s(self, client: str) -> int:
        """Whole seconds until ``client`` may try again (at least 1)."""
        reset = self.limiter.get_window_stats(self.item, "login", client).reset_time
        return max(1, int(reset - time.time()) + 1)


def set_session_cookie(response: Response, value: str, settings: ServiceSettings) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, ``Secure`` with ``settings.https``, expiring
    with the session."""
    response.set_cookie(SESSION_COOKIE, value, max_age=int(settings.session_ttl_s), path="/", httponly=True,
                        samesite="strict", secure=settings.https)


def clear_session_cookie(response: Response, settings: ServiceSettings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=settings.https)
