"""The studio API and web page (FastAPI): ``create_app(settings)``; ``lipdub serve`` runs it with uvicorn.

Every route but ``/health``, the login page and the static files needs an API token: ``Authorization: Bearer TOKEN``
(the API) or the ``lipdub_token`` cookie set by ``/login`` (the web page). A user sees only their own
sources and jobs (another user's id answers 404). No client-given path reaches the filesystem:
uploads are stored under server-chosen names in the data directory, downloads are picked from a
fixed list of deliverables, ids are checked against the database.

REST summary (the OpenAPI schema is at ``/openapi.json``; no Swagger UI: it would load its assets from a CDN)::

    POST /sources?filename=NAME          raw body: the media file (streamed, size-limited, probed)
    POST /jobs  {source_id, language}    one language;  POST /campaigns {source_id, languages}
    GET  /jobs/{id}                      state, per-stage progress, attempts, download links
    POST /jobs/{id}/cancel | retry | resynthesize | render
    GET  /jobs/{id}/script               PATCH /jobs/{id}/segments/{n} {text, speaker}
    GET  /jobs/{id}/download/{kind}      video, subtitles, stems, report
"""


import io
import logging
import re
import shutil
from contextlib import asynccontextmanager
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import select, update

from ..errors import LipdubError
from ..languages import parse_language
from ..project import Project
from ..script import Script, Segment
from .db import ACTIVE, FINISHED, Campaign, Database, Job, Source, StageProgress, User, _aware, new_id, utcnow
from .jobs import PREPARE_UNTIL, output_dir, project_dir
from .settings import ServiceSettings

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
COOKIE = "lipdub_token"
ID = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$", description="32 hex digits")]
LANG_PATTERN = r"^[A-Za-z]{2,3}$"
SAFE_NAME = re.compile(r"^[^/\\\x00-\x1f\x7f]{1,255}$")
UTCTime = Annotated[datetime, AfterValidator(_aware)]  # SQLite gives naive datetimes: they are UTC
MEDIA_SUFFIXES = {".mp4", ".mov", ".mkv", ".m4v", ".webm", ".avi", ".wav", ".flac", ".m4a", ".mp3", ".ogg", ".opus"}


# -- API models --------------------------------------------------------------------------------
class JobOptions(BaseModel):
    """Dub options a client may choose (a subset of :class:`lipdub.config.DubConfig`)."""

    model_config = ConfigDict(extra="forbid")
    source_language: str | None = Field(default=None, pattern=LANG_PATTERN, description="ISO 639-1; detected when omitted")
    translator: Literal["apertium", "llm"] = "apertium"
    tts: Literal["auto", "piper", "espeak-ng", "kokoro"] = "auto"
    separation: Literal["dfn", "none"] = "dfn"
    lipsync: Literal["retrieval", "none"] = "retrieval"
    speakers: int | None = Field(default=None, ge=1, le=20)
    asr_model: Literal["base", "tiny.en"] = "base"
    max_stretch: float = Field(default=1.25, ge=1.0, le=2.0)
    target_lufs: float = Field(default=-24.0, ge=-40.0, le=-10.0)
    true_peak_dbtp: float = Field(default=-2.0, ge=-10.0, le=0.0)
    keep_original_audio: bool = False


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    language: str = Field(pattern=LANG_PATTERN, description="target language, ISO 639-1")
    options: JobOptions = Field(default_factory=JobOptions)


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    languages: list[Annotated[str, Field(pattern=LANG_PATTERN)]] = Field(min_length=1, max_length=20)
    options: JobOptions = Field(default_factory=JobOptions)


