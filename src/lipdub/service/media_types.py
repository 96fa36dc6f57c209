"""Content types of what the service serves, never taken from a client-given file name.

An upload's type comes from what PyAV probed (its container format and codecs, stored with the
source); a deliverable's from the file the renderer wrote (its name is the server's). Container
names are FFmpeg's demuxer names (``libavformat``: ``mov,mp4,m4a,3gp,3g2,mj2``, ``matroska,webm``...);
the types are the IANA media types (RFC 6381 ``video/mp4``, RFC 5334 ``audio/ogg``, WebM Project
``video/webm``) or the de-facto ``x-`` types browsers know. Unknown formats are
``application/octet-stream``: with ``X-Content-Type-Options: nosniff`` a browser never renders them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

OCTET_STREAM = "application/octet-stream"
#: Codecs the WebM container allows (webmproject.org container guidelines).
WEBM_CODECS = frozenset({"vp8", "vp9", "av1", "opus", "vorbis"})

#: demuxer name -> (type with a video stream, type of audio only)
_CONTAINER_TYPES: dict[str, tuple[str, str]] = {
    "mov,mp4,m4a,3gp,3g2,mj2": ("video/mp4", "audio/mp4"),
    "avi": ("video/x-msvideo", "audio/x-msvideo"),
    "wav": (OCTET_STREAM, "audio/wav"),
    "flac": (OCTET_STREAM, "audio/flac"),
    "mp3": (OCTET_STREAM, "audio/mpeg"),
    "ogg": ("video/ogg", "audio/ogg"),
    "aac": (OCTET_STREAM, "audio/aac"),
    "aiff": (OCTET_STREAM, "audio/aiff"),
    "mpegts": ("video/mp2t", "video/mp2t"),
    "mpeg": ("video/mpeg", "audio/mpeg"),
    "flv": ("video/x-flv", "video/x-flv"),
    "asf": ("video/x-ms-asf", "audio/x-ms-wma"),
}
_SUFFIXES = {"video/mp4": ".mp4", "audio/mp4": ".m4a", "video/webm": ".webm", "audio/webm": ".webm",
             "video/x-matroska": ".mkv", "audio/x-matroska": ".mka", "video/x-msvideo": ".avi", "audio/x-msvideo": ".avi",
             "audio/wav": ".wav", "audio/flac": ".flac", "audio/mpeg": ".mp3", "video/ogg": ".ogv", "audio/ogg": ".ogg",
             "audio/aac": ".aac", "audio/aiff": ".aiff", "video/mp2t": ".ts", "video/mpeg": ".mpg", "video/x-flv": ".flv",
             "video/x-ms-asf": ".asf", "audio/x-ms-wma": ".wma"}
#: deliverables by the suffix the renderer gave them
_DELIVERABLE_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".mkv": "video/x-matroska", ".wav": "audio/wav",
                      ".flac": "audio/flac", ".srt": "application/x-subrip", ".vtt": "text/vtt", ".json": "application/json",
                      ".html": "text/html"}


def probed_media_type(media: dict[str, Any]) -> str:
    """The media type of an upload from its probe (a :class:`lipdub.media.probe.MediaInfo` as JSON:
    ``container``, ``video`` (None for audio only) with ``codec``, ``audio`` with ``codec``).

    Returns:
        e.g. ``video/mp4``, ``audio/wav``, ``video/webm``; ``application/octet-stream`` when unknown.
    """
    container = str(media.get("container") or "")
    video = media.get("video")
    audio = media.get("audio") or {}
    if container == "matroska,webm":
        codecs = {c for c in ((video or {}).get("codec"), audio.get("codec")) if c}
        kind = "webm" if codecs <= WEBM_CODECS else "x-matroska"
        return f"video/{kind}" if video else f"audio/{kind}"
    with_video, audio_only = _CONTAINER_TYPES.get(container, (OCTET_STREAM, OCTET_STREAM))
    return with_video if video else audio_only


def suffix_for(media_type: str) -> str:
    """A file suffix for ``media_type`` (``.mp4``; ``.media`` when unknown)."""
    return _SUFFIXES.get(media_type, ".media")


def deliverable_media_type(path: Path) -> str:
    """The media type of a file the pipeline rendered, by the suffix the server gave it."""
    return _DELIVERABLE_TYPES.get(path.suffix.lower(), OCTET_STREAM)


def display_name(filename: str, media_type: str) -> str:
    """The client's file name with the suffix of the probed type (``evil.html`` holding an MP4 is
    offered for saving as ``evil.mp4``)."""
    stem = Path(filename).stem or "media"
    return stem + suffix_for(media_type)
