"""Checks of a dub's paths made before the first stage (issue 16: ``-o`` naming the input overwrote
the source with the dub; ``-o x.txt`` made a directory; a ``--project`` that is a file, ``-o`` in a
read-only directory or in ``/proc`` failed with an internal error, some only after every stage).

What is protected: the input media, the ``--transcript`` and the ``--glossary``. No deliverable
(the media, its subtitles, stems directory and report, :class:`lipdub.layout.Deliverables`) may be
one of them (same path, a link to it or a hard link), nor a directory holding one; the project
directory may be neither the input nor hold it (lipdub writes and replaces files there). Every
directory written to must be creatable and writable (:func:`lipdub.files.check_writable_dir`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..config import DubConfig
from ..errors import InputError
from ..files import check_writable_dir
from ..layout import Deliverables

#: A line of ``script.json`` (source text or a target text, as people edit it) holds at most this many
#: characters (the service's line edits have the same limit): one TTS call stays small.
MAX_SCRIPT_LINE_CHARS = 2000


def _resolve(p: Path) -> Path:
    try:
        return p.resolve()
    except (RuntimeError, OSError):  # Python's resolve raises RuntimeError for a link loop
        raise InputError(f"{p} is a symbolic link loop (it never reaches a file)", "pass another path") from None


def _same(a: Path, b: Path) -> bool:
    if _resolve(a) == _resolve(b):
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _holds(directory: Path, path: Path) -> bool:
    """Whether ``directory`` is, or is an ancestor of, ``path`` (links resolved)."""
    d = _resolve(directory)
    p = _resolve(path)
    return d == p or d in p.parents


def protected_files(config: DubConfig) -> dict[str, Path]:
    """The user's files no output may replace: ``{"input": ..., "transcript": ..., "glossary": ...}``
    (those given)."""
    out = {"input": Path(config.input)}
    if config.transcript is not None:
        out["transcript"] = Path(config.transcript)
    if config.glossary is not None:
        out["glossary"] = Path(config.glossary)
    return out


def check_project_dir(config: DubConfig, project: Path) -> None:
    """The project directory is a directory (or can be made one), is not the input and does not hold it,
    and can be written.

    Raises:
        InputError: it is a file, it is or holds the input, or it cannot be written.
    """
    flag = "--project" if config.project_dir is not None else "the project directory"
    if (project.exists() or project.is_symlink()) and not project.is_dir():
        raise InputError(f"{flag} {project} is a file, not a directory", "pass a directory (it is made when missing)")
    source = Path(config.input)
    if _holds(project, source):
        raise InputError(f"{flag} {project} holds the input {source.name}: lipdub writes and replaces files in a project directory",
                         "pass a --project directory of its own (the default is OUT/<input name>.lipdub)")
    check_writable_dir(project, flag)


def check_outputs(config: DubConfig, outputs: dict[str, Path], source_language: str | None) -> None:
    """No deliverable of any language replaces a protected file (:func:`protected_files`) or is a
    directory; every output directory can be written.

    Args:
        outputs: each language's main output (:func:`lipdub.layout.output_paths`).
        source_language: the source language when known (it names the source subtitles).

    Raises:
        InputError: a deliverable is (or, for the stems directory, holds) the input, the transcript or
            the glossary; the media path is an existing directory; a directory cannot be written.
    """
    protected = protected_files(config)
    for media in outputs.values():
        files = Deliverables(media, source_language or "", config.deliver).all()
        files["stems"] = Deliverables(media, source_language or "", config.deliver).stems_dir
        for key, path in files.items():
            for what, mine in protected.items():
                if _same(path, mine) or (key == "stems" and _holds(path, mine)):
                    raise InputError(f"-o {config.output}: the dub's {path.name} would overwrite the {what} {mine}",
                                     f"pass an -o that is not the {what} (a directory, or another file name)")
        if media.is_dir():
            raise InputError(f"-o {media} is a directory, but a media suffix names a file", "pass a directory without that suffix or another file name")
        check_writable_dir(media.parent, "-o", named=media if Path(config.output).suffix else None)


def check_script_lines(segments) -> None:
    """Every line of the script (source and target texts, edited or not) holds at most
    :data:`MAX_SCRIPT_LINE_CHARS` characters.

    Raises:
        InputError: names the segment, the language and the length.
    """
    for seg in segments:
        texts = [("source_text", seg.source_text)] + [(f"targets.{code}.text", t.text) for code, t in seg.targets.items()]
        for field, text in texts:
            if len(text) > MAX_SCRIPT_LINE_CHARS:
                raise InputError(f"script.json: segment {seg.id}'s {field} has {len(text)} characters (at most {MAX_SCRIPT_LINE_CHARS})",
                                 "split it into several segments with times of their own")
