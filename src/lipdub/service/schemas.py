"""The request and response models of the studio API (pydantic; they make its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import Path as PathParam
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..config import DEFAULT_VOICE_SEARCH
from .db import as_utc

ID = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$", description="32 hex digits")]
SegmentId = Annotated[int, PathParam(ge=0, le=1_000_000)]
LANG_PATTERN = r"^[A-Za-z]{2,3}$"
UTCTime = Annotated[datetime, AfterValidator(as_utc)]  # SQLite gives naive datetimes: they are UTC


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
    voice_search: int = Field(default=DEFAULT_VOICE_SEARCH, ge=0, le=500,
                              description="syntheses per speaker of the kokoro voice search (0: the nearest measured blend)")
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
