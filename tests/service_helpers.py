"""Helpers shared by the studio service tests (tests/test_service_*.py)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

TOKENS = {"alice": "alice-token-0001", "bob": "bob-token-0002"}
TOKENS_ENV = ",".join(f"{u}={t}" for u, t in TOKENS.items())
ACTIVE = ("waiting", "queued", "running")


def auth(user: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upload(client, path: Path, user: str = "alice", filename: str | None = None):
    """POST the file as the raw body; returns the response."""
    return client.post("/sources", params={"filename": filename or path.name}, content=path.read_bytes(), headers=auth(user))


def wait_job(client, job_id: str, timeout_s: float = 300, user: str = "alice", until=lambda j: j["state"] not in ACTIVE) -> dict:
    """Poll GET /jobs/{id} until ``until(job)``; returns the job (AssertionError on timeout)."""
    t_end = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/jobs/{job_id}", headers=auth(user)).json()
        if until(job):
            return job
        assert time.monotonic() < t_end, f"job {job_id} still {job['state']} after {timeout_s} s: {job['stages']}"
        time.sleep(0.5)


class LiveServer:
    """The app served by uvicorn on a free localhost port in a thread (for the browser and schemathesis)."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        t_end = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < t_end, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (relative), to compare before and after."""
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()
