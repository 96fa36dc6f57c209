"""The glossary file (``--glossary terms.csv``): fixed renderings of terms, for every translator.

One entry per row: ``source term, target term`` (translate the term so), or
``source term, keep`` (leave it as written: a brand, a name). An optional third column names the
target language the row is for (ISO 639 code, e.g. ``es``); rows without it apply to every target
language, and a row for the language overrides a general row for the same term. Blank rows and rows
whose first cell starts with ``#`` are skipped; a first row ``source,target[,language]`` is a
header. The delimiter may be a comma, a semicolon or a tab (``csv.Sniffer``); the file is UTF-8
(a byte-order mark, as spreadsheet programs write, is accepted).

Matching in the source text follows :mod:`lipdub.translation.terms`: a term in lower case matches
in any case, a term with a capital letter only as written.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from ..contracts.translate import Term
from ..errors import ConfigError, InputError
from ..languages import Language, parse_language

#: The target cell that means "leave the term as written".
KEEP = "keep"
_HEADER_SOURCE = {"source", "source term", "term", "src"}
_HEADER_TARGET = {"target", "target term", "translation", "tgt"}


@dataclass(frozen=True)
class GlossaryEntry:
    """One glossary row.

    Attributes:
        source: the term as written in the source language.
        target: its rendering in the target language; None for ``keep``.
        language: ISO 639-1 (or 639-3) code of the target language it is for; None: every one.
        line_no: 1-based row number in the file, for messages.
    """

    source: str
    target: str | None
    language: str | None = None
    line_no: int = 0

    @property
    def keep(self) -> bool:
        return self.target is None

    def term(self) -> Term:
        """The :class:`~lipdub.contracts.translate.Term` this entry asks for."""
        return Term(self.source, self.source if self.target is None else self.target)


class Glossary:
    """A parsed glossary: see the module doc for the file format.

    Raises (from the constructors):
        InputError: the file cannot be read.
        ConfigError: a row has an empty term, a bad language code, too many cells, or repeats a
            term (same language) with another target; the message gives the row number.
    """

    def __init__(self, entries: list[GlossaryEntry], origin: str = "glossary") -> None:
        self.origin = origin
        self.entries = list(entries)
        seen: dict[tuple[str, str | None], GlossaryEntry] = {}
        for e in self.entries:
            key = (_key(e.source), e.language)
            prev = seen.get(key)
            if prev is not None and prev.target != e.target:
                raise ConfigError(
                    f"{origin}: {e.source!r} is given twice with different targets (rows {prev.line_no} and {e.line_no})",
                    "keep one row per term and language (add a third column with the language code to tell languages apart)",
                )
            seen[key] = e

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Glossary":
        """Read a glossary CSV file."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the glossary {p} ({exc})", "pass a UTF-8 CSV file: source term, target term or keep") from exc
        return cls.parse(text, origin=str(p))

    @classmethod
    def parse(cls, text: str, origin: str = "glossary") -> "Glossary":
        """Parse glossary CSV text (see the module doc)."""
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        entries: list[GlossaryEntry] = []
        for line_no, row in enumerate(csv.reader(io.StringIO(text), dialect), start=1):
            cells = [c.strip() for c in row]
            while cells and not cells[-1]:
                cells.pop()
            if not cells or cells[0].startswith("#"):
                continue
            if not entries and cells[0].lower() in _HEADER_SOURCE and len(cells) > 1 and cells[1].lower() in _HEADER_TARGET:
                continue
            entries.append(_entry(cells, line_no, origin))
        return cls(entries, origin)

    def for_target(self, target: Language) -> list[GlossaryEntry]:
        """The entries that apply to ``target``: its own rows, then general rows for other terms."""
        own = {_key(e.source): e for e in self.entries if e.language == target.code}
        general = [e for e in self.entries if e.language is None and _key(e.source) not in own]
        return list(own.values()) + general

    def __len__(self) -> int:
        return len(self.entries)


def _key(term: str) -> str:
    return " ".join(term.split()).casefold()


def _entry(cells: list[str], line_no: int, origin: str) -> GlossaryEntry:
    hint = "each row is: source term, target term (or keep)[, target language code]"
    if len(cells) < 2 or not cells[0] or not cells[1]:
        raise ConfigError(f"{origin} row {line_no}: needs a source term and a target term (or keep), got {cells!r}", hint)
    if len(cells) > 3:
        raise ConfigError(f"{origin} row {line_no}: {len(cells)} cells, at most 3", hint + "; quote a term that holds the delimiter")
    language = None
    if len(cells) == 3 and cells[2]:
        try:
            language = parse_language(cells[2]).code
        except ConfigError as exc:
            raise ConfigError(f"{origin} row {line_no}: {exc.message}", exc.hint) from exc
    source = " ".join(cells[0].split())
    target = None if cells[1].lower() == KEEP else " ".join(cells[1].split())
    return GlossaryEntry(source, target, language, line_no)
