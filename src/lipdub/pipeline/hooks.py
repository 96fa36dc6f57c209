"""Progress callbacks of a dub (pattern of pyannote.audio's hooks)."""

from __future__ import annotations

from ..project import StageRecord


class PipelineHooks:
    """Progress callbacks. Override what you need.

    ``stage`` names are ``ingest``, ``separate``, ... and ``translate:es`` for per-language stages.
    """

    def stage_started(self, stage: str, total: int | None = None) -> None:
        """A stage begins; ``total`` is its number of work items when known."""

    def stage_progress(self, stage: str, done: int, total: int) -> None:
        """``done`` of ``total`` work items of ``stage`` are finished."""

    def stage_finished(self, stage: str, record: StageRecord, skipped: bool) -> None:
        """A stage ended; ``skipped`` when its inputs were unchanged and its record was reused."""
