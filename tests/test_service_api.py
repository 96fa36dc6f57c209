"""The studio service's REST API, embedded mode (SQLite + in-process pool), on a real dub of th2.

One job (th2 -> es, no lip-sync or separation, tiny.en ASR: the fast path) is shared by the module;
editing and re-synthesis run on it; cancel and retry on a second job that is stopped early.
"""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from service_helpers import TOKENS_ENV, auth, upload, wait_job  # noqa: E402

CLIP = "th2_retalking_face1.mp4"
FAST = {"lipsync": "none", "separation": "none", "asr_model": "tiny.en", "voice_search": 0}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from lipdub.service.app import create_app
    from lipdub.service.settings import ServiceSettings

    data = tmp_path_factory.mktemp("studio") / "data"
    settings = ServiceSettings(data_dir=data, tokens=TOKENS_ENV, embedded_workers=1, heartbeat_s=1, stale_after_s=30)
    with TestClient(create_app(settings)) as client:
        yield client, settings


@pytest.fixture(scope="module")
def done_job(service, testdata):
    """A finished job plus what the polling saw while it ran."""
    client, _ = service
    src = upload(client, testdata / CLIP)
    assert src.status_code == 201, src.text
    r = client.post("/jobs", json={"source_id": src.json()["id"], "language": "es", "options": FAST}, headers=auth())
    assert r.status_code == 201, r.text
    seen = []
    job = wait_job(client, r.json()["id"], until=lambda j: seen.append(j) or j["state"] in ("done", "failed", "cancelled"))
    assert job["state"] == "done", job["error"]
    return job, seen, src.json()


def test_health_and_schema(service):
    client, _ = service
    assert client.get("/health").json() == {"status": "ok", "queue": "embedded"}
    assert client.get("/openapi.json").status_code == 401
    paths = client.get("/openapi.json", headers=auth()).json()["paths"]
    for p in ("/sources", "/jobs", "/campaigns", "/jobs/{job_id}/script", "/jobs/{job_id}/download/{kind}"):
        assert p in paths


def test_upload_probes_the_media(done_job):
    _, _, src = done_job
    assert src["has_video"] is True and src["filename"] == CLIP
    assert abs(src["duration_s"] - 6.13) < 0.1


def test_job_reports_per_stage_progress(done_job):
    job, seen, _ = done_job
    states = [j["state"] for j in seen]
    assert "running" in states and states[-1] == "done"
    # while running, a stage was seen in progress (state running) before it finished
    assert any(s["state"] == "running" for j in seen for s in j["stages"])
    stages = {s["stage"]: s for s in job["stages"]}
    for name in ("ingest", "vad", "diarize", "faces", "transcribe", "script", "translate:es", "synthesize:es", "mix:es", "render:es"):
        assert stages[name]["state"] == "done", name
        assert stages[name]["duration_s"] is not None
    assert job["attempts"][0]["outcome"] == "done" and "render:es" in job["attempts"][0]["ran"]


def test_downloads_and_report(service, done_job):
    from lipdub.media.probe import probe

    client, settings = service
    job, _, _ = done_job
    assert set(job["downloads"]) >= {"video", "subtitles", "subtitles_vtt", "source_subtitles", "stem_dialogue", "stem_me", "stem_mix", "report", "report_html"}
    video = client.get(job["downloads"]["video"], headers=auth())
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.headers["content-disposition"].startswith("attachment") and video.headers["x-content-type-options"] == "nosniff"
    assert client.get(job["downloads"]["video"] + "?inline=true", headers=auth()).headers["content-disposition"].startswith("inline")
    out = settings.data_dir / "check.mp4"
    out.write_bytes(video.content)
    info = probe(out)
    assert info.has_video and abs(info.duration_s - 6.13) < 0.3
    script = client.get(f"/jobs/{job['id']}/script", headers=auth()).json()
    srt = client.get(job["downloads"]["subtitles"], headers=auth()).text
    assert script["segments"] and script["segments"][0]["targets"]["es"]["text"].split()[0] in srt
    stem = client.get(job["downloads"]["stem_mix"], headers=auth())
    assert stem.content[:4] == b"RIFF"
    qc = client.get(job["downloads"]["report"], headers=auth())
    assert qc.status_code == 200 and qc.json()["verdict"] in ("pass", "warn", "fail")  # the QC stage's full report
    page = client.get(job["downloads"]["report_html"], headers=auth())
    assert "<html" in page.text.lower() and page.headers["content-type"].startswith("text/html")
    assert "sandbox" in page.headers["content-security-policy"] and "script-src" not in page.headers["content-security-policy"]
    report = client.get(f"/jobs/{job['id']}/report", headers=auth()).json()  # the page's summary
    assert report["language"] == "es" and report["rendered"] is True
    assert abs(report["loudness"]["integrated_lufs"] - (-24.0)) < 1.5
    # the page says what the downloadable report says, check by check
    full = qc.json()
    assert report["verdict"] == full["verdict"] and report["reasons"] == full["reasons"]
    assert {n: c["verdict"] for n, c in report["checks"].items()} == {c["name"]: c["verdict"] for c in full["checks"]}
    assert report["checks"]["true_peak_dbtp"]["unit"] == "dBTP"


