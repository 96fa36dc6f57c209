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
        output: output file (one language) or directory; see :func:`lipdub.layout.output_paths`.
        project_dir: project directory; default ``<output dir>/<input stem>.lipdub``.
        source_language: ISO 639-1 code of the source speech; None = detected by the ASR.
        transcript: an SRT/VTT file to import instead of running ASR.
        translator: ``apertium`` or ``llm``.
        tts: ``auto`` (piper where it has a voice for the language, kokoro for Japanese, else
            espeak-ng), or ``piper``, ``espeak-ng``, ``kokoro``.
        separation: ``dfn`` or ``none``.
        vad / diarizer / transcriber: the backends of stages 3-5 (``silero``, ``resemblyzer``,
            ``faster-whisper``; registries in :mod:`lipdub.contracts`).
        lipsync: ``retrieval`` (default) re-animates each on-screen speaker's mouth; ``none`` keeps
            the source frames (the video stream is copied); ``wav2lip`` / ``wav2lip_gan`` (Wav2Lip
            checkpoints), ``external`` (the user's LatentSync / MuseTalk / Wav2Lip command).
        lipsync_checkpoint: ``wav2lip``/``wav2lip_gan``: the checkpoint file (None: the model directory).
        lipsync_device: ``wav2lip``/``wav2lip_gan``: ``auto``, ``cpu``, ``cuda[:N]``, ``mps`` (None: auto).
        lipsync_command: ``external``: command template with ``{video}``, ``{audio}``, ``{output}``
            (None: ``$LIPDUB_LIPSYNC_COMMAND``). An option the chosen backend does not take is an error.
        speakers: the number of speakers, or None to estimate it.
        asr_model: Whisper model name (``base``, ``tiny.en``, ...) or a CTranslate2 model directory.
        max_stretch: the largest time-stretch ratio the fit may apply (1.25 = 25 % faster).
        target_lufs / true_peak_dbtp: loudness target and true-peak ceiling of the mix.
        keep_original_audio: add the source soundtrack as a second audio track.
        voice_dir: directory of user piper voices (``*.onnx`` + ``*.onnx.json``).
        voice_bank: voice bank directory (one sub-directory per character, see
            :mod:`lipdub.voice.profile`): speakers named after a bank entry use it, new profiles are saved there.
        voice_match: shift each line's pitch and formants toward its speaker's profile (Praat
            change-gender, :mod:`lipdub.voice.match`); ignored by cloning TTS backends, which clone instead.
        max_attempts: syntheses / re-translations per line in the isochrony loop (:mod:`lipdub.timing.isochrony`).
        redo_failed: re-fit the lines the previous quality report (``report/<lang>/report.json``) did
            not pass, with a larger speed-up limit and more attempts (:mod:`lipdub.qc.redo`).
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
    vad: str = "silero"
    diarizer: str = "resemblyzer"
    transcriber: str = "faster-whisper"
    lipsync: str = "retrieval"
    lipsync_checkpoint: Path | None = None
    lipsync_device: str | None = None
    lipsync_command: str | None = None
    speakers: int | None = Field(default=None, ge=1, le=20)
    asr_model: str = "base"
    max_stretch: float = 1.25
    target_lufs: float = -24.0
    true_peak_dbtp: float = -2.0
    keep_original_audio: bool = False
    voice_bank: Path | None = None
    voice_match: bool = True
    max_attempts: int = 3
    redo_failed: bool = False

    @field_validator("max_stretch")
    @classmethod
    def _stretch(cls, v: float) -> float:
        if not 1.0 <= v <= 2.0:
            raise ConfigError(f"--max-stretch {v} is out of range", "use a ratio from 1.0 to 2.0 (default 1.25)")
        return v

    @field_validator("max_attempts")
    @classmethod
    def _attempts(cls, v: int) -> int:
        if not 1 <= v <= 10:
            raise ConfigError(f"--max-attempts {v} is out of range", "use 1 to 10 (default 3)")
        return v
