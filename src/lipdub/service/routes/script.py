"""``/jobs/{id}/script`` and ``/jobs/{id}/segments/{n}``: the editable script, line edits and line audio."""

from __future__ import annotations

import io

import soundfile as sf
from fastapi import APIRouter, Response
from fastapi.responses import FileResponse

from ...errors import LipdubError
from ...project import Project
from ...script import Script, Segment
from ..db import ACTIVE, Job
from ..deps import SessionDep, SettingsDep, UserDep, own_job, problem
from ..jobs import project_dir
from ..schemas import ID, AudioWhich, SegmentEdit, SegmentId
from ..settings import ServiceSettings
from ..views import load_script

router = APIRouter(tags=["script"])


def _segment(script: Script, segment_id: int) -> Segment:
    seg = next((s for s in script.segments if s.id == segment_id), None)
    if seg is None:
        raise problem(404, f"no segment {segment_id}", "GET the script for the segment ids")
    return seg


def _save(settings: ServiceSettings, job: Job, script: Script) -> None:
    """Write the script under the project's lock; 409 (in API words) while a run holds the project."""
    try:
        project = Project(project_dir(settings, job))
    except LipdubError:
        raise problem(409, f"job {job.id}'s project cannot be read", "retry the job to rebuild it") from None
    try:
        with project as proj:
            proj.save_script(script)
    except LipdubError:
        raise problem(409, f"job {job.id} is busy: a run is using its project", "wait for the run to finish, then edit again") from None


@router.get("/jobs/{job_id}/script", response_model=Script, responses={404: {"description": "not found"}})
def get_script(job_id: ID, user: UserDep, settings: SettingsDep, s: SessionDep) -> Script:
    """The job's editable script: speakers, segments (times in seconds, source and target text, fit)."""
    return load_script(settings, own_job(s, job_id, user))


@router.patch("/jobs/{job_id}/segments/{segment_id}", response_model=Segment,
              responses={404: {"description": "not found"}, 409: {"description": "job busy or line not translated"}})
def edit_segment(job_id: ID, segment_id: SegmentId, body: SegmentEdit, user: UserDep, settings: SettingsDep, s: SessionDep) -> Segment:
    """Correct one line's target text and/or speaker; then ``resynthesize`` and ``render``."""
    job = own_job(s, job_id, user)
    if job.kind != "dub":
        raise problem(409, "edit lines in a language job", "open the campaign's job for that language")
    if job.state in ACTIVE:
        raise problem(409, f"job {job_id} is {job.state}", "wait for it to finish or cancel it, then edit")
    script = load_script(settings, job)
    seg = _segment(script, segment_id)
    if body.speaker is not None:
        if script.speaker(body.speaker) is None:
            raise problem(422, f"no speaker {body.speaker!r}", f"use one of {', '.join(s.id for s in script.speakers)}")
        seg.speaker = body.speaker
    if body.text is not None:
        if job.language not in seg.targets:
            raise problem(409, f"segment {segment_id} has no {job.language} line yet", "run the translation first")
        seg.targets[job.language].text = body.text.strip() or seg.targets[job.language].text
    _save(settings, job, script)
    return seg


@router.get("/jobs/{job_id}/segments/{segment_id}/audio/{which}", response_class=Response,
            responses={200: {"content": {"audio/wav": {}}}, 404: {"description": "not found"}})
def segment_audio(job_id: ID, segment_id: SegmentId, which: AudioWhich, user: UserDep, settings: SettingsDep, s: SessionDep):
    """One line's audio as WAV: ``source`` (the original soundtrack over the segment) or ``dub``
    (the fitted target speech)."""
    job = own_job(s, job_id, user)
    seg = _segment(load_script(settings, job), segment_id)
    root = project_dir(settings, job)
    if which is AudioWhich.source:
        wav = root / "audio/mix_48k.wav"
        if not wav.is_file():
            raise problem(404, "the source audio is not extracted yet", "wait for the ingest stage")
        info = sf.info(str(wav))
        a, b = int(seg.start_s * info.samplerate), int(seg.end_s * info.samplerate)
        data, sr = sf.read(str(wav), start=max(0, a), stop=max(a + 1, b), dtype="float32")
        buf = io.BytesIO()
        sf.write(buf, data, sr, format="WAV", subtype="PCM_16")
        return Response(buf.getvalue(), media_type="audio/wav")
    t = seg.targets.get(job.language or "")
    if t is None or t.fit is None or not t.fit.audio_path:
        raise problem(404, f"segment {segment_id} has no dubbed audio yet", "re-synthesize the job")
    path = (root / t.fit.audio_path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise problem(404, "the dubbed line's audio is missing", "re-synthesize the job")
    return FileResponse(path, media_type="audio/wav")
