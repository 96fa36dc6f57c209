"""What every stage sees: the config, the project and its layout, the probed source, the hooks, and
(for per-language stages) the target language and its outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..audio import read_audio, read_resampled
from ..config import DubConfig
from ..contracts.synthesize import AdaptedVoice
from ..errors import InputError
from ..languages import Language
from ..layout import Deliverables, ProjectLayout
from ..media.probe import ANALYSIS_RATE_HZ, MediaInfo
from ..project import Project
from ..script import Script
from ..voice.profiles import load_profiles
from .hooks import PipelineHooks


@dataclass
class RunCaches:
    """Values loaded once per run and shared by the stages (cleared when the stage that makes them reruns)."""

    profiles: dict | None = None
    translators: dict[str, str] = field(default_factory=dict)  # target language -> the translator chosen
    whisper: dict[str, Any] = field(default_factory=dict)  # ASR model name -> loaded faster-whisper model (intelligibility)
    adapted_voices: dict[str, dict] = field(default_factory=dict)  # language -> speaker -> AdaptedVoice


@dataclass
class PipelineContext:
    """The context of one run.

    Attributes:
        config: the dub's configuration.
        project: the project directory (manifest, script, artifacts); ``layout`` names its files.
        hooks: progress callbacks.
        source: the resolved input path; ``info`` its probe; ``source_sha256`` its content hash.
        until: the last stage of this run (``faces``, ``script``, ``translate``, ``synthesize``,
            ``mix`` or ``render``).
        lipsync_backend: the lip-sync backend, created before any work (None with ``--lipsync none``).
        language / source_language / output: set for per-language stages (:meth:`for_language`).
    """

    config: DubConfig
    project: Project
    hooks: PipelineHooks
    source: Path
    info: MediaInfo
    source_sha256: str
    until: str
    lipsync_backend: Any = None
    language: Language | None = None
    source_language: Language | None = None
    output: Path | None = None
    caches: RunCaches = field(default_factory=RunCaches)

    @property
    def layout(self) -> ProjectLayout:
        return ProjectLayout(self.project.root)

    def for_language(self, language: Language, source_language: Language, output: Path) -> "PipelineContext":
        """The context of the per-language stages of ``language`` (shares the run's caches)."""
        return replace(self, language=language, source_language=source_language, output=output)

    @property
    def deliverables(self) -> Deliverables:
        """The files delivered beside this language's output."""
        assert self.output is not None and self.source_language is not None
        return Deliverables(self.output, self.source_language.code, self.config.deliver)

    def script(self) -> Script:
        """``script.json`` as it is on disk now (stages edit it).

        Raises:
            InputError: the script is missing (the script stage writes it).
        """
        script = self.project.load_script()
        if script is None:  # pragma: no cover - the script stage always writes it
            raise InputError("script.json is missing", "re-run lipdub dub")
        return script

    def analysis_audio(self) -> np.ndarray:
        """The 16 kHz mono analysis audio of the source, float32 ``(n,)``."""
        audio, _ = read_audio(self.layout.abs(ProjectLayout.ANALYSIS_16K), mono=True)
        return audio

    def source_speech_16k(self) -> np.ndarray:
        """The source's speech at 16 kHz mono: the dialogue stem when there is one (music and effects
        removed), else the analysis audio."""
        if self.project.has_dialogue_stem():  # read and resampled a block at a time: only the 16 kHz result is held
            return read_resampled(self.layout.abs(ProjectLayout.DIALOGUE_48K), ANALYSIS_RATE_HZ)
        return self.analysis_audio()

    def voice_profiles(self) -> dict:
        """Speaker id -> :class:`lipdub.voice.profile.VoiceProfile` from the profiles stage (loaded once per
        run; the profiles stage clears it)."""
        if self.caches.profiles is None:
            self.caches.profiles = load_profiles(self.project.root)
        return self.caches.profiles

    def adapted_voices(self, tts_name: str) -> dict[str, AdaptedVoice]:
        """Speaker id -> the voice the voices stage adapted for this language with TTS ``tts_name``
        (empty when it made none, or made them for another TTS); loaded once per run (the voices stage
        clears it)."""
        code = self.language.code
        if code not in self.caches.adapted_voices:
            path = self.layout.abs(ProjectLayout.adapted_voices(code))
            data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            self.caches.adapted_voices[code] = {"tts": data.get("tts"), "voices": {
                spk: AdaptedVoice(**v) for spk, v in (data.get("voices") or {}).items()}}
        got = self.caches.adapted_voices[code]
        return got["voices"] if got["tts"] == tts_name else {}

    def progress(self, stage_name: str) -> Callable[[int, int], None]:
        """``(done, total)`` callback that reports ``stage_name``'s progress to the hooks."""
        return lambda done, total: self.hooks.stage_progress(stage_name, done, total)
