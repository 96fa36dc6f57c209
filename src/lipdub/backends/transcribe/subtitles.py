"""Import an existing SRT or WebVTT subtitle file as the transcript (instead of running ASR).

Parsers: the ``srt`` package (SubRip) and ``webvtt-py`` (W3C WebVTT). One cue becomes one
:class:`TranscriptSegment`; cue lines are joined with spaces and markup is removed (HTML-like tags
such as ``<i>``/``<v Name>``/``<c.x>``, HTML entities, ASS override blocks ``{\\an8}``).
Cues carry no word timing, so imported segments have **no words** (``words == []``); stages that
need word times must work from segment times only.
"""

from __future__ import annotations

import html
import logging
import os
import re
from pathlib import Path

from ...contracts.transcribe import Transcript, TranscriptSegment
from ...errors import ConfigError, InputError
from ...languages import parse_language
from ...registry import require_module

logger = logging.getLogger(__name__)

_TAG_RE = re.compile(r"<[^>]*>")
_ASS_RE = re.compile(r"\{\\[^}]*\}")
_SPACE_RE = re.compile(r"\s+")


def clean_cue_text(text: str) -> str:
    """Remove subtitle markup from a cue's text and collapse whitespace to single spaces.

    Removes tags (``<i>``, ``<font ...>``, ``<v Speaker>``, ``<00:00:01.000>``), ASS override
    blocks (``{\\an8}``) and decodes HTML entities (``&amp;`` -> ``&``).
    """
    text = _ASS_RE.sub("", text)
    text = _TAG_RE.sub("", text)
    text = html.unescape(text)
    return _SPACE_RE.sub(" ", text).strip()


def _detect_format(path: Path, content: str) -> str:
    suffix = path.suffix.lower()
    if suffix in (".srt", ".vtt"):
        return suffix[1:]
    if content.lstrip("\ufeff").startswith("WEBVTT"):
        return "vtt"
    return "srt"


def _parse_srt(content: str, path: Path) -> list[tuple[float, float, str]]:
    srt = require_module("srt", "srt")
    try:
        subs = list(srt.parse(content))
    except srt.SRTParseError as exc:
        raise InputError(f"{path} is not a valid SRT file ({exc})", "fix the file or export it again as SubRip (.srt)") from exc
    return [(s.start.total_seconds(), s.end.total_seconds(), s.content) for s in subs]


def _parse_vtt(content: str, path: Path) -> list[tuple[float, float, str]]:
    webvtt = require_module("webvtt", "webvtt-py")
    try:
        vtt = webvtt.from_string(content)
    except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError) as exc:
        raise InputError(f"{path} is not a valid WebVTT file ({exc})", "fix the file; it must start with WEBVTT and hold timed cues") from exc

    def seconds(ts) -> float:
        return ts.hours * 3600 + ts.minutes * 60 + ts.seconds + ts.milliseconds / 1000

    return [(seconds(c.start_time), seconds(c.end_time), c.raw_text) for c in vtt.captions]


def import_subtitles(path: str | os.PathLike, language: str | None) -> Transcript:
    """Read an SRT or WebVTT file as a :class:`Transcript`.

    The format is taken from the extension (``.srt``/``.vtt``), else from the content (a file
    starting with ``WEBVTT`` is WebVTT, anything else is parsed as SRT).

    Args:
        path: the subtitle file (UTF-8, a BOM is allowed).
        language: the language of the subtitles (``"en"``, ``"spa"``...); required, since a
            subtitle file does not say which language it is in.

    Returns:
        A transcript with one segment per non-empty cue, sorted by start time, times in seconds,
        texts without markup, no words, ``language`` as ISO 639-1 (or 639-3 when there is no
        639-1 code), ``language_probability`` None and ``model`` ``"subtitles:<format>"``.

    Raises:
        ConfigError: ``language`` is None or not an ISO 639 code.
        InputError: the file is missing, not UTF-8, malformed, has no cue with text, or has a cue
            that ends before it starts.
    """
    if language is None:
        raise ConfigError("the language of imported subtitles is not known", "pass the source language with --from (e.g. --from en)")
    lang = parse_language(language)
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"subtitle file {path} not found", "check the path") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text ({exc.reason})", "re-save the subtitles as UTF-8") from exc
    except OSError as exc:
        raise InputError(f"cannot read subtitle file {path} ({exc})", "check the path and its permissions") from exc
    fmt = _detect_format(path, content)
    cues = _parse_srt(content, path) if fmt == "srt" else _parse_vtt(content, path)
    segments: list[TranscriptSegment] = []
    for index, (start_s, end_s, raw) in enumerate(cues, start=1):
        if end_s < start_s:
            raise InputError(
                f"{path}: cue {index} ends ({end_s:.3f} s) before it starts ({start_s:.3f} s)", "fix that cue's times"
            )
        text = clean_cue_text(raw)
        if text:
            segments.append(TranscriptSegment(start_s=start_s, end_s=end_s, text=text))
    if not segments:
        raise InputError(f"{path} holds no subtitle cue with text", f"check that it is a non-empty {fmt.upper()} file")
    segments.sort(key=lambda s: (s.start_s, s.end_s))
    logger.info("imported %d cues from %s (%s, %s)", len(segments), path, fmt, lang.code)
    return Transcript(language=lang.code, segments=segments, language_probability=None, model=f"subtitles:{fmt}")
