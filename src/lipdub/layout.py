"""The project directory and the deliverables: every path lipdub reads or writes, in one place.

Two layouts (README "The project directory" and "CLI"):

* :class:`ProjectLayout`: the files inside a project directory (``audio/mix_48k.wav``,
  ``faces/track_NNNN.npz``, ``tts/<lang>/...``, ``report/<lang>/report.json``, ...), as paths
  relative to the project root (what the manifest records) and absolute paths.
* :class:`Deliverables`: the files delivered beside one output (``NAME.srt``, ``NAME.vtt``,
  ``NAME.<source lang>.srt``, ``NAME.stems/{dialogue,me,mix}.wav``, ``NAME.report.json`` / ``.html``).

:func:`output_paths` and :func:`default_project_dir` turn a :class:`~lipdub.config.DubConfig` into
the main output of each language and the project directory. The CLI, the service, the pipeline and the
quality report ask this module instead of rebuilding names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import DubConfig
from .errors import ConfigError
from .media.render import AUDIO_SUFFIXES, VIDEO_SUFFIXES

STEMS = ("dialogue", "me", "mix")


@dataclass(frozen=True)
class ProjectLayout:
    """Paths inside a project directory ``root``; the ``*_REL`` names are relative to it (as the manifest
    stores artifacts), the methods give absolute paths."""

    root: Path

    MANIFEST = "manifest.json"
    SCRIPT = "script.json"
    MEDIA = "media.json"
    MIX_48K = "audio/mix_48k.wav"
    ANALYSIS_16K = "audio/analysis_16k.wav"
    DIALOGUE_48K = "audio/dialogue_48k.wav"
    ME_48K = "audio/me_48k.wav"
    SEPARATION_NONE = "audio/separation_none.json"
    VAD = "analysis/vad.json"
    DIARIZATION = "analysis/diarization.json"
    TRANSCRIPT = "analysis/transcript.json"
    FACES_DIR = "faces"
    FACES_JSON = "faces/faces.json"
    FRAME_TIMES = "faces/frame_times.npy"
    SPEAKERS = "faces/speakers.json"
    VOICES_DIR = "voices"

    def abs(self, rel: str) -> Path:
        """Absolute path of ``rel`` (a path relative to the project root)."""
        return self.root / rel

    @staticmethod
    def tts_dir(language: str) -> str:
        """``tts/<lang>``: one fitted WAV, fit JSON and phoneme JSON per line."""
        return f"tts/{language}"

    @staticmethod
    def tts_stem(segment_id: int, key: str) -> str:
        """File stem of a line's speech in :meth:`tts_dir`: ``seg_NNNN_<key>``."""
        return f"seg_{segment_id:04d}_{key}"

    @staticmethod
    def phonemes_of(audio_rel: str) -> str:
        """The phoneme-timing JSON beside a line's fitted WAV."""
        return audio_rel.replace(".wav", ".phonemes.json")

    @staticmethod
    def stem(language: str, name: str) -> str:
        """``stems/<lang>/<name>.wav`` (``name`` one of :data:`STEMS`)."""
        return f"stems/{language}/{name}.wav"

    @staticmethod
    def lipsync_video(language: str) -> str:
        return f"lipsync/{language}/video.mp4"

    @staticmethod
    def lipsync_plans(language: str) -> str:
        return f"lipsync/{language}/plans.json"

    @staticmethod
    def report_dir(language: str) -> str:
        """``report/<lang>``: ``report.json`` and ``report.html`` of the dub."""
        return f"report/{language}"

    @staticmethod
    def report_json(language: str) -> str:
        return f"report/{language}/report.json"

    @staticmethod
    def voice_profile(speaker: str) -> str:
        return f"voices/{speaker}.json"

    @staticmethod
    def voice_reference(speaker: str) -> str:
        return f"voices/{speaker}.wav"


@dataclass(frozen=True)
class Deliverables:
    """The files delivered with one output ``media`` (``NAME.mp4``, ``NAME.wav``, ...).

    ``source_language``: ISO 639-1 code of the source speech (names the source subtitles).
    """

    media: Path
    source_language: str

    @property
    def _base(self) -> Path:
        return self.media.with_suffix("")

    def _beside(self, suffix: str) -> Path:
        return self._base.with_name(self._base.name + suffix)

    @property
    def subtitles(self) -> dict[str, Path]:
        """``target_srt``, ``target_vtt`` (``NAME.srt/.vtt``) and ``source_srt``, ``source_vtt``
        (``NAME.<source lang>.srt/.vtt``)."""
        src = self.source_language
        return {"target_srt": self._beside(".srt"), "target_vtt": self._beside(".vtt"),
                "source_srt": self._beside(f".{src}.srt"), "source_vtt": self._beside(f".{src}.vtt")}

    @property
    def stems_dir(self) -> Path:
        return self._beside(".stems")

    @property
    def stems(self) -> dict[str, Path]:
        """``NAME.stems/{dialogue,me,mix}.wav`` (48 kHz, 24-bit)."""
        return {k: self.stems_dir / f"{k}.wav" for k in STEMS}

    @property
    def report_json(self) -> Path:
        return self._beside(".report.json")

    @property
    def report_html(self) -> Path:
        return self._beside(".report.html")

    def all(self) -> dict[str, Path]:
        """Every deliverable by a stable key (``media``, the subtitle keys, ``stem_<name>``, ``report``,
        ``report_html``)."""
        return {"media": self.media, **self.subtitles, **{f"stem_{k}": p for k, p in self.stems.items()},
                "report": self.report_json, "report_html": self.report_html}


def output_paths(config: DubConfig, has_video: bool, languages: list[str]) -> dict[str, Path]:
    """Where each language's main output goes, keyed by language code.

    ``config.output`` with a media suffix is a file (with several languages ``NAME.<lang>.SUFFIX``
    beside it); otherwise it is a directory receiving ``<input stem>.<lang>.mp4`` (``.wav`` for audio).

    Raises:
        ConfigError: the suffix does not fit the input (a video suffix for an audio-only input, ...).
    """
    out = Path(config.output)
    suffix = out.suffix.lower()
    allowed = VIDEO_SUFFIXES if has_video else AUDIO_SUFFIXES
    if suffix in VIDEO_SUFFIXES | AUDIO_SUFFIXES:
        if suffix not in allowed:
            kind = "a video" if has_video else "an audio-only file"
            raise ConfigError(f"the input is {kind}, so the output cannot be {out.name}", f"use one of {', '.join(sorted(allowed))}")
        if len(languages) == 1:
            return {languages[0]: out}
        return {code: out.with_name(f"{out.stem}.{code}{out.suffix}") for code in languages}
    default_suffix = ".mp4" if has_video else ".wav"
    stem = Path(config.input).stem
    return {code: out / f"{stem}.{code}{default_suffix}" for code in languages}


def default_project_dir(config: DubConfig) -> Path:
    """``<output dir>/<input stem>.lipdub`` (the output's parent when it is a file)."""
    out = Path(config.output)
    base = out.parent if out.suffix else out
    return base / f"{Path(config.input).stem}.lipdub"


def project_dir_beside(input_path: Path, out_dir: Path) -> Path:
    """``<out_dir>/<input stem>.lipdub``: the project of commands that write into ``out_dir``
    (``lipdub transcribe``, ``lipdub faces``)."""
    return out_dir / f"{Path(input_path).stem}.lipdub"