def test_edit_resynthesize(service, done_job):
    client, settings = service
    job, _, _ = done_job
    jid = job["id"]
    script = client.get(f"/jobs/{jid}/script", headers=auth()).json()
    seg = script["segments"][0]
    new_text = "Hola, esta frase la ha corregido una persona."
    r = client.patch(f"/jobs/{jid}/segments/{seg['id']}", json={"text": new_text}, headers=auth())
    assert r.status_code == 200 and r.json()["targets"]["es"]["text"] == new_text
    r = client.patch(f"/jobs/{jid}/segments/{seg['id']}", json={"speaker": "NOBODY"}, headers=auth())
    assert r.status_code == 422
    assert client.post(f"/jobs/{jid}/resynthesize", headers=auth()).status_code == 200
    job2 = wait_job(client, jid)
    assert job2["state"] == "done", job2["error"]
    last = job2["attempts"][-1]
    assert "synthesize:es" in last["ran"] and "mix:es" in last["ran"] and "render:es" not in last["ran"]
    assert {"ingest", "transcribe", "faces", "translate:es"} <= set(last["skipped"])
    manifest = json.loads((settings.data_dir / "projects" / jid / "manifest.json").read_text())
    assert manifest["stages"]["synthesize:es"]["details"]["synthesized"] == [seg["id"]]  # that line only
    dub = client.get(f"/jobs/{jid}/segments/{seg['id']}/audio/dub", headers=auth())
    src = client.get(f"/jobs/{jid}/segments/{seg['id']}/audio/source", headers=auth())
    assert dub.status_code == 200 and src.status_code == 200 and src.content[:4] == b"RIFF"
    import io

    import soundfile as sf

    data, sr = sf.read(io.BytesIO(src.content))
    assert abs(len(data) / sr - (seg["end_s"] - seg["start_s"])) < 0.01
    # re-rendering after the edit is covered by tests/test_service_browser.py (same endpoints, from the page)


def test_busy_project_answers_409_in_api_words(service, done_job):
    """A line edited while a run holds the job's project: 409 that names no server path or CLI flag."""
    from lipdub.project import Project

    client, settings = service
    job, _, _ = done_job
    seg = client.get(f"/jobs/{job['id']}/script", headers=auth()).json()["segments"][0]
    with Project(settings.data_dir / "projects" / job["id"]):  # the project's lock, as a running pipeline holds it
        r = client.patch(f"/jobs/{job['id']}/segments/{seg['id']}", json={"text": "Hola."}, headers=auth())
    assert r.status_code == 409, r.text
    assert "busy" in r.json()["detail"]["message"]
    for leak in (str(settings.data_dir), "projects/", "--project", "lipdub "):
        assert leak not in r.text, leak


def test_cancel_running_job_then_retry_resumes(service, done_job, testdata):
    client, _ = service
    _, _, src = done_job
    r = client.post("/jobs", json={"source_id": src["id"], "language": "ca", "options": FAST}, headers=auth())
    jid = r.json()["id"]
    wait_job(client, jid, until=lambda j: any(s["stage"] == "ingest" and s["state"] == "done" for s in j["stages"]), timeout_s=120)
    r = client.post(f"/jobs/{jid}/cancel", headers=auth())
    assert r.status_code == 200
    job = wait_job(client, jid, timeout_s=120)
    assert job["state"] == "cancelled"
    finished = set(job["attempts"][0]["ran"])
    assert "ingest" in finished and "render:ca" not in finished
    assert client.post(f"/jobs/{jid}/cancel", headers=auth()).status_code == 409
    assert client.post(f"/jobs/{jid}/retry", headers=auth()).status_code == 200
    job = wait_job(client, jid, timeout_s=120, until=lambda j: len(j["attempts"]) == 2 and "ingest" in j["attempts"][1]["skipped"])
    assert client.post(f"/jobs/{jid}/cancel", headers=auth()).status_code in (200, 409)
    job = wait_job(client, jid, timeout_s=120)
    assert finished <= set(job["attempts"][1]["skipped"])  # nothing finished was redone


