"""Checks of the files a user names: what an input path really is, and whether an output can be
written where it is asked for, each failing with one line that says what the path is.

An input must be a regular file with bytes in it: a FIFO or socket would block or be read once, a
device or a ``/proc`` file is not media (``/proc/1/mem`` reports 0 bytes, but is not empty: reading
it fails), a symbolic link loop has no file at its end. Outputs are checked by creating their
directory and a probe file there, so that a read-only, immutable or virtual (``/proc``, ``/sys``)
location fails before any work, whoever runs lipdub (root ignores permission bits).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import InputError

#: What ``stat`` calls a path that is not a regular file, for the messages.
_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"))


def _stat(path: Path, what: str) -> os.stat_result:
    """``os.stat`` of ``path`` with its failures as one-line :class:`InputError`\\ s."""
    try:
        return path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{what} {path} is a symbolic link loop (it never reaches a file)", "point it at a real file") from None
        if exc.errno == errno.ENOENT:
            if path.is_symlink():
                raise InputError(f"{what} {path} is a symbolic link to {os.readlink(path)}, which does not exist",
                                 "fix the link or pass the file itself") from None
            raise InputError(f"{what} {path} does not exist", "check the path") from None
        if exc.errno == errno.ENOTDIR:
            raise InputError(f"{what} {path} does not exist (a part of the path is a file, not a directory)", "check the path") from None
        raise InputError(f"cannot look at {what} {path} ({exc.strerror})", "check the path and its permissions") from None


def check_input_file(path: str | os.PathLike, what: str = "input") -> Path:
    """Check that ``path`` is a readable regular file holding bytes; returns it as a :class:`Path`.

    Args:
        what: how the messages name the file (``"input"``, ``"transcript"``, ``"glossary"``).

    Raises:
        InputError: missing path, broken link, symbolic link loop, a directory, FIFO, socket or
            device, an unreadable file, a file of 0 bytes, or a virtual file that reports 0 bytes
            (``/proc``): each says which.
    """
    p = Path(path)
    st = _stat(p, what)
    for test, kind in _KINDS:
        if test(st.st_mode):
            hint = ("pass a video or audio file" if kind == "a directory" else
                    "save the stream to a regular file first (lipdub reads its input several times)" if "FIFO" in kind or "socket" in kind
                    else "pass a regular file")
            raise InputError(f"{what} {p} is {kind}, not a file", hint)
    try:
        with open(p, "rb") as f:
            first = f.read(1)
    except OSError as exc:
        reason = "permission denied" if exc.errno == errno.EACCES else exc.strerror
        special = " (a special file that reports 0 bytes)" if st.st_size == 0 else ""
        raise InputError(f"{what} {p} cannot be read{special}: {reason}", "pass a regular file you can read") from None
    if st.st_size == 0:
        if first:
            raise InputError(f"{what} {p} is a virtual file (it reports 0 bytes but has content, like /proc files), not media",
                             "pass a regular file")
        raise InputError(f"{what} {p} is empty (0 bytes)", "pass a complete file")
    return p


def check_writable_dir(directory: Path, flag: str, named: Path | None = None) -> None:
    """Create ``directory`` (and its parents) when missing and check that a file can be made in it.

    Args:
        flag: the option that named it (``-o``, ``--project``), for the message.
        named: the path the option gave, when ``directory`` is its parent (``-o DIR/x.mp4``).

    Raises:
        InputError: a part of the path is a file, or the directory cannot be created or written
            (read-only, immutable, a virtual file system, no permission): the message names the
            directory and the reason.
    """
    d = Path(directory)
    said = f"{flag} {named or d}"
    for parent in (d, *d.parents):
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise InputError(f"{said}: {parent} is a file, not a directory", f"pass another {flag} path")
            break
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".lipdub-write-check-{os.getpid()}"
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        where = f"its directory {d}" if named is not None else "it"
        raise InputError(f"{said}: {where} cannot be written ({exc.strerror})", f"pass a {flag} path in a writable directory") from None
