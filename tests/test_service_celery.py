"""The studio service at scale: a real Redis server and real Celery worker processes (`lipdub worker`).

A campaign dubs th2 into Spanish and Catalan (a real dub: DeepFilterNet separation, Whisper tiny.en, retrieval
lip-sync): the language-independent stages run once (the prepare job), then one job per language on
two workers in parallel. One worker is killed with SIGKILL in the middle of its language job; the
job's heartbeat stops, it is requeued, and another worker finishes it, reusing every stage that had
finished.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("celery")
pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from service_helpers import TOKENS_ENV, auth, free_port, upload  # noqa: E402

CLIP = "th2_retalking_face1.mp4"
pytestmark = pytest.mark.slow  # whole dubs of th2 (about 1.5-3 min on 2 cores)
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Redis on a free port, the service settings, and a function starting `lipdub worker` processes."""
    if not os.path.exists(REDIS):
        pytest.fail("redis-server is missing: scripts/setup.sh dev installs it (apt redis-server)")
    import redis

    root = tmp_path_factory.mktemp("celery")
    port = free_port()
    rproc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                              "--dir", str(root)], stdout=open(root / "redis.log", "wb"), stderr=subprocess.STDOUT)
    client = redis.Redis(port=port)
    t_end = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < t_end and rproc.poll() is None, (root / "redis.log").read_text()
            time.sleep(0.1)
    env = {**os.environ, "LIPDUB_DATA_DIR": str(root / "data"), "LIPDUB_BROKER_URL": f"redis://127.0.0.1:{port}/0",
           "LIPDUB_TOKENS": TOKENS_ENV, "LIPDUB_HEARTBEAT_S": "1", "LIPDUB_STALE_AFTER_S": "6"}
    workers: list[subprocess.Popen] = []

    def start_worker(name: str) -> subprocess.Popen:
        log = open(root / f"{name}.log", "wb")
        p = subprocess.Popen([sys.executable, "-m", "lipdub", "worker", "--name", f"{name}@test"], env=env, stdout=log, stderr=subprocess.STDOUT)
        workers.append(p)
        return p

    from lipdub.service.settings import ServiceSettings

    settings = ServiceSettings(data_dir=root / "data", broker_url=env["LIPDUB_BROKER_URL"], tokens=TOKENS_ENV, heartbeat_s=1, stale_after_s=6)
    yield {"settings": settings, "start_worker": start_worker, "workers": workers, "root": root}
    for p in workers:
        if p.poll() is None:
            p.terminate()
    for p in workers:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
    rproc.terminate()
    rproc.wait(10)


def test_campaign_two_languages_with_a_killed_worker(stack, testdata):
    from lipdub.media.probe import probe
    from lipdub.service.app import create_app

    w1, w2 = stack["start_worker"]("w1"), stack["start_worker"]("w2")
    with TestClient(create_app(stack["settings"])) as client:
        assert client.get("/health").json()["queue"] == "celery"
        sid = upload(client, testdata / CLIP).json()["id"]
        r = client.post("/campaigns", json={"source_id": sid, "languages": ["es", "ca"], "options": {"asr_model": "tiny.en", "voice_search": 0}}, headers=auth())
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        killed = None
        both_running = False
        t_end = time.monotonic() + 900
        while True:
            camp = client.get(f"/campaigns/{cid}", headers=auth()).json()
            dubs = [j for j in camp["jobs"] if j["kind"] == "dub"]
            both_running |= all(j["state"] == "running" for j in dubs)
            if killed is None:
                for j in dubs:
                    ran = j["attempts"][-1]["ran"] if j["attempts"] else []
                    busy = any(s["state"] == "running" for s in j["stages"])
                    if j["state"] == "running" and ran and busy and j["attempts"][-1]["outcome"] is None:
                        pid = int(j["attempts"][-1]["worker"].split(":")[1])
                        assert pid in (w1.pid, w2.pid)
                        os.kill(pid, signal.SIGKILL)
                        killed = j["id"]
                        stack["start_worker"]("w3")  # a replacement: two workers again
                        break
            if camp["state"] in ("done", "failed", "cancelled"):
                break
            assert time.monotonic() < t_end, f"campaign still {camp['state']}: {[(j['kind'], j['state']) for j in camp['jobs']]}"
            time.sleep(0.5)
        logs = {p.name: p.read_text(errors="replace")[-3000:] for p in stack["root"].glob("w*.log")}
        assert camp["state"] == "done", ([(j["kind"], j["language"], j["state"], j["error"]) for j in camp["jobs"]], logs)
        assert killed is not None, "no language job was caught running to kill its worker"
        assert both_running, "the two language jobs never ran at the same time"

        jobs = {j["id"]: j for j in camp["jobs"]}
        prepare = next(j for j in camp["jobs"] if j["kind"] == "prepare")
        shared = set(prepare["attempts"][0]["ran"])
        assert {"ingest", "separate", "vad", "diarize", "faces", "transcribe", "script", "translate:es", "translate:ca"} <= shared
        for j in camp["jobs"]:
            if j["kind"] != "dub":
                continue
            L = j["language"]
            mine = {s for s in shared if not s.startswith("translate:") or s == f"translate:{L}"}
            assert mine <= set(j["attempts"][0]["skipped"]), "a language job redid a prepared stage"
            assert set(j["downloads"]) >= {"video", "subtitles", "stem_mix", "report"}
            out = stack["root"] / f"out.{L}.mp4"
            out.write_bytes(client.get(j["downloads"]["video"], headers=auth()).content)
            info = probe(out)
            assert info.has_video and abs(info.duration_s - 6.13) < 0.3
            assert f"lipsync:{L}" in j["attempts"][-1]["ran"] + j["attempts"][-1]["skipped"]

        job = jobs[killed]
        first, last = job["attempts"][0], job["attempts"][-1]
        assert len(job["attempts"]) == 2 and first["outcome"] is None and last["outcome"] == "done"
        assert last["worker"] != first["worker"]
        finished_before_kill = set(first["ran"])
        assert finished_before_kill, "the killed attempt had finished no stage"
        assert finished_before_kill <= set(last["skipped"]), "a stage finished before the kill was redone"
        assert not finished_before_kill & set(last["ran"])
        assert f"render:{job['language']}" in last["ran"]
