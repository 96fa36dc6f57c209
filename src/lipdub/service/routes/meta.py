"""``/health`` (no key needed) and the OpenAPI schema (key needed, like every other route)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..deps import QueueDep, UserDep
from ..schemas import Health

router = APIRouter()


@router.get("/health", response_model=Health, tags=["service"])
def health(queue: QueueDep) -> Health:
    """Liveness: no key needed."""
    return Health(status="ok", queue=getattr(queue, "kind", type(queue).__name__))


@router.get("/openapi.json", include_in_schema=False)
def openapi_schema(request: Request, user: UserDep) -> JSONResponse:
    """The OpenAPI schema (a key or session needed, like every route but /health)."""
    return JSONResponse(request.app.openapi())
