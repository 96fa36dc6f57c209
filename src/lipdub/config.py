"""Configuration of a dub (the Python API's one argument; the CLI builds it from its options)."""

from __future__ import annotations

from pathlib import Path
from pydantic import BaseModel, Field, field_validator

from .errors import ConfigError


class DubConfig(BaseModel):
    """Everything a dub depends on.

    Attributes:
        input: source video or audio file.
        targets: target language codes (ISO 639-1), e.g. ``["es", "ca"]``.
        output: output file (one language) or directory; see :func:`lipdub.pipeline.output_paths`.
        project_dir: project directory; default ``<output dir>/<input stem>.lipdub``.
        source_language: ISO 639-1 code of the source speech; None = detected by the ASR.
        transcript: an SRT/VTT file to import instead of running ASR.
        translator: ``apertium`` or ``llm``.
        tts: ``auto`` (piper where it has a voice for the language, kokoro for Japanese, else
            espeak-ng), or ``piper``, ``espeak-ng``, ``kokoro``.
        separation: ``dfn`` or ``none``.
        lipsync: ``retrieval`` (default) re-animates each on-screen speaker's mouth; ``none`` keeps
            the source frames (the video stream is copied).
        speakers: the number of speakers, or None to estimate it.
        asr_model: Whisper model name (``base``, ``tiny.en``, ...) or a CTranslate2 model directory.
        max_stretch: the largest time-stretch ratio the fit may apply (1.25 = 25 % faster).
        target_lufs / true_peak_dbtp: loudness target and true-peak ceiling of the mix.
        keep_original_audio: add the source soundtrack as a second audio track.
        voice_dir: directory of user piper voices (``*.onnx`` + ``*.onnx.json``).
    """

    input: Path
    targets: list[str]
    output: Path
    project_dir: Path | None = None
    source_language: str | None = None
    transcript: Path | None = None
    translator: str = "apertium"
    tts: str = "auto"
    voice: str | None = None
    voice_dir: Path | None = None
    separation: str = "dfn"
    lipsync: str = "retrieval"
    speakers: int | None = Field(default=None, ge=1, le=20)
    asr_model: str = "base"
    max_stretch: float = 1.25
    target_lufs: float = -24.0
    true_peak_dbtp: float = -2.0
    keep_original_audio: bool = False

    @field_validator("max_stretch")
    @classmethod
    def _stretch(cls, v: float) -> float:
        if not 1.0 <= v <= 2.0:
            raise ConfigError(f"--max-stretch {v} is out of range", "use a ratio from 1.0 to 2.0 (default 1.25)")
        return v
