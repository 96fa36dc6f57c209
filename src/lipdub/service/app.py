"""The studio API and web page (FastAPI): ``create_app(settings)``; ``lipdub serve`` runs it with uvicorn.

Every route but ``/health``, the sign-in page and the static files needs an API key:
``Authorization: Bearer KEY`` (the API; keys from ``lipdub keys add USER`` or ``LIPDUB_TOKENS``,
stored hashed) or the ``lipdub_session`` cookie of a web session opened by ``/login`` and ended by
``/logout``. A user sees only their own sources and jobs (another user's id answers 404). No
client-given path reaches the filesystem: uploads are stored under server-chosen names in the data
directory, downloads are picked from a fixed list of deliverables, ids are checked against the
database. Responses carry a Content-Security-Policy, ``X-Frame-Options: DENY`` and ``nosniff``; media
is served with the type its probe found (:mod:`lipdub.service.security`, :mod:`~.media_types`).

REST summary (the OpenAPI schema is at ``/openapi.json``; no Swagger UI: it would load its assets from a CDN)::

    POST /sources?filename=NAME          raw body: the media file (streamed, size-limited, probed)
    POST /jobs  {source_id, language}    one language;  POST /campaigns {source_id, languages}
    GET  /jobs/{id}                      state, per-stage progress, attempts, download links
    POST /jobs/{id}/cancel | retry | resynthesize | render
    GET  /jobs/{id}/script               PATCH /jobs/{id}/segments/{n} {text, speaker}
    GET  /jobs/{id}/download/{kind}      video, subtitles, stems, report

The routes live in :mod:`lipdub.service.routes`, one router per resource; their shared dependencies
(settings, job store session, key store, the authenticated user) in :mod:`lipdub.service.deps`.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from ..errors import LipdubError
from .db import Database
from .keys import KeyStore
from .queue import make_queue
from .routes import ROUTERS
from .security import LoginLimiter, SecurityHeaders
from .settings import ServiceSettings
from .views import api_error

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
DESCRIPTION = "Dub videos into other languages with lip sync: uploads, jobs, campaigns, script editing, downloads."


def create_app(settings: ServiceSettings | None = None, queue: Any = None) -> FastAPI:
    """Build the service: the job store, the API keys (``settings.tokens`` synced into it), the queue,
    the routers, the security headers.

    Args:
        settings: defaults to :class:`ServiceSettings` read from the environment.
        queue: a queue object (``submit``, ``start``, ``stop``); default :func:`make_queue` (the
            in-process pool, or Celery when ``broker_url`` is set).

    Raises:
        ConfigError: malformed settings (``tokens``...).
    """
    settings = settings or ServiceSettings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url)
    keys = KeyStore(db)
    keys.sync_env(settings.token_map())
    queue = queue or make_queue(settings, db)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        queue.start()
        yield
        queue.stop()

    app = FastAPI(title="lipdub studio", version="1", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None,
                  description=DESCRIPTION)
    app.state.settings, app.state.db, app.state.queue, app.state.keys = settings, db, queue, keys
    app.state.login_limiter = LoginLimiter(settings.login_rate_limit)
    app.add_middleware(SecurityHeaders, https=settings.https)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(LipdubError)
    async def _lipdub_error(_req: Request, exc: LipdubError):
        return JSONResponse({"detail": api_error(settings, exc)}, status_code=422)

    return app