def test_campaign_fans_out_after_prepare(tmp_path, testdata):
    """The campaign's structure (the Celery test runs one to completion): a prepare job and one waiting job per language."""
    from lipdub.service.app import create_app
    from lipdub.service.settings import ServiceSettings

    settings = ServiceSettings(data_dir=tmp_path / "data", tokens=TOKENS_ENV, embedded_workers=0)
    with TestClient(create_app(settings)) as client:
        sid = upload(client, testdata / CLIP).json()["id"]
        r = client.post("/campaigns", json={"source_id": sid, "languages": ["es", "ca", "es"]}, headers=auth())
        assert r.status_code == 201, r.text
        c = r.json()
        assert c["languages"] == ["es", "ca"] and c["state"] == "queued"
        kinds = sorted((j["kind"], j["language"], j["state"]) for j in c["jobs"])
        assert kinds == [("dub", "ca", "waiting"), ("dub", "es", "waiting"), ("prepare", None, "queued")]
        assert client.get(f"/campaigns/{c['id']}", headers=auth()).json()["id"] == c["id"]
        cancelled = client.post(f"/campaigns/{c['id']}/cancel", headers=auth()).json()
        assert cancelled["state"] == "cancelled" and {j["state"] for j in cancelled["jobs"]} == {"cancelled"}
        bad = client.post("/campaigns", json={"source_id": sid, "languages": ["qq"]}, headers=auth())
        assert bad.status_code == 422 and "qq" in bad.json()["detail"]["message"]
        # a queued job is cancelled at once; retried, it is queued again
        jid = client.post("/jobs", json={"source_id": sid, "language": "es"}, headers=auth()).json()["id"]
        assert client.post(f"/jobs/{jid}/cancel", headers=auth()).json()["state"] == "cancelled"
        assert client.post(f"/jobs/{jid}/retry", headers=auth()).json()["state"] == "queued"
        time.sleep(0.2)
        assert client.get(f"/jobs/{jid}", headers=auth()).json()["state"] == "queued"  # no workers: nothing runs


def test_lock_of_a_sigkilled_run_is_not_stale(tmp_path):
    """The project lock is an fcntl lock: the kernel drops it with its process, so a worker resuming
    a job whose worker was killed with SIGKILL is not blocked (the Celery test does this end to end)."""
    import signal
    import subprocess
    import sys

    from lipdub.errors import InputError
    from lipdub.project import Project

    code = ("import sys, time; from lipdub.project import Project; p = Project(sys.argv[1]); p.__enter__(); "
            "print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(InputError, match="in use"):
        with Project(tmp_path):
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    with Project(tmp_path) as p:  # the dead owner's lock is gone
        assert p.root == tmp_path.resolve()


def test_stale_job_is_requeued_once_and_its_old_worker_cannot_finish_it(tmp_path):
    """The job-store transitions behind the kill test: a silent worker's job is requeued by exactly
    one reaper, claimed by one worker, and the superseded worker's late outcome is ignored."""
    from lipdub.service.db import Database, Job, Source, User
    from lipdub.service.jobs import _finish

    db = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    with db.session.begin() as s:
        s.add(User(id="u" * 32, name="u"))
        s.add(Source(id="s" * 32, user_id="u" * 32, filename="a.mp4", path="sources/a", size_bytes=1, duration_s=1.0, has_video=True))
        s.add(Job(id="j" * 32, user_id="u" * 32, source_id="s" * 32, project="projects/j", state="queued"))
    jid = "j" * 32
    assert db.claim(jid, "A") and not db.claim(jid, "B")  # one worker wins
    assert db.stale_jobs(stale_after_s=60) == []  # fresh heartbeat: left alone
    time.sleep(0.3)
    assert db.stale_jobs(stale_after_s=0.1) == [jid]
    assert db.stale_jobs(stale_after_s=0.1) == []  # requeued once
    assert db.claim(jid, "B")
    assert _finish(db, jid, "A", "failed", "late") is False  # A was superseded
    with db.session() as s:
        job = s.get(Job, jid)
        assert (job.state, job.worker) == ("running", "B")
    assert _finish(db, jid, "B", "done") is True


def test_every_job_option_reaches_the_dub_config(tmp_path):
    """Each option a client may send (JobOptions) is a DubConfig field, and a value sent reaches the
    job's DubConfig (none is accepted and dropped)."""
    from lipdub.config import DubConfig
    from lipdub.service.db import Job, Source
    from lipdub.service.jobs import dub_config
    from lipdub.service.schemas import JobOptions
    from lipdub.service.settings import ServiceSettings

    assert set(JobOptions.model_fields) <= set(DubConfig.model_fields)
    sent = {"voice_search": 2, "asr_model": "tiny.en", "separation": "none", "max_stretch": 1.1}
    job = Job(id="j1", source_id="s1", language="es", project="projects/j1", options=JobOptions(**sent).model_dump())
    cfg = dub_config(ServiceSettings(data_dir=tmp_path, tokens="alice:x"), job, Source(id="s1", path="a.mp4"), ["es"])
    assert {k: getattr(cfg, k) for k in sent} == sent
