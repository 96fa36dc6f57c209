"""Stage 13, render: encode and mux the deliverable.

Video: the source video stream is copied bit for bit when no frame was changed (same codec,
resolution, fps, frame count and timestamps, VFR included); when a lip-sync stage produced new frames
its already encoded stream is muxed instead. Audio: the dubbed mix as AAC (48 kHz stereo), optionally
the original soundtrack as a second track; language tags in ISO 639-2. Subtitles: the target and
source text as soft subtitle streams (mov_text in MP4/MOV, SubRip in MKV). Audio-only sources give
an audio file (WAV/FLAC written directly, M4A through FFmpeg).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..languages import Language
from ..tools import run_ffmpeg

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".m4v"}
AUDIO_SUFFIXES = {".wav", ".flac", ".m4a"}


@dataclass(frozen=True)
class SubtitleTrack:
    path: Path
    language: Language
    title: str


def render_video(
    *,
    source: Path,
    mix_wav: Path,
    output: Path,
    language: Language,
    source_language: Language,
    subtitles: list[SubtitleTrack],
    keep_original_audio: bool = False,
    video_override: Path | None = None,
    video_codec: str | None = None,
    rotation_deg: int = 0,
    audio_bitrate: str = "192k",
) -> Path:
    """Mux the dub into ``output`` (.mp4/.mov/.m4v/.mkv), written to a temp file then renamed.

    Raises:
        ConfigError: unsupported output suffix.
        StageFailed: ffmpeg failed.
    """
    suffix = output.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ConfigError(f"cannot write a video to {output.name}", f"use one of {', '.join(sorted(VIDEO_SUFFIXES))}")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.tmp{suffix}")
    video_in = video_override or source
    args = ["-i", str(video_in), "-i", str(mix_wav)]
    for sub in subtitles:
        args += ["-i", str(sub.path)]
    if keep_original_audio and video_override is not None:
        args += ["-i", str(source)]
    args += ["-map", "0:v:0", "-c:v", "copy"]
    if video_codec == "hevc" and suffix in {".mp4", ".mov", ".m4v"}:
        args += ["-tag:v", "hvc1"]  # the tag Apple players require for HEVC in MP4/MOV
    if rotation_deg:
        args += ["-metadata:s:v:0", f"rotate={rotation_deg % 360}"]  # keep the source's display rotation
    args += ["-map", "1:a:0", "-c:a:0", "aac", "-b:a:0", audio_bitrate, "-ar", "48000", "-ac", "2"]
    args += ["-metadata:s:a:0", f"language={language.alpha3}", "-metadata:s:a:0", f"title={language.name} (dub)"]
    args += ["-disposition:a:0", "default"]
    if keep_original_audio:
        orig_input = len(subtitles) + 2 if video_override is not None else 0
        args += ["-map", f"{orig_input}:a:0", "-c:a:1", "aac", "-b:a:1", audio_bitrate]
        args += ["-metadata:s:a:1", f"language={source_language.alpha3}", "-metadata:s:a:1", f"title={source_language.name} (original)"]
        args += ["-disposition:a:1", "0"]
    sub_codec = "srt" if suffix == ".mkv" else "mov_text"
    for i, sub in enumerate(subtitles):
        args += ["-map", f"{i + 2}:s:0"]
        args += [f"-metadata:s:s:{i}", f"language={sub.language.alpha3}", f"-metadata:s:s:{i}", f"title={sub.title}"]
    if subtitles:
        args += ["-c:s", sub_codec]
    if suffix in {".mp4", ".mov", ".m4v"}:
        args += ["-movflags", "+faststart"]
    args += ["-map_metadata", "0", str(tmp)]
    run_ffmpeg(args, f"writing {output.name}")
    tmp.replace(output)
    return output


def render_audio(*, mix: np.ndarray, sample_rate_hz: int, output: Path, language: Language, audio_bitrate: str = "192k") -> Path:
    """Write the dubbed mix of an audio-only source: WAV/FLAC (24-bit PCM) or M4A (AAC).

    Raises:
        ConfigError: unsupported suffix.
    """
    import soundfile as sf

    suffix = output.suffix.lower()
    output.parent.mkdir(parents=True, exist_ok=True)
    if suffix in {".wav", ".flac"}:
        tmp = output.with_name(f".{output.stem}.tmp{suffix}")
        sf.write(str(tmp), mix, sample_rate_hz, subtype="PCM_24", format=suffix[1:].upper())
        tmp.replace(output)
        return output
    if suffix == ".m4a":
        wav = output.with_name(f".{output.stem}.tmp.wav")
        sf.write(str(wav), mix, sample_rate_hz, subtype="FLOAT")
        tmp = output.with_name(f".{output.stem}.tmp.m4a")
        run_ffmpeg(["-i", str(wav), "-c:a", "aac", "-b:a", audio_bitrate, "-metadata:s:a:0", f"language={language.alpha3}", str(tmp)], f"writing {output.name}")
        wav.unlink(missing_ok=True)
        tmp.replace(output)
        return output
    raise ConfigError(f"cannot write an audio-only dub to {output.name}", f"use one of {', '.join(sorted(AUDIO_SUFFIXES))}")
