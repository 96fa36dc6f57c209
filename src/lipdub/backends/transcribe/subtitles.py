"""Import an existing SRT or WebVTT subtitle file as the transcript (instead of running ASR).

Parsers: the ``srt`` package (SubRip) and ``webvtt-py`` (W3C WebVTT). One cue becomes one
:class:`TranscriptSegment`; cue lines are joined with spaces and markup is removed (HTML-like tags
such as ``<i>``/``<v Name>``/``<c.x>``, HTML entities, ASS override blocks ``{\\an8}``).
Cues carry no word timing, so imported segments have **no words** (``words == []``); stages that
need word times must work from segment times only.

:func:`fit_to_media` then makes the cues fit the media they dub, before any expensive stage (issue
16: a cue at 10:00 on a 6 s video gave a 605 s output, one 40,000-word line ran synthesis past 5
minutes and 13.5 GB): cues starting after the end of the media are dropped and cues running past it
are cut there, each with a warning; a cue or a whole file with more text than can be spoken in its
time is refused (:data:`MAX_CHARS_PER_S`); lines longer than :data:`MAX_LINE_CHARS` are split at
phrase boundaries. Files over :data:`MAX_TRANSCRIPT_BYTES` are refused unread.
"""

from __future__ import annotations

import html
import logging
import os
import re
from pathlib import Path

from ...contracts.transcribe import Transcript, TranscriptSegment
from ...errors import ConfigError, InputError
from ...files import check_input_file
from ...languages import parse_language
from ...registry import require_module

logger = logging.getLogger(__name__)

#: Largest subtitle file read (10 MiB: about 100 hours of dense subtitles).
MAX_TRANSCRIPT_BYTES = 10 * 1024 * 1024
#: Most characters of text per second of a cue (over at least 1 s), and of the whole file per second of
#: media. Fast speech is about 7 syllables/s, some 27 characters/s of English; the fit speeds a line
#: up 2x at most, so 60 characters/s cannot be spoken in their time by any voice.
MAX_CHARS_PER_S = 60.0
#: Longer lines are split at phrase boundaries (sentence ends, then clause punctuation, then words),
#: their time shared by characters: one TTS call per line stays small (a minute of speech at most).
MAX_LINE_CHARS = 500
_SENTENCE_END_RE = re.compile(r"(?<=[.!?…;:])\s+")
_CLAUSE_END_RE = re.compile(r"(?<=[,—–])\s+")

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
        InputError: the file is missing, not a regular file, larger than :data:`MAX_TRANSCRIPT_BYTES`,
            not UTF-8, malformed, has no cue with text, or has a cue that ends before it starts.
    """
    if language is None:
        raise ConfigError("the language of imported subtitles is not known", "pass the source language with --from (e.g. --from en)")
    lang = parse_language(language)
    path = check_input_file(path, "transcript")
    if path.stat().st_size > MAX_TRANSCRIPT_BYTES:
        raise InputError(f"transcript {path} has {path.stat().st_size} bytes, more than a subtitle file holds "
                         f"({MAX_TRANSCRIPT_BYTES // (1024 * 1024)} MiB at most)", "pass an SRT or VTT file")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"subtitle file {path} not found", "check the path") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason})",
                         "re-save the subtitles as UTF-8 (iconv -f latin1 -t utf-8 IN > OUT for Latin-1)") from exc
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


def _pieces(text: str, max_chars: int) -> list[str]:
    """``text`` cut into pieces of at most ``max_chars`` characters: at sentence ends first, then at
    clause punctuation, then between words (a single longer word is cut)."""
    if len(text) <= max_chars:
        return [text]
    for pattern in (_SENTENCE_END_RE, _CLAUSE_END_RE, re.compile(r"\s+")):
        parts = [p for p in pattern.split(text) if p]
        if len(parts) > 1:
            break
    else:
        return [text[i:i + max_chars] for i in range(0, len(text), max_chars)]
    out: list[str] = []
    for part in parts:
        for piece in _pieces(part, max_chars):
            if out and len(out[-1]) + 1 + len(piece) <= max_chars:
                out[-1] = f"{out[-1]} {piece}"
            else:
                out.append(piece)
    return out


def split_long_line(seg: TranscriptSegment, max_chars: int = MAX_LINE_CHARS) -> list[TranscriptSegment]:
    """``seg`` as lines of at most ``max_chars`` characters, split at phrase boundaries
    (:func:`_pieces`), each getting the share of the segment's time that its characters have."""
    pieces = _pieces(seg.text, max_chars)
    if len(pieces) == 1:
        return [seg]
    total = sum(len(p) for p in pieces)
    out, t = [], seg.start_s
    for i, p in enumerate(pieces):
        end = seg.end_s if i == len(pieces) - 1 else t + (seg.end_s - seg.start_s) * len(p) / total
        out.append(TranscriptSegment(start_s=round(t, 3), end_s=round(end, 3), text=p))
        t = end
    return out


