"""``/jobs/{id}/report`` and ``/jobs/{id}/download/{kind}``: the QC summary and the deliverables."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from ...project import Manifest
from ..db import Job
from ..deps import SessionDep, SettingsDep, UserDep, own_job, problem
from ..jobs import project_dir
from ..media_types import deliverable_media_type
from ..schemas import ID, DownloadKind
from ..security import REPORT_CSP
from ..settings import ServiceSettings
from ..summary import summarize_manifest
from ..views import deliverables

router = APIRouter(tags=["downloads"])


def _summary(settings: ServiceSettings, job: Job) -> dict[str, Any]:
    root = project_dir(settings, job)
    if job.kind != "dub" or not (root / "manifest.json").is_file():
        raise problem(404, "no report yet", "wait for the job to run")
    manifest = Manifest.model_validate_json((root / "manifest.json").read_text(encoding="utf-8"))
    return summarize_manifest(manifest, root, job.language)


@router.get("/jobs/{job_id}/report", responses={404: {"description": "not found"}})
def get_report(job_id: ID, user: UserDep, settings: SettingsDep, s: SessionDep) -> dict[str, Any]:
    """QC summary of a language job: the verdict, reasons and checks of its quality report (the
    same as the ``report`` download, which holds every figure and plot), plus the mix's loudness,
    the lip-sync plan and stage timings as soon as those stages ran (verdict None until then)."""
    return _summary(settings, own_job(s, job_id, user))


@router.get("/jobs/{job_id}/download/{kind}", response_class=FileResponse, responses={404: {"description": "not rendered yet"}})
def download(job_id: ID, kind: DownloadKind, user: UserDep, settings: SettingsDep, s: SessionDep, inline: bool = False):
    """A deliverable of a language job, picked by ``kind`` (never by path): an attachment unless
    ``inline`` (for the page's players and the report tab); the QC report page is sandboxed."""
    job = own_job(s, job_id, user)
    path = deliverables(s, settings, job).get(kind.value)
    if path is None or not path.is_file():
        raise problem(404, f"no {kind.value} for job {job_id} yet", "wait for the render to finish")
    headers = {"Content-Security-Policy": REPORT_CSP} if kind is DownloadKind.report_html else None
    return FileResponse(path, media_type=deliverable_media_type(path), filename=path.name, headers=headers,
                        content_disposition_type="inline" if inline else "attachment")
