"""Configuration of a dub (the Python API's one argument; the CLI builds it from its options)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .loudness_standards import LoudnessTarget, resolve_loudness
from .media.render import X264_PRESETS, parse_deliver

#: Most target languages of one dub (each one is a whole translate/synthesize/mix/render pass; the service's campaigns take as many).
MAX_TARGET_LANGUAGES = 20
#: Most speakers ``--speakers`` may ask the diarization for.
MAX_SPEAKERS = 20

#: The CLI option of each field, for the messages of a bad value (the Python API gets the same text).
OPTION_OF_FIELD = {
    "input": "INPUT", "targets": "--to", "output": "-o", "project_dir": "--project", "source_language": "--from",
    "transcript": "--transcript", "translator": "--translator", "mt_model": "--mt-model", "translator_options": "--translator-option",
    "glossary": "--glossary", "tts": "--tts", "voice": "--voice", "voice_dir": "--voice-dir", "separation": "--separation",
    "lipsync": "--lipsync", "lipsync_checkpoint": "--lipsync-checkpoint", "lipsync_device": "--lipsync-device",
    "lipsync_command": "--lipsync-command", "video_preset": "--video-preset", "video_crf": "--video-crf",
    "speakers": "--speakers", "asr_model": "--asr-model", "max_stretch": "--max-stretch",
    "loudness_standard": "--loudness-standard", "target_lufs": "--loudness", "true_peak_dbtp": "--true-peak", "deliver": "--deliver",
    "timecode": "--timecode", "keep_original_audio": "--keep-original-audio", "voice_bank": "--voice-bank",
    "voice_match": "--voice-match", "max_attempts": "--max-attempts", "redo_failed": "--redo-failed",
}
#: What each bounded option takes, for the hint.
_RANGES = {"speakers": f"a whole number from 1 to {MAX_SPEAKERS}, or leave it out to estimate the count",
           "video_crf": "a whole number from 0 (lossless) to 51 (default 16)",
           "targets": f"1 to {MAX_TARGET_LANGUAGES} languages, comma separated (--to es,fr)"}


def config_error(exc: ValidationError) -> ConfigError:
    """One-line :class:`ConfigError` for a pydantic ``ValidationError`` of :class:`DubConfig`: the
    option (its CLI name, :data:`OPTION_OF_FIELD`), the value given and what is wrong with it."""
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first.get("loc") else ""
    option = OPTION_OF_FIELD.get(field, field or "an option")
    value = first.get("input")
    shown = ("" if isinstance(value, dict) else f" ({len(value)} given)" if isinstance(value, (list, tuple))
             else f" {value!r}" if isinstance(value, str) else f" {value}")
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return ConfigError(f"{option}{shown} is not valid: {first['msg'][0].lower()}{first['msg'][1:]}{more}",
                       f"{option} takes {_RANGES[field]}" if field in _RANGES else f"fix {option} (see lipdub dub --help)")


#: Default ``--voice-search``: syntheses per speaker of the kokoro voice search after its blend bank's
#: nearest blend. Held out (README "Voices", bench/voice_search_budget.py), 8 more syntheses moved the
#: similarity of five speakers by -0.012 to +0.025 (mean +0.009) for about 20 s of CPU per speaker; on
#: the README example (th2_retalking_face1) the report's voice similarity is 0.597 with none (below the
#: 0.6 fail line) and 0.617 with 4 or 8. 4 keeps most of that for half the cost (about 10 s of CPU per
#: speaker); 0 is the fast choice.
DEFAULT_VOICE_SEARCH = 4


class DubConfig(BaseModel):
    """Everything a dub depends on.

    Attributes:
        input: source video or audio file.
        targets: target language codes (ISO 639-1), e.g. ``["es", "ca"]``; at most
            :data:`MAX_TARGET_LANGUAGES`.
        output: output file (one language) or directory; see :func:`lipdub.layout.output_paths`.
        project_dir: project directory; default ``<output dir>/<input stem>.lipdub``.
        source_language: ISO 639-1 code of the source speech; None = detected by the ASR.
        transcript: an SRT/VTT file to import instead of running ASR.
        translator: ``auto`` (ctranslate2 where a neural model the user installed covers the pair, else
            apertium), ``apertium``, ``ctranslate2`` or ``llm``.
        mt_model: ``ctranslate2``: the CTranslate2 model directory or ``.argosmodel`` file (None: the
            models found in ``$LIPDUB_MODEL_DIR``, the Hugging Face cache, Argos packages); with
            ``auto`` it means ctranslate2.
        translator_options: keyword options of the translator (e.g. ``{"num_hypotheses": 8}`` for
            ctranslate2); one it does not take is a ConfigError.
        glossary: a CSV of terms (``source,target`` or ``source,keep``, optional language column,
            :mod:`lipdub.translation.glossary`) applied by every translator.
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
        video_preset / video_crf: x264 preset and CRF of the lip-synced video stream
            (:data:`lipdub.lipsync.render.DEFAULT_PRESET` / ``DEFAULT_CRF``; README, Benchmarks:
            ``bench/encoder_presets.py`` measured encode time and SSIM to the source per preset).
        speakers: the number of speakers (1 to :data:`MAX_SPEAKERS`), or None to estimate it.

    Raises:
        ConfigError: a bad value, in one line naming the option (:func:`config_error`), instead of
            pydantic's ``ValidationError``.
        asr_model: Whisper model name (``base``, ``tiny.en``, ...) or a CTranslate2 model directory.
        max_stretch: the largest time-stretch ratio the fit may apply (1.25 = 25 % faster).
        loudness_standard: ``ebu-r128``, ``atsc-a85`` or ``streaming`` (:data:`lipdub.loudness_standards.LOUDNESS_STANDARDS`);
            None: ``atsc-a85`` unless explicit figures are given.
        target_lufs / true_peak_dbtp: explicit loudness target and true-peak ceiling of the mix (None:
            the standard's); with a standard they must stay within its tolerance (else ConfigError).
        deliver: ``web`` (H.264/HEVC MP4, soft subtitles) or ``broadcast`` (ProRes 422 HQ MOV, 48 kHz
            24-bit PCM stem tracks, timecode, TTML subtitles; :mod:`lipdub.media.broadcast`).
        timecode: start timecode of a broadcast master (``HH:MM:SS:FF``, ``;`` for drop-frame); None:
            the source's when it has one.
        keep_original_audio: add the source soundtrack as a second audio track.
        voice_dir: directory of user piper voices (``*.onnx`` + ``*.onnx.json``).
        voice_bank: voice bank directory (one sub-directory per character, see
            :mod:`lipdub.voice.profile`): speakers named after a bank entry use it, new profiles are saved there.
        voice_match: shift each line's pitch and formants toward its speaker's profile (Praat
            change-gender, :mod:`lipdub.voice.match`); None: the TTS backend's default
            (``TtsBackend.voice_match_default``: on for espeak-ng and piper, off for kokoro; README
            "Voices"). True with a cloning backend (which clones instead) is a ConfigError.
        voice_search: syntheses the per-speaker voice search of a TTS that adapts voices (kokoro) may
            make per speaker after the nearest of its measured blends (0: none, that blend or the stock voice
            nearest the speaker's profile); see
            :data:`DEFAULT_VOICE_SEARCH`.
        check_intelligibility: hear every dubbed line back with the ASR model (``asr_model``, forced to
            the target language) and re-synthesize misheard lines (:mod:`lipdub.pipeline.hearing`).
            None: whenever ``asr_model`` can transcribe the target language (an English-only
            ``*.en`` model cannot: the check is then skipped and the report says so); True: required
            (ConfigError when it cannot); False: off.
        max_attempts: syntheses / re-translations per line in the isochrony loop (:mod:`lipdub.timing.isochrony`).
        redo_failed: re-fit the lines the previous quality report (``report/<lang>/report.json``) did
            not pass, with a larger speed-up limit and more attempts (:mod:`lipdub.qc.redo`).
    """

    def __init__(self, **data) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:  # one line naming the option (a ValidationError names no option)
            raise config_error(exc) from None

    input: Path
    targets: list[str] = Field(max_length=MAX_TARGET_LANGUAGES)
    output: Path
    project_dir: Path | None = None
    source_language: str | None = None
    transcript: Path | None = None
    translator: str = "auto"
    mt_model: Path | None = None
    translator_options: dict[str, str | int | float | bool] = Field(default_factory=dict)
    glossary: Path | None = None
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
    video_preset: str = "superfast"
    video_crf: int = Field(default=16, ge=0, le=51)
    speakers: int | None = Field(default=None, ge=1, le=MAX_SPEAKERS)
    asr_model: str = "base"
    max_stretch: float = 1.25
    loudness_standard: str | None = None
    target_lufs: float | None = None
    true_peak_dbtp: float | None = None
    deliver: str = "web"
    timecode: str | None = None
    keep_original_audio: bool = False
    voice_bank: Path | None = None
    voice_match: bool | None = None
    voice_search: int = Field(default=DEFAULT_VOICE_SEARCH, ge=0, le=500)
    check_intelligibility: bool | None = None
    max_attempts: int = 3
    redo_failed: bool = False

    @field_validator("max_stretch")
    @classmethod
    def _stretch(cls, v: float) -> float:
        if not 1.0 <= v <= 2.0:
            raise ConfigError(f"--max-stretch {v} is out of range", "use a ratio from 1.0 to 2.0 (default 1.25)")
        return v

    @field_validator("video_preset")
    @classmethod
    def _preset(cls, v: str) -> str:
        if v not in X264_PRESETS:
            raise ConfigError(f"unknown x264 preset {v!r}", f"use one of {', '.join(X264_PRESETS)}")
        return v

    @field_validator("deliver")
    @classmethod
    def _deliver(cls, v: str) -> str:
        return parse_deliver(v)

    @model_validator(mode="after")
    def _loudness(self) -> "DubConfig":
        resolve_loudness(self.loudness_standard, self.target_lufs, self.true_peak_dbtp)  # unknown or conflicting: ConfigError
        return self

    def loudness(self) -> LoudnessTarget:
        """The mix's loudness target and ceiling (:func:`lipdub.loudness_standards.resolve_loudness`)."""
        return resolve_loudness(self.loudness_standard, self.target_lufs, self.true_peak_dbtp)

    @field_validator("max_attempts")
    @classmethod
    def _attempts(cls, v: int) -> int:
        if not 1 <= v <= 10:
            raise ConfigError(f"--max-attempts {v} is out of range", "use 1 to 10 (default 3)")
        return v
