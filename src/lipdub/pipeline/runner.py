"""The stage runner: content-hashed, resumable execution of :class:`Stage` objects.

A stage's record in the manifest is keyed by ``hash_json(stage name, stage version, stage inputs)``.
The stage is skipped when the project holds a record with that hash whose artifacts all exist;
otherwise it runs, and its record (artifacts, a hash of their bytes, timings, backend, details) is
written after its artifacts, so a run killed at any point resumes at the stage it was in.

Adding a stage: subclass :class:`Stage` (name, version, :meth:`Stage.inputs`, :meth:`Stage.run`),
put it in a module of :mod:`lipdub.pipeline.stages` and add it to the ordered list there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ..project import Project, StageRecord, hash_json, now_iso
from ..runtime import release_memory
from .hooks import PipelineHooks

if TYPE_CHECKING:  # annotations only: the context module imports nothing of this one at run time
    from .context import PipelineContext


class StageDetails(BaseModel):
    """Base of the typed ``details`` a stage records in the manifest. Fields left unset are not
    written (:meth:`as_record`), so optional notes appear only when a stage has one."""

    model_config = ConfigDict(extra="forbid")

    def as_record(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


@dataclass
class StageOutput:
    """What a stage's :meth:`Stage.run` returns: its artifacts (paths inside the project, or absolute
    deliverables beside the output), its details and the backend that did the work (None: none)."""

    artifacts: list[str | Path]
    details: StageDetails
    backend: str | None = None


class Stage:
    """One step of the pipeline.

    Class attributes:
        name: the stage name (``"vad"``); per-language stages are recorded as ``"<name>:<lang>"``.
        version: bump it when the stage's algorithm changes so that old records are recomputed.
        per_language: the stage runs once per target language (the context has ``language`` set).
        video: the stage belongs to the video branch, which runs beside the audio branch
            (:mod:`lipdub.pipeline.branches`): it may read only what the stages before it in the
            order wrote.
        needs_video: the stage reads what the video branch makes: it waits until the video branch
            has run every stage queued before it.
    """

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    per_language: ClassVar[bool] = False
    video: ClassVar[bool] = False
    needs_video: ClassVar[bool] = False

    def record_name(self, ctx: "PipelineContext") -> str:
        return f"{self.name}:{ctx.language.code}" if self.per_language else self.name

    def applies(self, ctx: "PipelineContext") -> bool:
        """Whether the stage takes part in this run (e.g. faces only for a video)."""
        return True

    def prepare(self, ctx: "PipelineContext") -> None:
        """Work done before the inputs are computed, every run (e.g. a redo request in the script)."""

    def inputs(self, ctx: "PipelineContext") -> list[Any]:
        """JSON-serializable values that key the stage's cache."""
        raise NotImplementedError

    def force(self, ctx: "PipelineContext") -> bool:
        """Run even when the inputs are unchanged (work that the inputs do not capture)."""
        return False

    def total(self, ctx: "PipelineContext") -> int | None:
        """Number of work items for the progress bar (None: unknown)."""
        return None

    def media_s(self, ctx: "PipelineContext") -> float | None:
        """Media seconds the stage processes (its RTF is duration / media seconds); None: no RTF."""
        return ctx.info.duration_s

    def run(self, ctx: "PipelineContext") -> StageOutput:
        raise NotImplementedError


@dataclass
class StageRunner:
    """Runs stages over ``project``, reporting to ``hooks``; ``ran`` / ``skipped`` list record names."""

    project: Project
    hooks: PipelineHooks
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def run(self, stage: Stage, ctx: "PipelineContext") -> StageRecord:
        """Run ``stage`` unless its record is fresh; returns its (new or reused) record."""
        stage.prepare(ctx)
        name = stage.record_name(ctx)
        input_hash = hash_json(stage.name, stage.version, stage.inputs(ctx))
        if not stage.force(ctx) and self.project.is_fresh(name, input_hash):
            rec = self.project.manifest.stages[name]
            self.skipped.append(name)
            self.hooks.stage_finished(name, rec, True)
            return rec
        self.hooks.stage_started(name, stage.total(ctx))
        t0, started = time.monotonic(), now_iso()
        out = stage.run(ctx)
        rec = self.project.record(name, input_hash, out.artifacts, t0, started, backend=out.backend,
                                  media_duration_s=stage.media_s(ctx), details=out.details.as_record())
        self.ran.append(name)
        release_memory()  # the stage's freed temporaries back to the OS, so peaks do not pile up
        self.hooks.stage_finished(name, rec, False)
        return rec
