"""Stage 13, render: encode and mux the deliverable.

Video: the source video stream is copied bit for bit when no frame was changed (same codec,
resolution, fps, frame count and timestamps, VFR included); when a lip-sync stage produced new frames
its already encoded stream is muxed instead. Audio: the dubbed mix as AAC (48 kHz stereo), optionally
the original soundtrack as a second track; language tags in ISO 639-2. Subtitles: the target and
source text as soft subtitle streams (mov_text in MP4/MOV, SubRip in MKV). Audio-only sources give
an audio file (WAV/FLAC written directly, M4A through FFmpeg).

Two deliverables (:data:`DELIVER_MODES`): ``web`` (this module's :func:`render_video`, the default)
and ``broadcast`` (:func:`lipdub.media.broadcast.render_broadcast`: ProRes 422 HQ MOV with PCM stem
tracks and timecode). :func:`deliverable_paths` names the files each one writes.

Display rotation: the output shows the picture as the source does. A copied stream keeps the
source's display matrix; a lip-synced stream (stored in the source's *stored* orientation, see
:mod:`lipdub.lipsync.render`) gets the source's matrix written on it. The matrix is written with
``-display_rotation`` (counter-clockwise degrees, FFmpeg >= 6) or, on FFmpeg 5, the ``rotate``
stream tag, which FFmpeg 5.1's muxer turns into a counter-clockwise matrix of that angle (checked
with ffprobe); the written rotation is read back and checked (issue 16: a source with a +90 matrix
gave -90, from writing the clockwise angle with the tag).
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import ConfigError, StageFailed
from ..languages import Language
from ..tools import ffmpeg_exe, run_child, run_ffmpeg
from .probe import display_rotation_deg

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".m4v"}
AUDIO_SUFFIXES = {".wav", ".flac", ".m4a"}
Deliver = Literal["web", "broadcast"]
DELIVER_MODES: tuple[str, ...] = ("web", "broadcast")
BROADCAST_SUFFIXES = {".mov"}


#: x264's presets, fastest first (x264 --fullhelp).
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")


def parse_deliver(name: str) -> str:
    """``"web"`` or ``"broadcast"`` (case-insensitive).

    Raises:
        ConfigError: another name.
    """
    mode = str(name).strip().lower()
    if mode not in DELIVER_MODES:
        raise ConfigError(f"unknown deliverable {name!r}", f"use --deliver {' or '.join(DELIVER_MODES)}")
    return mode


@lru_cache(maxsize=4)
def _has_display_rotation_option(exe: str) -> bool:
    proc = run_child([exe, "-hide_banner", "-h", "long"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return "-display_rotation" in proc.stdout


def rotation_args(ccw_deg: int) -> tuple[list[str], list[str]]:
    """FFmpeg arguments that give the first video input's stream a display matrix rotating the
    picture ``ccw_deg`` counter-clockwise (0 clears it): ``(before_input, output_options)``.

    ``-display_rotation`` (FFmpeg >= 6, an input option, counter-clockwise by its documentation)
    where the binary has it; else FFmpeg 5's ``rotate`` stream tag, which its mov/mp4 muxer writes as
    a counter-clockwise matrix of that angle.
    """
    ccw = int(ccw_deg) % 360
    if _has_display_rotation_option(ffmpeg_exe()):
        return ["-display_rotation:v:0", str(ccw)], []
    return [], ["-metadata:s:v:0", f"rotate={ccw}"]


def check_rotation(output: Path, expected_ccw_deg: int) -> None:
    """Read back the display rotation of ``output`` and compare it with ``expected_ccw_deg``.

    Raises:
        StageFailed: the file shows the picture rotated otherwise (an FFmpeg whose rotation tag has
            another sign convention).
    """
    got = display_rotation_deg(output)
    if got != int(expected_ccw_deg) % 360:
        raise StageFailed(
            f"{output.name} has a display rotation of {got} degrees instead of {int(expected_ccw_deg) % 360}",
            f"this ffmpeg ({ffmpeg_exe()}) writes rotation tags another way; use FFmpeg 5.1 or >= 6 (LIPDUB_FFMPEG)")


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
    rotation_deg: int | None = None,
    audio_bitrate: str = "192k",
) -> Path:
    """Mux the dub into ``output`` (.mp4/.mov/.m4v/.mkv), written to a temp file then renamed: the
    ``web`` deliverable.

    Args:
        video_override: the lip-synced video (H.264, in the source's stored orientation) to mux
            instead of the source's stream.
        rotation_deg: the display rotation to give the output, in the *clockwise* degrees of the
            classic MP4 ``rotate`` tag (= minus the display matrix's counter-clockwise angle; what
            ``lipdub.pipeline`` passes). None or 0: the source's display rotation, which is what
            the output should show (a copied stream keeps it; an override gets it written).

    Raises:
        ConfigError: unsupported output suffix.
        StageFailed: ffmpeg failed, or the written display rotation reads back wrong.
    """
    suffix = output.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ConfigError(f"cannot write a video to {output.name}", f"use one of {', '.join(sorted(VIDEO_SUFFIXES))}")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.tmp{suffix}")
    video_in = video_override or source
    source_ccw = display_rotation_deg(source)
    want_ccw = (-int(rotation_deg)) % 360 if rotation_deg else source_ccw
    before, rot_out = [], []
    if video_override is not None or want_ccw != source_ccw:
        before, rot_out = rotation_args(want_ccw)
    args = [*before, "-i", str(video_in), "-i", str(mix_wav)]
    for sub in subtitles:
        args += ["-i", str(sub.path)]
    if keep_original_audio and video_override is not None:
        args += ["-i", str(source)]
    args += ["-map", "0:v:0", "-c:v", "copy"]
    if video_codec == "hevc" and suffix in {".mp4", ".mov", ".m4v"}:
        args += ["-tag:v", "hvc1"]  # the tag Apple players require for HEVC in MP4/MOV
    args += rot_out
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
    if want_ccw or video_override is not None:
        try:
            check_rotation(tmp, want_ccw)
        except StageFailed:
            tmp.unlink(missing_ok=True)
            raise
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
