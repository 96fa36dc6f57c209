"""The project directory (DESIGN.md section 2): manifest, script and artifacts of one dub.

Layout::

    PROJECT/
      manifest.json        inputs, config, one record per stage (input hash, artifacts, timings)
      script.json          speakers and segments, editable
      media.json           probe of the source (ingest)
      audio/               48 kHz mix, 16 kHz analysis audio, dialogue and M&E stems
      analysis/            vad.json, diarization.json, transcript.json
      tts/<lang>/          one WAV per fitted segment
      stems/<lang>/        dialogue, M&E, full mix of the dub

A stage is skipped when its record's ``input_hash`` equals the hash of its current inputs and its
artifacts still exist. Records are written only after the artifacts are complete (each written to a
temp file then renamed), so a run killed at any point resumes at the stage it was in.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from . import __version__
from .errors import InputError
from .layout import ProjectLayout
from .script import Script

MANIFEST = ProjectLayout.MANIFEST
SCRIPT = ProjectLayout.SCRIPT


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


def hash_json(*parts: Any) -> str:
    """Hex SHA-256 of a JSON rendering (sorted keys) of ``parts``: a stage's input hash."""
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class StageRecord(BaseModel):
    """What one stage did: input hash, artifacts (paths relative to the project) and timings."""

    name: str
    input_hash: str
    output_hash: str = ""
    backend: str | None = None
    artifacts: list[str] = Field(default_factory=list)
    started_at: str
    finished_at: str
    duration_s: float
    media_duration_s: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def rtf(self) -> float | None:
        """Real-time factor: processing seconds per media second."""
        if self.media_duration_s:
            return self.duration_s / self.media_duration_s
        return None


class RunRecord(BaseModel):
    """One invocation of the pipeline on this project: which stages ran and which were reused."""

    started_at: str
    finished_at: str | None = None
    ran: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)


class Manifest(BaseModel):
    version: int = 1
    lipdub_version: str = __version__
    input_path: str = ""
    input_sha256: str = ""
    input_size_bytes: int = 0
    input_mtime_ns: int = 0
    config: dict[str, Any] = Field(default_factory=dict)
    stages: dict[str, StageRecord] = Field(default_factory=dict)
    runs: list[RunRecord] = Field(default_factory=list)


class Project:
    """A project directory. Use as a context manager to hold its lock while running.

    Args:
        root: the directory (created if missing).

    Raises:
        InputError: another lipdub process holds the project's lock, or the manifest is corrupt.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = None
        self._mutex = threading.RLock()  # the video and audio branches record stages concurrently
        self.manifest = self._load_manifest()

    # -- locking ---------------------------------------------------------------------------
    def __enter__(self) -> "Project":
        fd = os.open(self.root / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(
                f"project {self.root} is in use by another lipdub process",
                "wait for it to finish or pass another --project directory",
            ) from None
        self._lock_fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- paths and files -------------------------------------------------------------------
    def path(self, rel: str) -> Path:
        """Absolute path of ``rel`` inside the project (parent directories created)."""
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def rel(self, path: str | os.PathLike) -> str:
        return os.path.relpath(Path(path).resolve(), self.root)

    def write_json(self, rel: str, data: Any) -> Path:
        """Write JSON atomically; pydantic models are dumped with their aliases."""
        if isinstance(data, BaseModel):
            text = data.model_dump_json(indent=2)
        else:
            text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
        p = self.path(rel)
        tmp = p.with_name(f".{p.name}.{threading.get_ident()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
        return p

    def read_json(self, rel: str) -> Any:
        return json.loads((self.root / rel).read_text(encoding="utf-8"))

    # -- manifest --------------------------------------------------------------------------
    def _load_manifest(self) -> Manifest:
        p = self.root / MANIFEST
        if not p.exists():
            return Manifest()
        try:
            return Manifest.model_validate_json(p.read_text(encoding="utf-8"))
        except Exception as exc:
            raise InputError(
                f"{p} is corrupt ({type(exc).__name__})",
                "delete manifest.json to recompute every stage (artifacts are kept)",
            ) from exc

    def save_manifest(self) -> None:
        with self._mutex:
            self.write_json(MANIFEST, self.manifest)

    def is_fresh(self, stage: str, input_hash: str) -> bool:
        """True when ``stage`` ran with the same inputs and all its artifacts still exist."""
        rec = self.manifest.stages.get(stage)
        if rec is None or rec.input_hash != input_hash:
            return False
        return all((self.root / a).exists() for a in rec.artifacts)

    def record(
        self,
        stage: str,
        input_hash: str,
        artifacts: list[str | os.PathLike],
        started_monotonic: float,
        started_at: str,
        backend: str | None = None,
        media_duration_s: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> StageRecord:
        """Store the record of a finished stage and save the manifest.

        ``output_hash`` hashes the artifacts' bytes, so downstream stages key on content.
        """
        rels = [a if isinstance(a, str) and not os.path.isabs(a) else self.rel(a) for a in artifacts]
        out_hash = hash_json([(r, sha256_file(self.root / r)) for r in sorted(rels) if (self.root / r).is_file()])
        rec = StageRecord(
            name=stage,
            input_hash=input_hash,
            output_hash=out_hash,
            backend=backend,
            artifacts=rels,
            started_at=started_at,
            finished_at=_now(),
            duration_s=round(time.monotonic() - started_monotonic, 4),
            media_duration_s=media_duration_s,
            details=details or {},
        )
        with self._mutex:
            self.manifest.stages[stage] = rec
            self.save_manifest()
        return rec

    def has_dialogue_stem(self) -> bool:
        """True when the separate stage made a dialogue / M&E pair: a separation backend other than
        ``none`` ran and both stems exist (``audio/dialogue_48k.wav``, ``audio/me_48k.wav``)."""
        sep = self.manifest.stages.get("separate")
        return (sep is not None and sep.backend != "none" and (self.root / ProjectLayout.DIALOGUE_48K).exists()
                and (self.root / ProjectLayout.ME_48K).exists())

    def output_hash(self, stage: str) -> str:
        rec = self.manifest.stages.get(stage)
        return rec.output_hash if rec else ""

    # -- script ----------------------------------------------------------------------------
    @property
    def script_path(self) -> Path:
        return self.root / SCRIPT

    def load_script(self) -> Script | None:
        """``script.json``, or None when it does not exist yet."""
        return Script.load(self.script_path) if self.script_path.exists() else None

    def save_script(self, script: Script) -> None:
        script.save(self.script_path)


def input_sha256(project: "Project", path: Path) -> str:
    """SHA-256 of the source, reusing the manifest's value when path, size and mtime are unchanged."""
    st = path.stat()
    m = project.manifest
    if m.input_path == str(path) and m.input_size_bytes == st.st_size and m.input_mtime_ns == st.st_mtime_ns and m.input_sha256:
        return m.input_sha256
    m.input_path, m.input_size_bytes, m.input_mtime_ns = str(path), st.st_size, st.st_mtime_ns
    m.input_sha256 = sha256_file(path)
    return m.input_sha256


def now_iso() -> str:
    """Current UTC time, ISO 8601 with milliseconds."""
    return _now()
