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
from .media.render import AUDIO_SUFFIXES, BROADCAST_SUFFIXES, VIDEO_SUFFIXES, parse_deliver

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
    SOURCE_PHONEMES = "analysis/phonemes.json"  # per speaker: [start_s, end_s, phoneme] of the source speech
    VOICES_DIR = "voices"

    def abs(self, rel: str) -> Path:
        """Absolute path of ``rel`` (a path relative to the project root)."""
        return self.root / rel

    @staticmethod
    def translation_lines(language: str) -> str:
        """``translate/<lang>/lines.json``: per translated line, the translator's record (candidates,
        estimated vs budget duration, glossary hits, names kept)."""
        return f"translate/{language}/lines.json"

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

    @staticmethod
    def adapted_voices_dir(language: str) -> str:
        """``voices/<lang>``: the voices a TTS that adapts voices made per speaker (the voices stage)."""
        return f"voices/{language}"

    @staticmethod
    def adapted_voices(language: str) -> str:
        """``voices/<lang>/voices.json``: the TTS and, per speaker, its adapted voice (:class:`lipdub.contracts.synthesize.AdaptedVoice`)."""
        return f"voices/{language}/voices.json"


def deliverable_paths(media: Path, deliver: str = "web", source_language: str | None = None) -> dict[str, Path]:
    """Files one language's deliverable consists of, beside ``media`` (``NAME.mp4`` or ``NAME.mov``).

    Returns:
        ``web``: ``media``, ``target_srt`` / ``target_vtt`` (``NAME.srt``, ``NAME.vtt``), the source
        subtitles ``NAME.<src>.srt`` / ``.vtt`` when ``source_language`` is given, and ``stems_dir``
        (``NAME.stems/``, 24-bit WAVs). ``broadcast`` adds ``target_ttml`` (``NAME.ttml``, IMSC1
        text profile) and ``source_ttml``.

    Raises:
        ConfigError: unknown mode; a broadcast master whose suffix is not ``.mov``.
    """
    mode = parse_deliver(deliver)
    if mode == "broadcast" and media.suffix.lower() not in BROADCAST_SUFFIXES:
        raise ConfigError(f"a broadcast master is a QuickTime file, not {media.name}", f"name the output {media.stem}.mov")
    base = media.with_suffix("")
    paths = {"media": media, "target_srt": base.with_name(base.name + ".srt"), "target_vtt": base.with_name(base.name + ".vtt")}
    if source_language:
        paths["source_srt"] = base.with_name(f"{base.name}.{source_language}.srt")
        paths["source_vtt"] = base.with_name(f"{base.name}.{source_language}.vtt")
    if mode == "broadcast":
        paths["target_ttml"] = base.with_name(base.name + ".ttml")
        if source_language:
            paths["source_ttml"] = base.with_name(f"{base.name}.{source_language}.ttml")
    paths["stems_dir"] = base.with_name(base.name + ".stems")
    return paths



@dataclass(frozen=True)
class Deliverables:
    """The files delivered with one output ``media`` (``NAME.mp4``, ``NAME.mov``, ``NAME.wav``, ...).

    ``source_language``: ISO 639-1 code of the source speech (names the source subtitles);
    ``deliver``: ``web`` or ``broadcast`` (which adds TTML subtitles).
    """

    media: Path
    source_language: str
    deliver: str = "web"

    @property
    def paths(self) -> dict[str, Path]:
        return deliverable_paths(self.media, self.deliver, self.source_language)

    def _beside(self, suffix: str) -> Path:
        base = self.media.with_suffix("")
        return base.with_name(base.name + suffix)

    @property
    def subtitles(self) -> dict[str, Path]:
        """``target_srt``, ``target_vtt`` (``NAME.srt/.vtt``), ``source_srt``, ``source_vtt``
        (``NAME.<source lang>.srt/.vtt``) and, for broadcast, ``target_ttml`` / ``source_ttml``."""
        return {k: p for k, p in self.paths.items() if k.startswith(("target_", "source_"))}

    @property
    def stems_dir(self) -> Path:
        return self.paths["stems_dir"]

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
    beside it); otherwise it is a directory receiving ``<input stem>.<lang>.mp4`` (``.mov`` for a
    broadcast master, ``.wav`` for audio).

    Raises:
        ConfigError: the suffix does not fit the input (a video suffix for an audio-only input, a
            broadcast master that is not ``.mov``, ...), or is no media suffix and names no existing
            directory (``-o notes.txt``).
    """
    out = Path(config.output)
    suffix = out.suffix.lower()
    allowed = VIDEO_SUFFIXES if has_video else AUDIO_SUFFIXES
    if suffix in VIDEO_SUFFIXES | AUDIO_SUFFIXES:
        if suffix not in allowed:
            kind = "a video" if has_video else "an audio-only file"
            raise ConfigError(f"the input is {kind}, so the output cannot be {out.name}", f"use one of {', '.join(sorted(allowed))}")
        if has_video and config.deliver == "broadcast" and suffix not in BROADCAST_SUFFIXES:
            raise ConfigError(f"a broadcast master is a QuickTime file, not {out.name}", f"name the output {out.stem}.mov")
        if len(languages) == 1:
            return {languages[0]: out}
        return {code: out.with_name(f"{out.stem}.{code}{out.suffix}") for code in languages}
    if suffix and not out.is_dir():  # "-o x.txt" is a typo, not a new directory
        media = sorted(VIDEO_SUFFIXES if has_video else AUDIO_SUFFIXES)
        raise ConfigError(f"-o {out}: {out.suffix} is not an output format, and no directory {out.name} exists",
                          f"name a file {' '.join(media)}, or a directory (one that exists, or a name without a suffix)")
    default_suffix = (".mov" if config.deliver == "broadcast" else ".mp4") if has_video else ".wav"
    stem = Path(config.input).stem
    return {code: out / f"{stem}.{code}{default_suffix}" for code in languages}


def default_project_dir(config: DubConfig) -> Path:
    """``<output dir>/<input stem>.lipdub`` (the output's parent when it is a file: a media suffix, as
    :func:`output_paths` decides; ``-o take.2`` is a directory)."""
    out = Path(config.output)
    base = out.parent if out.suffix.lower() in VIDEO_SUFFIXES | AUDIO_SUFFIXES else out
    return base / f"{Path(config.input).stem}.lipdub"


def project_dir_beside(input_path: Path, out_dir: Path) -> Path:
    """``<out_dir>/<input stem>.lipdub``: the project of commands that write into ``out_dir``
    (``lipdub transcribe``, ``lipdub faces``)."""
    return out_dir / f"{Path(input_path).stem}.lipdub"