class SegmentEdit(BaseModel):
    """A correction of one line: the spoken target ``text`` and/or the ``speaker`` id."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(default=None, min_length=1, max_length=2000)
    speaker: str | None = Field(default=None, min_length=1, max_length=100)


class SourceOut(BaseModel):
    id: str
    filename: str
    size_bytes: int
    duration_s: float
    has_video: bool
    created_at: UTCTime


class StageOut(BaseModel):
    stage: str
    state: str
    done: int
    total: int | None
    duration_s: float | None
    attempt: int


class JobOut(BaseModel):
    id: str
    kind: str
    language: str | None
    source_id: str
    campaign_id: str | None
    state: str
    until: str
    error: str | None
    options: dict[str, Any]
    stages: list[StageOut]
    attempts: list[dict[str, Any]]
    downloads: dict[str, str]
    created_at: UTCTime
    started_at: UTCTime | None
    finished_at: UTCTime | None


class CampaignOut(BaseModel):
    id: str
    source_id: str
    languages: list[str]
    state: str
    jobs: list[JobOut]


class Health(BaseModel):
    status: str
    queue: str


class DownloadKind(str, Enum):
    video = "video"
    subtitles = "subtitles"
    subtitles_vtt = "subtitles_vtt"
    source_subtitles = "source_subtitles"
    stem_dialogue = "stem_dialogue"
    stem_me = "stem_me"
    stem_mix = "stem_mix"
    report = "report"
    report_html = "report_html"


class AudioWhich(str, Enum):
    source = "source"
    dub = "dub"


def _problem(status: int, message: str, hint: str = "") -> HTTPException:
    return HTTPException(status, detail={"message": message, "hint": hint})


# -- the app -----------------------------------------------------------------------------------
def create_app(settings: ServiceSettings | None = None, queue=None) -> FastAPI:
    """Build the service.

    Args:
        settings: defaults to :class:`ServiceSettings` read from the environment.
        queue: a queue object (``submit``, ``start``, ``stop``); default :func:`make_queue` (the
            in-process pool, or Celery when ``broker_url`` is set).

    Raises:
        ConfigError: malformed settings (tokens).
    """
    from .queue import make_queue

    settings = settings or ServiceSettings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url)
    db.ensure_tokens(settings.token_map())
    queue = queue or make_queue(settings, db)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        queue.start()
        yield
        queue.stop()

    app = FastAPI(title="lipdub studio", version="1", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None,
                  description="Dub videos into other languages with lip sync: uploads, jobs, campaigns, script editing, downloads.")
    app.state.settings, app.state.db, app.state.queue = settings, db, queue
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    bearer = HTTPBearer(auto_error=False, description="API token (LIPDUB_TOKENS)")

    # -- auth ----------------------------------------------------------------------------------
    def current_user(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> User:
        token = cred.credentials if cred is not None else request.cookies.get(COOKIE)
        if not token:
            raise HTTPException(401, detail={"message": "no API token", "hint": "send Authorization: Bearer TOKEN"},
                                headers={"WWW-Authenticate": "Bearer"})
        user = db.user_for_token(token)
        if user is None:
            raise HTTPException(401, detail={"message": "unknown API token", "hint": "check the token (LIPDUB_TOKENS)"},
                                headers={"WWW-Authenticate": "Bearer"})
        return user

    UserDep = Annotated[User, Depends(current_user)]

    def own_job(job_id: str, user: User) -> Job:
        with db.session() as s:
            job = s.get(Job, job_id)
        if job is None or job.user_id != user.id:
            raise _problem(404, f"no job {job_id}", "list your jobs with GET /jobs")
        return job

    def own_source(source_id: str, user: User) -> Source:
        with db.session() as s:
            src = s.get(Source, source_id)
        if src is None or src.user_id != user.id:
            raise _problem(404, f"no source {source_id}", "upload it with POST /sources")
        return src

    def deliverables(job: Job) -> dict[str, Path]:
        if job.kind != "dub":
            return {}
        with db.session() as s:
            src = s.get(Source, job.source_id)
        stem, L = Path(src.path).stem, job.language
        base = output_dir(settings, job) / f"{stem}.{L}"
        files = {"video": base.with_name(base.name + (".mp4" if src.has_video else ".wav")),
                 "subtitles": base.with_name(base.name + ".srt"), "subtitles_vtt": base.with_name(base.name + ".vtt"),
                 "stem_dialogue": base.with_name(base.name + ".stems") / "dialogue.wav",
                 "stem_me": base.with_name(base.name + ".stems") / "me.wav", "stem_mix": base.with_name(base.name + ".stems") / "mix.wav",
                 "report": base.with_name(base.name + ".report.json"), "report_html": base.with_name(base.name + ".report.html")}
        src_subs = sorted(p for p in base.parent.glob(f"{base.name}.*.srt") if p.name != base.name + ".srt")
        if src_subs:
            files["source_subtitles"] = src_subs[0]
        return files

    def job_out(job: Job) -> JobOut:
        with db.session() as s:
            rows = s.scalars(select(StageProgress).where(StageProgress.job_id == job.id).order_by(StageProgress.position)).all()
        downloads = {k: f"/jobs/{job.id}/download/{k}" for k, p in deliverables(job).items() if p.is_file()}
        return JobOut(id=job.id, kind=job.kind, language=job.language, source_id=job.source_id, campaign_id=job.campaign_id,
                      state=job.state, until=job.until, error=job.error, options=job.options or {},
                      stages=[StageOut(stage=r.stage, state=r.state, done=r.done, total=r.total, duration_s=r.duration_s, attempt=r.attempt) for r in rows],
                      attempts=job.attempts or [], downloads=downloads, created_at=job.created_at,
                      started_at=job.started_at, finished_at=job.finished_at)

    def campaign_out(c: Campaign) -> CampaignOut:
        with db.session() as s:
            jobs = s.scalars(select(Job).where(Job.campaign_id == c.id).order_by(Job.created_at)).all()
        states = {j.state for j in jobs}
        state = next((st for st in ("running", "queued", "waiting") if st in states), None) or \
            ("failed" if "failed" in states else "cancelled" if "cancelled" in states else "done")
        return CampaignOut(id=c.id, source_id=c.source_id, languages=list(c.languages), state=state, jobs=[job_out(j) for j in jobs])

    def check_language(code: str) -> str:
        try:
            return parse_language(code).code
        except LipdubError as exc:
            raise _problem(422, exc.message, exc.hint) from None

    @app.exception_handler(LipdubError)
    async def _lipdub_error(_req: Request, exc: LipdubError):
        return JSONResponse({"detail": {"message": exc.message, "hint": exc.hint}}, status_code=422)

    # -- health --------------------------------------------------------------------------------
    @app.get("/health", response_model=Health, tags=["service"])
    def health() -> Health:
        """Liveness: no token needed."""
        return Health(status="ok", queue=getattr(queue, "kind", type(queue).__name__))

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_schema(user: UserDep) -> JSONResponse:
        """The OpenAPI schema (token required like every route but /health)."""
        return JSONResponse(app.openapi())

    # -- sources -------------------------------------------------------------------------------
    @app.post("/sources", status_code=201, response_model=SourceOut, tags=["sources"],
              responses={400: {"description": "bad file name"}, 413: {"description": "too large"}, 415: {"description": "not playable media"}},
              openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def upload_source(request: Request, user: UserDep,
                            filename: Annotated[str, Query(min_length=1, max_length=255, description="the file's name (display only)")]) -> SourceOut:
        """Upload a video or audio file as the raw request body (streamed to disk).

        The type is checked by probing the content (PyAV), not by the name; the name is kept for
        display only and may not contain a path.
        """
        if not SAFE_NAME.match(filename) or filename.strip(". ") == "" or ".." in filename:
            raise _problem(400, "the file name may not contain a path, '..' or control characters", "send the bare file name, e.g. clip.mp4")
        limit = settings.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _problem(413, f"the upload is {int(declared)} bytes, above the limit of {limit}", "upload a shorter or smaller file")
        sid = new_id()
        folder = settings.data_dir / "sources" / sid
        folder.mkdir(parents=True)
        part = folder / "upload.part"
        size = 0
        try:
            with open(part, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise _problem(413, f"the upload is above the limit of {limit} bytes", "upload a shorter or smaller file")
                    f.write(chunk)
            from ..media.probe import probe

            try:
                info = await run_in_threadpool(probe, part)
            except LipdubError as exc:
                why = exc.message.replace(str(part), filename)  # never show a server path
                raise _problem(415, f"not a playable video or audio file: {why}", "upload a video or audio file with a soundtrack") from None
            suffix = Path(filename).suffix.lower()
            final = folder / ("source" + (suffix if suffix in MEDIA_SUFFIXES else ".media"))
            part.rename(final)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        src = Source(id=sid, user_id=user.id, filename=filename, path=str(final.relative_to(settings.data_dir)), size_bytes=size,
                     duration_s=info.duration_s, has_video=info.has_video, media=info.model_dump(mode="json", exclude={"path"}))
        with db.session.begin() as s:
            s.add(src)
        return SourceOut(**{k: getattr(src, k) for k in SourceOut.model_fields})

    @app.get("/sources", response_model=list[SourceOut], tags=["sources"])
    def list_sources(user: UserDep) -> list[SourceOut]:
        """The caller's uploads, newest first."""
        with db.session() as s:
            rows = s.scalars(select(Source).where(Source.user_id == user.id).order_by(Source.created_at.desc())).all()
        return [SourceOut(**{k: getattr(r, k) for k in SourceOut.model_fields}) for r in rows]

    @app.get("/sources/{source_id}", response_model=SourceOut, tags=["sources"], responses={404: {"description": "not found"}})
    def get_source(source_id: ID, user: UserDep) -> SourceOut:
        src = own_source(source_id, user)
        return SourceOut(**{k: getattr(src, k) for k in SourceOut.model_fields})

    @app.get("/sources/{source_id}/media", tags=["sources"], responses={404: {"description": "not found"}},
             response_class=FileResponse)
    def source_media(source_id: ID, user: UserDep):
        """The uploaded file itself (for the side-by-side player)."""
        src = own_source(source_id, user)
        return FileResponse(settings.data_dir / src.path, filename=src.filename, content_disposition_type="inline")

    # -- jobs and campaigns --------------------------------------------------------------------
    @app.post("/jobs", status_code=201, response_model=JobOut, tags=["jobs"], responses={404: {"description": "no such source"}})
    def create_job(body: JobCreate, user: UserDep) -> JobOut:
        """Dub a source into one language (its own project directory); queued at once."""
        own_source(body.source_id, user)
        lang = check_language(body.language)
        jid = new_id()
        job = Job(id=jid, user_id=user.id, source_id=body.source_id, kind="dub", language=lang, project=f"projects/{jid}",
                  options=body.options.model_dump(), state="queued")
        with db.session.begin() as s:
            s.add(job)
        queue.submit(jid)
        return job_out(job)

    @app.post("/campaigns", status_code=201, response_model=CampaignOut, tags=["campaigns"], responses={404: {"description": "no such source"}})
    def create_campaign(body: CampaignCreate, user: UserDep) -> CampaignOut:
        """Dub a source into several languages: the language-independent stages run once (the
        ``prepare`` job), then one job per language, in parallel."""
        own_source(body.source_id, user)
        langs = list(dict.fromkeys(check_language(c) for c in body.languages))
        cid = new_id()
        opts = body.options.model_dump()
        camp = Campaign(id=cid, user_id=user.id, source_id=body.source_id, languages=langs, options=opts)
        prep = Job(id=new_id(), user_id=user.id, source_id=body.source_id, campaign_id=cid, kind="prepare", language=None,
                   project=f"projects/{cid}/shared", options=opts, until=PREPARE_UNTIL, state="queued")
        with db.session.begin() as s:
            s.add(camp)
            s.flush()
            s.add(prep)
            for L in langs:
                s.add(Job(id=new_id(), user_id=user.id, source_id=body.source_id, campaign_id=cid, kind="dub", language=L,
                          project=f"projects/{cid}/{L}", options=opts, state="waiting"))
        queue.submit(prep.id)
        return campaign_out(camp)

    @app.get("/campaigns/{campaign_id}", response_model=CampaignOut, tags=["campaigns"], responses={404: {"description": "not found"}})
    def get_campaign(campaign_id: ID, user: UserDep) -> CampaignOut:
        """The campaign's state (the most active of its jobs) and its jobs: ``prepare`` then one per language."""
        return campaign_out(get_campaign_row(campaign_id, user))

    def get_campaign_row(campaign_id: str, user: User) -> Campaign:
        with db.session() as s:
            c = s.get(Campaign, campaign_id)
        if c is None or c.user_id != user.id:
            raise _problem(404, f"no campaign {campaign_id}", "list your jobs with GET /jobs")
        return c

    @app.post("/campaigns/{campaign_id}/cancel", response_model=CampaignOut, tags=["campaigns"], responses={404: {"description": "not found"}})
    def cancel_campaign(campaign_id: ID, user: UserDep) -> CampaignOut:
        """Cancel every unfinished job of the campaign (running ones stop at their next progress event)."""
        c = get_campaign_row(campaign_id, user)
        with db.session.begin() as s:
            for job in s.scalars(select(Job).where(Job.campaign_id == c.id, Job.state.in_(ACTIVE))).all():
                if job.state == "running":
                    job.cancel_requested = True
                else:
                    job.state, job.finished_at = "cancelled", utcnow()
        return campaign_out(c)

    @app.get("/jobs", response_model=list[JobOut], tags=["jobs"])
    def list_jobs(user: UserDep, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[JobOut]:
        """The caller's jobs, newest first."""
        with db.session() as s:
            rows = s.scalars(select(Job).where(Job.user_id == user.id).order_by(Job.created_at.desc()).limit(limit)).all()
        return [job_out(j) for j in rows]

    @app.get("/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses={404: {"description": "not found"}})
    def get_job(job_id: ID, user: UserDep) -> JobOut:
        """State, per-stage progress (``done``/``total`` work items), attempts and download links."""
        return job_out(own_job(job_id, user))

    @app.post("/jobs/{job_id}/cancel", response_model=JobOut, tags=["jobs"],
              responses={404: {"description": "not found"}, 409: {"description": "already finished"}})
    def cancel_job(job_id: ID, user: UserDep) -> JobOut:
        """Cancel a waiting or queued job at once; a running one stops at its next progress event."""
        own_job(job_id, user)
        with db.session.begin() as s:
            job = s.get(Job, job_id)
            if job.state in FINISHED:
                raise _problem(409, f"job {job_id} is already {job.state}", "retry it instead")
            if job.state == "running":
                job.cancel_requested = True
            else:
                job.state, job.finished_at = "cancelled", utcnow()
        return job_out(own_job(job_id, user))

    def requeue(job_id: str, user: User, until: str | None, allowed: tuple[str, ...]) -> JobOut:
        job = own_job(job_id, user)
        if until is not None and job.kind != "dub":
            raise _problem(409, "only a language job can be re-synthesized or re-rendered", "use the campaign's language jobs")
        with db.session.begin() as s:
            values: dict[str, Any] = {"state": "queued", "error": None, "finished_at": None, "cancel_requested": False}
            if until is not None:
                values["until"] = until
            res = s.execute(update(Job).where(Job.id == job_id, Job.state.in_(allowed)).values(**values))
            if res.rowcount != 1:
                raise _problem(409, f"job {job_id} is {job.state}", f"only a job that is {' or '.join(allowed)} can do that")
            if job.kind == "prepare":  # its language jobs wait for it again
                s.execute(update(Job).where(Job.campaign_id == job.campaign_id, Job.kind == "dub",
                                            Job.state.in_(("failed", "cancelled"))).values(state="waiting", error=None))
        queue.submit(job_id)
        return job_out(own_job(job_id, user))

    conflict = {404: {"description": "not found"}, 409: {"description": "wrong state"}}

    @app.post("/jobs/{job_id}/retry", response_model=JobOut, tags=["jobs"], responses=conflict)
    def retry_job(job_id: ID, user: UserDep) -> JobOut:
        """Run a failed or cancelled job again: finished stages are reused from its project."""
        return requeue(job_id, user, None, ("failed", "cancelled"))

    @app.post("/jobs/{job_id}/resynthesize", response_model=JobOut, tags=["jobs"], responses=conflict)
    def resynthesize_job(job_id: ID, user: UserDep) -> JobOut:
        """Re-synthesize the edited lines (only those) and remix; preview them with the line audio."""
        return requeue(job_id, user, "synthesize", FINISHED)

    @app.post("/jobs/{job_id}/render", response_model=JobOut, tags=["jobs"], responses=conflict)
    def render_job(job_id: ID, user: UserDep) -> JobOut:
        """Run the job to the end again (after edits): only what depends on the edits is redone."""
        return requeue(job_id, user, "render", FINISHED)

    # -- the script ----------------------------------------------------------------------------
    def load_script(job: Job) -> Script:
        path = project_dir(settings, job) / "script.json"
        if not path.is_file():
            raise _problem(404, "this job has no script yet", "wait for the transcription to finish")
        return Script.load(path)

    @app.get("/jobs/{job_id}/script", response_model=Script, tags=["script"], responses={404: {"description": "not found"}})
    def get_script(job_id: ID, user: UserDep) -> Script:
        """The job's editable script: speakers, segments (times in seconds, source and target text, fit)."""
        return load_script(own_job(job_id, user))

    @app.patch("/jobs/{job_id}/segments/{segment_id}", response_model=Segment, tags=["script"],
               responses={404: {"description": "not found"}, 409: {"description": "job busy or line not translated"}})
    def edit_segment(job_id: ID, segment_id: Annotated[int, PathParam(ge=0, le=1_000_000)], body: SegmentEdit, user: UserDep) -> Segment:
        """Correct one line's target text and/or speaker; then ``resynthesize`` and ``render``."""
        job = own_job(job_id, user)
        if job.kind != "dub":
            raise _problem(409, "edit lines in a language job", "open the campaign's job for that language")
        if job.state in ACTIVE:
            raise _problem(409, f"job {job_id} is {job.state}", "wait for it to finish or cancel it, then edit")
        script = load_script(job)
        seg = next((s for s in script.segments if s.id == segment_id), None)
        if seg is None:
            raise _problem(404, f"no segment {segment_id}", "GET the script for the segment ids")
        if body.speaker is not None:
            if script.speaker(body.speaker) is None:
                raise _problem(422, f"no speaker {body.speaker!r}", f"use one of {', '.join(s.id for s in script.speakers)}")
            seg.speaker = body.speaker
        if body.text is not None:
            if job.language not in seg.targets:
                raise _problem(409, f"segment {segment_id} has no {job.language} line yet", "run the translation first")
            seg.targets[job.language].text = body.text.strip() or seg.targets[job.language].text
        try:
            with Project(project_dir(settings, job)) as proj:
                proj.save_script(script)
        except LipdubError as exc:
            raise _problem(409, exc.message, exc.hint) from None
        return seg

    @app.get("/jobs/{job_id}/segments/{segment_id}/audio/{which}", tags=["script"], response_class=Response,
             responses={200: {"content": {"audio/wav": {}}}, 404: {"description": "not found"}})
    def segment_audio(job_id: ID, segment_id: Annotated[int, PathParam(ge=0, le=1_000_000)], which: AudioWhich, user: UserDep):
        """One line's audio as WAV: ``source`` (the original soundtrack over the segment) or ``dub``
        (the fitted target speech)."""
        import soundfile as sf

        job = own_job(job_id, user)
        script = load_script(job)
        seg = next((s for s in script.segments if s.id == segment_id), None)
        if seg is None:
            raise _problem(404, f"no segment {segment_id}", "GET the script for the segment ids")
        root = project_dir(settings, job)
        if which is AudioWhich.source:
            wav = root / "audio/mix_48k.wav"
            if not wav.is_file():
                raise _problem(404, "the source audio is not extracted yet", "wait for the ingest stage")
            info = sf.info(str(wav))
            a, b = int(seg.start_s * info.samplerate), int(seg.end_s * info.samplerate)
            data, sr = sf.read(str(wav), start=max(0, a), stop=max(a + 1, b), dtype="float32")
            buf = io.BytesIO()
            sf.write(buf, data, sr, format="WAV", subtype="PCM_16")
            return Response(buf.getvalue(), media_type="audio/wav")
        t = seg.targets.get(job.language or "")
        if t is None or t.fit is None or not t.fit.audio_path:
            raise _problem(404, f"segment {segment_id} has no dubbed audio yet", "re-synthesize the job")
        path = (root / t.fit.audio_path).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise _problem(404, "the dubbed line's audio is missing", "re-synthesize the job")
        return FileResponse(path, media_type="audio/wav")

    # -- downloads and report ------------------------------------------------------------------
    def report_of(job: Job) -> dict[str, Any]:
        from ..project import Manifest
        from .report import build_report

        root = project_dir(settings, job)
        if job.kind != "dub" or not (root / "manifest.json").is_file():
            raise _problem(404, "no report yet", "wait for the job to run")
        manifest = Manifest.model_validate_json((root / "manifest.json").read_text(encoding="utf-8"))
        return build_report(manifest, root, job.language)

    @app.get("/jobs/{job_id}/report", tags=["downloads"], responses={404: {"description": "not found"}})
    def get_report(job_id: ID, user: UserDep) -> dict[str, Any]:
        """QC summary of a language job: the verdict, reasons and checks of its quality report (the
        same as the ``report`` download, which holds every figure and plot), plus the mix's loudness,
        the lip-sync plan and stage timings as soon as those stages ran (verdict None until then)."""
        return report_of(own_job(job_id, user))

    @app.get("/jobs/{job_id}/download/{kind}", tags=["downloads"], response_class=FileResponse,
             responses={404: {"description": "not rendered yet"}})
    def download(job_id: ID, kind: DownloadKind, user: UserDep, inline: bool = False):
        """A deliverable of a language job, picked by ``kind`` (never by path)."""
        job = own_job(job_id, user)
        path = deliverables(job).get(kind.value)
        if path is None or not path.is_file():
            raise _problem(404, f"no {kind.value} for job {job_id} yet", "wait for the render to finish")
        return FileResponse(path, filename=path.name, content_disposition_type="inline" if inline else "attachment")

    # -- web pages -----------------------------------------------------------------------------
    def page_user(request: Request) -> User | None:
        token = request.cookies.get(COOKIE)
        return db.user_for_token(token) if token else None

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request):
        return templates.TemplateResponse(request, "login.html", {"error": None})

    @app.post("/login", response_class=HTMLResponse, include_in_schema=False)
    def login(request: Request, token: Annotated[str, Form(max_length=500)]):
        if db.user_for_token(token) is None:
            return templates.TemplateResponse(request, "login.html", {"error": "unknown token"}, status_code=401)
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return resp

    @app.get("/logout", include_in_schema=False)
    def logout():
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request):
        user = page_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        return templates.TemplateResponse(request, "index.html", {"user": user})

    @app.get("/ui/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    def job_page(request: Request, job_id: ID):
        user = page_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        job = own_job(job_id, user)
        return templates.TemplateResponse(request, "job.html", {"user": user, "job": job})

    return app
