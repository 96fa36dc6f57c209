"""``/sources``: upload a video or audio file (streamed, size-limited, probed), list, get, play it back."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from sqlalchemy import select

from ...errors import LipdubError
from ...media.probe import MediaInfo, probe
from ..db import Source, new_id
from ..deps import SessionDep, SettingsDep, UploaderDep, UserDep, own_source, problem
from ..media_types import display_name, probed_media_type, suffix_for
from ..schemas import ID, SourceOut
from ..settings import ServiceSettings
from ..views import source_out

router = APIRouter(tags=["sources"])
SAFE_NAME = re.compile(r"^[^/\\\x00-\x1f\x7f]{1,255}$")
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


async def _receive(request: Request, part: Path, limit: int) -> int:
    """Stream the request body into ``part``; returns its size (413 past ``limit`` bytes)."""
    size = 0
    with open(part, "wb") as f:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise problem(413, f"the upload is above the limit of {limit} bytes", "upload a shorter or smaller file")
            f.write(chunk)
    return size


async def _store(request: Request, settings: ServiceSettings, folder: Path, filename: str) -> tuple[Path, int, MediaInfo]:
    """Receive and probe the upload into ``folder``: ``(final path, size, probe)``; the file is named
    by the server, its suffix from the probed type (never from ``filename``)."""
    part = folder / "upload.part"
    size = await _receive(request, part, settings.max_upload_bytes)
    try:
        info = await run_in_threadpool(probe, part)
    except LipdubError as exc:
        why = exc.message.replace(str(part), filename)  # never show a server path
        raise problem(415, f"not a playable video or audio file: {why}", "upload a video or audio file with a soundtrack") from None
    final = folder / ("source" + suffix_for(probed_media_type(info.model_dump(mode="json"))))
    part.rename(final)
    return final, size, info


@router.post("/sources", status_code=201, response_model=SourceOut, openapi_extra=UPLOAD_BODY,
             responses={400: {"description": "bad file name"}, 413: {"description": "too large"}, 415: {"description": "not playable media"}})
async def upload_source(request: Request, user: UploaderDep, settings: SettingsDep, s: SessionDep,
                        filename: Annotated[str, Query(min_length=1, max_length=255, description="the file's name (display only)")]) -> SourceOut:
    """Upload a video or audio file as the raw request body (streamed to disk).

    The type is checked by probing the content (PyAV), not by the name; the name is kept for
    display only and may not contain a path.
    """
    if not SAFE_NAME.match(filename) or filename.strip(". ") == "" or ".." in filename:
        raise problem(400, "the file name may not contain a path, '..' or control characters", "send the bare file name, e.g. clip.mp4")
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise problem(413, f"the upload is {int(declared)} bytes, above the limit of {limit}", "upload a shorter or smaller file")
    sid = new_id()
    folder = settings.data_dir / "sources" / sid
    folder.mkdir(parents=True)
    try:
        final, size, info = await _store(request, settings, folder, filename)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    src = Source(id=sid, user_id=user.id, filename=filename, path=str(final.relative_to(settings.data_dir)), size_bytes=size,
                 duration_s=info.duration_s, has_video=info.has_video, media=info.model_dump(mode="json", exclude={"path"}))
    s.add(src)
    s.commit()
    return source_out(src)


@router.get("/sources", response_model=list[SourceOut])
def list_sources(user: UserDep, s: SessionDep) -> list[SourceOut]:
    """The caller's uploads, newest first."""
    rows = s.scalars(select(Source).where(Source.user_id == user.id).order_by(Source.created_at.desc())).all()
    return [source_out(r) for r in rows]


@router.get("/sources/{source_id}", response_model=SourceOut, responses={404: {"description": "not found"}})
def get_source(source_id: ID, user: UserDep, s: SessionDep) -> SourceOut:
    return source_out(own_source(s, source_id, user))


@router.get("/sources/{source_id}/media", responses={404: {"description": "not found"}}, response_class=FileResponse)
def source_media(source_id: ID, user: UserDep, settings: SettingsDep, s: SessionDep):
    """The uploaded file itself (for the side-by-side player), as the type its probe found
    (``video/mp4``...), whatever the name it was uploaded under."""
    src = own_source(s, source_id, user)
    media_type = probed_media_type(src.media or {})
    return FileResponse(settings.data_dir / src.path, media_type=media_type, filename=display_name(src.filename, media_type),
                        content_disposition_type="inline")
