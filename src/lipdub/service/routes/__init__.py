"""The studio's routes, one ``APIRouter`` per resource; :func:`lipdub.service.app.create_app` includes
:data:`ROUTERS` in this order."""

from __future__ import annotations

from . import campaigns, downloads, jobs, meta, pages, script, sources

ROUTERS = [meta.router, sources.router, jobs.router, campaigns.router, script.router, downloads.router, pages.router]