def fit_to_media(transcript: Transcript, media_duration_s: float, origin: str = "transcript") -> tuple[Transcript, list[str]]:
    """Make imported cues fit the media they dub (see the module doc).

    Cues that start at or after ``media_duration_s`` are dropped, cues that end after it are cut
    there; lines over :data:`MAX_LINE_CHARS` are split at phrase boundaries.

    Returns:
        The fitted transcript and one note per change (:func:`log_notes` tells them).

    Raises:
        InputError: no cue starts inside the media; a cue holds more than :data:`MAX_CHARS_PER_S`
            characters per second of its time (at least 1 s); the whole file more than that per
            second of media.
    """
    notes: list[str] = []
    kept: list[TranscriptSegment] = []
    for index, seg in enumerate(transcript.segments, start=1):
        if seg.start_s >= media_duration_s:
            notes.append(f"cue {index} starts at {seg.start_s:.3f} s, after the end of the media ({media_duration_s:.3f} s): dropped")
            continue
        if seg.end_s > media_duration_s:
            notes.append(f"cue {index} ends at {seg.end_s:.3f} s, after the end of the media ({media_duration_s:.3f} s): cut there")
            seg = TranscriptSegment(start_s=seg.start_s, end_s=media_duration_s, text=seg.text, words=seg.words)
        span_s = max(seg.end_s - seg.start_s, 1.0)
        if len(seg.text) > MAX_CHARS_PER_S * span_s:
            raise InputError(f"{origin}: cue {index} holds {len(seg.text)} characters for {seg.end_s - seg.start_s:.2f} s "
                             f"(more than {MAX_CHARS_PER_S:g} a second: no voice can speak it in its time)",
                             "split it into cues with times of their own, or fix its times")
        kept.append(seg)
    if not kept:
        raise InputError(f"{origin}: every cue starts after the end of the media ({media_duration_s:.3f} s)",
                         "pass the subtitles of this media (or check their time offset)")
    chars = sum(len(s.text) for s in kept)
    if chars > MAX_CHARS_PER_S * max(media_duration_s, 1.0):
        raise InputError(f"{origin}: its {len(kept)} cues hold {chars} characters for {media_duration_s:.2f} s of media "
                         f"(more than {MAX_CHARS_PER_S:g} a second: more than can be spoken)", "pass the subtitles of this media")
    lines: list[TranscriptSegment] = []
    for seg in kept:
        parts = split_long_line(seg)
        if len(parts) > 1:
            notes.append(f"a {len(seg.text)}-character cue at {seg.start_s:.3f} s was split into {len(parts)} lines "
                         f"(at most {MAX_LINE_CHARS} characters each)")
        lines += parts
    fitted = Transcript(language=transcript.language, segments=lines, language_probability=transcript.language_probability,
                        model=transcript.model)
    return fitted, notes


def log_notes(origin: str, notes: list[str], limit: int = 5) -> None:
    """Log the first ``limit`` notes of :func:`fit_to_media` as warnings, then how many more there are."""
    for note in notes[:limit]:
        logger.warning("%s: %s", origin, note)
    if len(notes) > limit:
        logger.warning("%s: %d more cues dropped, cut or split", origin, len(notes) - limit)
