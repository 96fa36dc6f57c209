"""Names in a transcript, to keep untranslated: capitalized words that are not at a sentence start.

The heuristic of truecasing and simple named-entity spotting (e.g. Mikheev 1999, "A knowledge-free
method for capitalized word disambiguation", ACL): in a cased language a word written with a capital
letter where a sentence cannot start is a proper name. Rules, over the whole transcript:

- a word counts when it starts with a capital letter (or is an acronym of two or more capitals)
  and is not the first word of a line nor of a sentence (after ``.``, ``!``, ``?``, ``...``, ``:``,
  an opening quote or a dash; not after the abbreviations ``Mr.``, ``Dr.``...);
- it is dropped when the same word appears in lower case elsewhere in the transcript (``Well``
  after a comma, ``will`` and ``Will``), and for English sources when it is ``I`` (``I'm``...),
  a weekday, a month, a title (``Mr``), the name of a major language (ISO 639-1 names from
  pycountry) or a demonym (``Americans``, ``Mexican``: a country or continent name, from pycountry,
  with a demonym suffix ``-(i|e)an``, ``-ese``, ``-ish``, ``-i``, ``-ic``): those are translated;
- adjacent capitalized words make one name (``New Jersey``); a possessive ``'s`` is not part of it.

German and Luxembourgish capitalize every noun, so no names are detected for those sources (list
them in the glossary as ``keep``). Scripts without letter case (Chinese, Arabic...) give none.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..languages import Language

#: Source languages whose orthography capitalizes common nouns.
NOUN_CAPITALIZING = frozenset({"de", "lb"})

_WORD_RE = re.compile(r"[^\W\d_][\w'’\-]*", re.UNICODE)
_SENTENCE_END_RE = re.compile(r"(?:[.!?…:]|^)[\"'“”‘’»«)\]]*\s*$|[\"“‘«(\[—–-]\s*$")
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "vs", "mt", "gen", "sen", "rep", "gov", "capt", "lt", "col", "sgt"})
_POSSESSIVE_RE = re.compile(r"['’]s?$")
_EN_STOP = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday january february march april may june july august "
    "september october november december mr mrs ms miss dr sir madam mister god okay ok oh hey hi hello yes no yeah".split()
)


@lru_cache(maxsize=1)
def _language_names() -> frozenset[str]:
    import pycountry

    # the major languages only (those with an ISO 639-1 code): 639-3 also names e.g. "Maria"
    return frozenset(lang.name.split(" (")[0].split(";")[0].casefold() for lang in pycountry.languages if hasattr(lang, "alpha_2"))


_DEMONYM_SUFFIXES = ("ian", "ean", "an", "ese", "ish", "i", "ic")
_STEM_ENDINGS = ("", "a", "o", "y", "e", "ia", "on", "any", "land")
_CONTINENTS = frozenset({"america", "europe", "africa", "asia", "australia", "oceania", "antarctica"})


@lru_cache(maxsize=1)
def _place_names() -> frozenset[str]:
    import pycountry

    names = set(_CONTINENTS)
    for c in pycountry.countries:
        for n in (c.name, getattr(c, "common_name", None)):
            if n and " " not in n and "," not in n:
                names.add(n.casefold())
    return frozenset(names)


def _is_demonym(word: str) -> bool:
    """English demonyms: a place name of :func:`_place_names` plus a demonym suffix (plural too)."""
    w = word.casefold()
    w = w[:-1] if w.endswith("s") and len(w) > 4 else w
    places = _place_names()
    for suffix in _DEMONYM_SUFFIXES:
        if w.endswith(suffix) and len(w) > len(suffix) + 2:
            stem = w[: -len(suffix)]
            if any(stem + e in places for e in _STEM_ENDINGS):
                return True
    return False


def _is_capitalized(word: str) -> bool:
    return word[:1].isupper()


def _at_sentence_start(text: str, start: int) -> bool:
    before = text[:start]
    if not before.strip():
        return True
    if _SENTENCE_END_RE.search(before) is None:
        return False
    # "Mr. Smith": a period after an abbreviation does not end a sentence
    prev = re.search(r"(\w+)\.\s*$", before)
    return not (prev and prev.group(1).casefold() in _ABBREVIATIONS)


def _excluded(word: str, source: Language, lowercase_seen: set[str]) -> bool:
    folded = word.casefold()
    if folded in lowercase_seen:
        return True
    if source.code == "en":
        if word == "I" or re.fullmatch(r"I['’](m|d|ll|ve)", word):
            return True
        if folded in _EN_STOP or folded in _language_names() or _is_demonym(word):
            return True
    return False


def detect_names(texts: list[str], source: Language) -> list[str]:
    """Names in ``texts`` (the lines of one transcript, in order), by the rules of the module doc.

    Args:
        texts: the transcript's lines.
        source: their language.

    Returns:
        Distinct names in order of first appearance (``["Diane", "New Jersey", ...]``).
    """
    if source.code in NOUN_CAPITALIZING:
        return []
    lowercase_seen = {m.group(0).casefold() for t in texts for m in _WORD_RE.finditer(t) if m.group(0)[:1].islower()}
    names: list[str] = []
    for text in texts:
        run: list[str] = []
        prev_end, prev_possessive = -1, False
        for m in _WORD_RE.finditer(text):
            word = _POSSESSIVE_RE.sub("", m.group(0))
            ok = (bool(word) and _is_capitalized(word) and not _at_sentence_start(text, m.start())
                  and not _excluded(word, source, lowercase_seen))
            joins = bool(run) and text[prev_end:m.start()] == " " and not prev_possessive
            if not (ok and (joins or not run)):
                _flush(run, names)
                run = []
            if ok:
                run.append(word)
            prev_end, prev_possessive = m.end(), word != m.group(0)
        _flush(run, names)
    return names


def _flush(run: list[str], names: list[str]) -> None:
    if run:
        name = " ".join(run)
        if name not in names:
            names.append(name)
