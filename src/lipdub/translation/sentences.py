"""A sentence split across lines: translated as one, split back by the lines' share of the source.

Speech recognizers cut segments at pauses, not at sentence ends, so one sentence often runs over two
lines ("we thought Tony should be a little freaked out by that and so" / "what he's doing to
compensate"). Translated line by line, each half is translated without the verb or the object it
needs. :func:`group_sentences` joins such lines; :func:`split_translation` cuts the translation of
the whole sentence back into as many parts, at word boundaries, each part getting the share of the
translation's syllables that its line had of the source's (the lines' slots were cut for that much
speech), preferring a cut after a punctuation mark when one is close.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from ..voice.params import count_syllables
from .terms import term_regex

#: A line ends a sentence when its last non-quote character is one of these.
_SENTENCE_END_RE = re.compile(r"[.!?…。！？][\"'”’»)\]]*\s*$")
_PUNCT_END_RE = re.compile(r"[,;:.!?…，、。！？][\"'”’»)\]]*$")
#: Cost bonus (share of the whole text) of a cut right after a punctuation mark.
PUNCTUATION_BONUS = 0.08


@dataclass(frozen=True)
class LineSpan:
    """What :func:`group_sentences` needs to know of a line (all optional but ``text``)."""

    text: str
    speaker: str | None = None
    start_s: float | None = None
    end_s: float | None = None


def ends_sentence(text: str) -> bool:
    """True when ``text`` ends with sentence-final punctuation (``.``, ``!``, ``?``, ``…``, CJK)."""
    return bool(_SENTENCE_END_RE.search(text.strip()))


def group_sentences(lines: Sequence[LineSpan], *, max_lines: int = 3, max_gap_s: float = 1.5) -> list[list[int]]:
    """Group consecutive lines that make one sentence.

    Line ``i`` is joined with line ``i + 1`` when its text does not end a sentence, line ``i + 1``
    does not start with a capital letter (recognizers capitalize a new sentence; a continuation
    starts in lower case), both are non-empty, they have the same speaker (when both are known),
    the pause between them is at most ``max_gap_s`` seconds (when the times are known), and the
    group has fewer than ``max_lines``.

    Returns:
        Lists of line indices covering ``0 .. len(lines) - 1`` in order, one list per group.
    """
    groups: list[list[int]] = []
    for i, line in enumerate(lines):
        if groups and _continues(lines[groups[-1][-1]], line, len(groups[-1]), max_lines, max_gap_s):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _continues(prev: LineSpan, line: LineSpan, group_len: int, max_lines: int, max_gap_s: float) -> bool:
    if group_len >= max_lines or not prev.text.strip() or not line.text.strip() or ends_sentence(prev.text):
        return False
    first = next((ch for ch in line.text if ch.isalpha()), "")
    if first.isupper():
        return False
    if prev.speaker is not None and line.speaker is not None and prev.speaker != line.speaker:
        return False
    if prev.end_s is not None and line.start_s is not None and line.start_s - prev.end_s > max_gap_s:
        return False
    return True


def _inner_boundaries(text: str, words: list[re.Match[str]], atomic: Sequence[str]) -> set[int]:
    """Boundaries ``b`` (between ``words[b-1]`` and ``words[b]``) inside an ``atomic`` phrase."""
    inner: set[int] = set()
    for phrase in {a for a in atomic if len(a.split()) > 1}:
        for m in term_regex(phrase).finditer(text):
            inner.update(b for b in range(1, len(words)) if m.start() <= words[b - 1].start() and words[b].end() <= m.end())
    return inner


def split_translation(text: str, weights: Sequence[float], language: str | None = None,
                      atomic: Sequence[str] = ()) -> list[str]:
    """Cut ``text`` into ``len(weights)`` parts at word boundaries, part ``k`` getting about
    ``weights[k] / sum(weights)`` of the syllables (:func:`lipdub.voice.params.count_syllables`).

    Args:
        text: the translation of the whole sentence.
        weights: the source lines' shares, e.g. their syllable counts (> 0 each).
        language: ``text``'s language (ISO 639-1), for syllable counting.
        atomic: phrases never cut (multi-word names and glossary terms).

    Returns:
        ``len(weights)`` strings; each non-empty when ``text`` has at least that many words.
        Among cuts within :data:`PUNCTUATION_BONUS` of the ideal share, one after a punctuation
        mark is taken.
    """
    k = len(weights)
    if k <= 1:
        return [text.strip()]
    matches = list(re.finditer(r"\S+", text))
    words = [m.group(0) for m in matches]
    inner = _inner_boundaries(text, matches, atomic)
    n = len(words)
    if n < k:
        return words + [""] * (k - n)
    syl = [max(1, count_syllables(w, language)) for w in words]
    cum = [0]
    for s in syl:
        cum.append(cum[-1] + s)
    total = cum[-1]
    wsum = float(sum(weights)) or 1.0
    cuts, prev, acc = [], 0, 0.0
    for part in range(1, k):
        acc += weights[part - 1]
        ideal = total * acc / wsum
        lo, hi = prev + 1, n - (k - part)
        allowed = [b for b in range(lo, hi + 1) if b not in inner] or list(range(lo, hi + 1))
        best = min(allowed,
                   key=lambda b: abs(cum[b] - ideal) / total - (PUNCTUATION_BONUS if _PUNCT_END_RE.search(words[b - 1]) else 0.0))
        cuts.append(best)
        prev = best
    bounds = [0] + cuts + [n]
    return [" ".join(words[a:b]) for a, b in zip(bounds, bounds[1:])]
