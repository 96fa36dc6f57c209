"""Finding fixed terms in text, and protecting them through a translator with placeholders.

A term's source form is matched as a whole word sequence (not inside a longer word), with any run
of whitespace between its words. A term written all in lower case matches in any case
(``beep`` matches ``Beep`` at a sentence start); a term with a capital letter matches only as
written (``Apple`` the company, not ``apple`` the fruit).

Placeholders are made-up words (``Zqxa``, ``zqxb``...) that no translator knows, so rule-based
and neural translators pass them through unchanged (apertium copies unknown words); the case of
their first letter follows the term's; a placeholder the translator capitalized (sentence start)
gets its term capitalized when restored, one it wrote in capitals gets it in capitals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from ..contracts.translate import Term

_PLACEHOLDER_STEM = "qx"
_PLACEHOLDER_RE = re.compile(r"(?<!\w)([Zz])([Qq][Xx])([A-Za-z]+)(?!\w)")


@lru_cache(maxsize=4096)
def term_regex(term: str) -> re.Pattern[str]:
    """Compiled pattern matching ``term`` as whole words (see module doc for the case rule)."""
    words = term.split()
    body = r"\s+".join(re.escape(w) for w in words)
    flags = re.UNICODE if any(ch.isupper() for ch in term) else re.UNICODE | re.IGNORECASE
    return re.compile(rf"(?<!\w){body}(?!\w)", flags)


def contains(text: str, term: str, *, any_case: bool = False) -> bool:
    """True when ``term`` occurs in ``text`` as whole words: by the case rule of the module doc, or
    in any case with ``any_case`` (a translation, where a term may start a sentence or be in capitals)."""
    term = term.strip()
    if not term:
        return False
    if any_case:
        return re.search(term_regex(term).pattern, text, re.UNICODE | re.IGNORECASE) is not None
    return term_regex(term).search(text) is not None


@dataclass(frozen=True)
class Span:
    """An occurrence of a term in a text: ``text[start:end]`` matched ``term.source``."""

    start: int
    end: int
    term: Term


def find_terms(text: str, terms: Iterable[Term]) -> list[Span]:
    """Non-overlapping occurrences of ``terms`` in ``text``, left to right.

    Longer terms win over shorter ones they overlap (``New Jersey`` before ``Jersey``).
    """
    spans: list[Span] = []
    taken: list[tuple[int, int]] = []
    for term in sorted(set(terms), key=lambda t: (-len(t.source), t.source)):
        if not term.source.strip():
            continue
        for m in term_regex(term.source.strip()).finditer(text):
            if any(m.start() < b and a < m.end() for a, b in taken):
                continue
            taken.append((m.start(), m.end()))
            spans.append(Span(m.start(), m.end(), term))
    return sorted(spans, key=lambda s: s.start)


def placeholder(index: int, capital: bool) -> str:
    """The ``index``-th placeholder word (``Zqxa``, ``Zqxb``, ... ``Zqxz``, ``Zqxba``...)."""
    letters = ""
    n = index
    while True:
        letters = chr(ord("a") + n % 26) + letters
        n //= 26
        if n == 0:
            break
    return ("Z" if capital else "z") + _PLACEHOLDER_STEM + letters


def _placeholder_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ord(ch) - ord("a"))
    return n


@dataclass(frozen=True)
class Protected:
    """A text with its terms replaced by placeholders: ``terms[i]`` is behind placeholder ``i``."""

    text: str
    terms: tuple[Term, ...]


def protect(text: str, terms: Iterable[Term]) -> Protected:
    """Replace every occurrence of ``terms`` in ``text`` by a placeholder (one per occurrence).

    Raises nothing; a text already holding a placeholder-like word is left as is (restore ignores
    words whose index is out of range).
    """
    spans = find_terms(text, terms)
    out, used, pos = [], [], 0
    for i, span in enumerate(spans):
        out.append(text[pos:span.start])
        matched = text[span.start:span.end]
        out.append(placeholder(i, matched[:1].isupper()))
        used.append(span.term)
        pos = span.end
    out.append(text[pos:])
    return Protected("".join(out), tuple(used))


def restore(translated: str, protected: Protected) -> tuple[str, list[bool]]:
    """Put each term's target back in place of its placeholder.

    Returns:
        ``(text, restored)``: ``restored[i]`` is False when placeholder ``i`` did not come back
        (the translator dropped it).
    """
    found = [False] * len(protected.terms)

    def put(m: re.Match[str]) -> str:
        i = _placeholder_index(m.group(3).lower())
        if i >= len(protected.terms):
            return m.group(0)
        found[i] = True
        target = protected.terms[i].target
        if m.group(0).isupper():  # the translator wrote it in capitals
            return target.upper()
        if m.group(1) == "Z" and target[:1].islower():
            target = target[:1].upper() + target[1:]
        return target

    return _PLACEHOLDER_RE.sub(put, translated), found
