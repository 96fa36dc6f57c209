"""Subtitle layout: long cues split at phrase boundaries, balanced line breaks, reading speed.

:func:`layout_cues` turns timed lines (one cue per spoken line) into cues that keep a
:class:`~lipdub.subtitles.style.SubtitleStyle`:

1. **Split** (:func:`split_text`): a text that does not fit in ``max_lines`` lines of
   ``max_chars_per_line``, or would stay longer than ``max_duration_s``, is cut in two at the best
   phrase boundary, in this order: after sentence punctuation, after other punctuation, before a
   conjunction, before a preposition, any word boundary (never right after an article). When two
   parts can both fit and each last ``min_duration_s``, the best class among such cuts wins (its
   most balanced cut); otherwise the text is cut at the best class within 2:1 and cut again until
   each part fits. The cue's time is shared among the parts in proportion to their characters, so
   each part keeps the line's own reading speed.
2. **Break** (:func:`break_lines`): a part wider than one line gets the line break of the same
   classes (most balanced break of the best class within 2:1; never after an article).
3. **Time**: at least ``min_gap_frames`` between cues; a cue shorter than ``min_duration_s`` or
   faster than ``max_cps`` is lengthened into the following silence (up to the next cue, and for the
   reading speed by at most ``max_extension_s`` past the speech, the TTSG's 12 frames).

A cue still faster than ``max_cps`` after that has more text than its speech time can show; it is
kept (the subtitles must follow the dub) and listed by :func:`check_cues`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from .cue import Cue
from .style import SubtitleStyle

SENTENCE_END = ".!?…。！？"
CLAUSE_PUNCT = ",;:—–，、；："
# Words that start a clause (break before them) and prepositions (break before, second choice),
# and articles (never break after them): per language, lower case.
CONJUNCTIONS = {
    "en": {"and", "but", "or", "so", "because", "that", "which", "who", "when", "while", "if", "although", "though", "then"},
    "es": {"y", "e", "pero", "o", "u", "porque", "que", "cuando", "si", "aunque", "pues", "ni", "mientras"},
    "ca": {"i", "però", "o", "perquè", "que", "quan", "si", "encara", "mentre", "ni"},
    "fr": {"et", "mais", "ou", "donc", "car", "parce", "que", "quand", "si", "lorsque", "puisque"},
    "de": {"und", "aber", "oder", "denn", "weil", "dass", "wenn", "als", "ob", "sondern", "während"},
    "it": {"e", "ma", "o", "perché", "che", "quando", "se", "anche", "mentre"},
    "pt": {"e", "mas", "ou", "porque", "que", "quando", "se", "embora", "enquanto"},
}
PREPOSITIONS = {
    "en": {"in", "on", "at", "to", "from", "with", "for", "of", "about", "into", "over", "after", "before", "down", "up"},
    "es": {"en", "de", "con", "para", "por", "a", "sin", "sobre", "desde", "hasta", "entre"},
    "ca": {"a", "en", "de", "amb", "per", "sense", "sobre", "des", "fins", "entre"},
    "fr": {"à", "en", "de", "avec", "pour", "par", "sans", "sur", "depuis", "dans", "chez"},
    "de": {"in", "an", "auf", "zu", "von", "mit", "für", "aus", "bei", "nach", "über", "unter"},
    "it": {"a", "in", "di", "da", "con", "per", "su", "tra", "fra"},
    "pt": {"em", "de", "com", "para", "por", "a", "sem", "sobre", "desde", "até", "entre"},
}
ARTICLES = {
    "en": {"a", "an", "the"}, "es": {"el", "la", "los", "las", "un", "una", "unos", "unas"},
    "ca": {"el", "la", "els", "les", "un", "una"}, "fr": {"le", "la", "les", "un", "une", "des"},
    "de": {"der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem"},
    "it": {"il", "lo", "la", "i", "gli", "le", "un", "una", "uno"}, "pt": {"o", "a", "os", "as", "um", "uma"},
}
MAX_RATIO = 2.0  # the longer part of a split or line break is at most twice the shorter one
# boundary classes, best first
_SENTENCE, _CLAUSE, _CONJ, _PREP, _WORD, _AFTER_ARTICLE = range(6)


@dataclass(frozen=True)
class CueViolation:
    """A limit a laid-out cue breaks: ``index`` into the cues, ``limit`` name, ``value`` found,
    ``allowed`` value."""

    index: int
    limit: str
    value: float
    allowed: float


def _tokens(text: str, style: SubtitleStyle) -> list[str]:
    text = re.sub(r"\s+", " ", text.strip())
    if style.word_separator:
        return text.split(" ")
    return list(text.replace(" ", "")) if text else []


def _join(tokens: list[str], style: SubtitleStyle) -> str:
    return style.word_separator.join(tokens)


def _boundary_class(left: str, right: str, lang: str) -> int:
    """Class of the boundary between token ``left`` and token ``right``."""
    if left and left[-1] in SENTENCE_END:
        return _SENTENCE
    if left and left[-1] in CLAUSE_PUNCT:
        return _CLAUSE
    lw = left.lower().strip("\"'«»“”¿¡")
    rw = right.lower().strip("\"'«»“”¿¡")
    if lw in ARTICLES.get(lang, set()):
        return _AFTER_ARTICLE
    if rw in CONJUNCTIONS.get(lang, set()):
        return _CONJ
    if rw in PREPOSITIONS.get(lang, set()):
        return _PREP
    return _WORD


def _best_cut(tokens: list[str], style: SubtitleStyle, fits=None, max_ratio: float | None = MAX_RATIO) -> int | None:
    """Index ``i`` (cut before ``tokens[i]``) of the best boundary: the best class with a boundary
    whose two sides are within ``max_ratio`` (None: any), the most balanced one in it; failing
    that the most balanced boundary. With ``fits`` only boundaries whose two sides both pass
    ``fits`` count, and None is returned when there is none (also for a single token)."""
    if len(tokens) < 2:
        return None
    total = style.width(_join(tokens, style))
    best: dict[int, tuple[float, int]] = {}
    fallback: tuple[float, int] | None = None
    for i in range(1, len(tokens)):
        a, b = _join(tokens[:i], style), _join(tokens[i:], style)
        if fits is not None and not (fits(a) and fits(b)):
            continue
        wa, wb = style.width(a), style.width(b)
        imbalance = abs(wa - wb) / max(total, 1.0)
        if fallback is None or imbalance < fallback[0]:
            fallback = (imbalance, i)
        if max_ratio is not None and max(wa, wb) > max_ratio * max(min(wa, wb), 1e-9):
            continue
        cls = _boundary_class(tokens[i - 1], tokens[i], style.language)
        if cls != _AFTER_ARTICLE and (cls not in best or imbalance < best[cls][0]):
            best[cls] = (imbalance, i)
    if best:
        return best[min(best)][1]
    return fallback[1] if fallback is not None else None


def _fits_line(text: str, style: SubtitleStyle) -> bool:
    return style.width(text) <= style.max_chars_per_line


def break_lines(text: str, style: SubtitleStyle) -> list[str] | None:
    """The lines ``text`` is shown on: one line when it fits, else up to ``max_lines`` lines
    broken at the best boundaries (two-line case: the best class within 2:1, most balanced).

    Returns:
        The lines, or None when ``text`` does not fit in ``max_lines`` lines (split it first).
    """
    tokens = _tokens(text, style)
    joined = _join(tokens, style)
    if _fits_line(joined, style):
        return [joined] if joined else []
    return _break(tokens, style, style.max_lines)


def _break(tokens: list[str], style: SubtitleStyle, lines: int) -> list[str] | None:
    joined = _join(tokens, style)
    if _fits_line(joined, style):
        return [joined]
    if lines <= 1 or len(tokens) < 2:
        return None
    if lines == 2:
        i = _best_cut(tokens, style, fits=lambda t: _fits_line(t, style))
        if i is None or not (_fits_line(_join(tokens[:i], style), style) and _fits_line(_join(tokens[i:], style), style)):
            return None
        return [_join(tokens[:i], style), _join(tokens[i:], style)]
    for i in range(len(tokens) - 1, 0, -1):  # >2 lines: longest fitting first line, rest recursively
        first = _join(tokens[:i], style)
        if _fits_line(first, style):
            rest = _break(tokens[i:], style, lines - 1)
            if rest is not None:
                return [first, *rest]
    return None


def split_text(text: str, duration_s: float, style: SubtitleStyle) -> list[str]:
    """Cut ``text`` into parts that each fit on screen (``break_lines`` succeeds) and, sharing
    ``duration_s`` in proportion to their characters, stay within ``max_duration_s``.

    A cut into two parts that both fit takes the best boundary class whose parts each keep at
    least ``min_duration_s`` (when the cue is long enough for two such parts), the most balanced in
    it; a text that needs three parts or more is first cut at the best boundary within 2:1."""
    tokens = _tokens(text, style)
    total = style.width(_join(tokens, style))
    if not tokens:
        return []

    def part_s(part: str) -> float:
        return duration_s * style.width(part) / max(total, 1e-9)

    def ok(part: str) -> bool:
        return break_lines(part, style) is not None and (part_s(part) <= style.max_duration_s or len(_tokens(part, style)) == 1)

    def cut(toks: list[str]) -> list[str]:
        joined = _join(toks, style)
        if ok(joined) or len(toks) < 2:
            return [joined]
        i = None
        if part_s(joined) >= 2 * style.min_duration_s:  # two parts that fit and can last the minimum
            i = _best_cut(toks, style, fits=lambda t: ok(t) and part_s(t) >= style.min_duration_s, max_ratio=None)
        if i is None:
            i = _best_cut(toks, style, fits=ok)  # two parts that fit
        if i is None:
            i = _best_cut(toks, style)  # the best phrase boundary within 2:1; the parts are cut again
        return cut(toks[:i]) + cut(toks[i:])

    return cut(tokens)


def layout_cues(cues: list[Cue], style: SubtitleStyle, fps: Fraction | float = Fraction(24)) -> list[Cue]:
    """Lay ``cues`` out in ``style`` (see the module docstring): split, line-broken (``"\\n"``
    between lines), gaps of ``min_gap_frames`` at ``fps``, durations and reading speed met where
    the silence after a cue allows.

    Returns:
        New cues sorted by start; empty texts dropped. Each has at most ``max_lines`` lines of at
        most ``max_chars_per_line`` (a single word wider than a line is left whole).
    """
    gap_s = style.min_gap_frames / float(fps)
    parts: list[Cue] = []
    for c in sorted((c for c in cues if c.text.strip()), key=lambda c: c.start_s):
        dur = max(c.end_s - c.start_s, 1e-3)
        pieces = split_text(c.text, dur, style)
        widths = [style.width(p) for p in pieces]
        t = c.start_s
        for p, w in zip(pieces, widths):
            end = t + dur * w / sum(widths)
            lines = break_lines(p, style) or [p]
            parts.append(Cue(t, end, "\n".join(lines)))
            t = end
    return _retime(parts, style, gap_s)


def _retime(parts: list[Cue], style: SubtitleStyle, gap_s: float) -> list[Cue]:
    out: list[Cue] = []
    for i, c in enumerate(parts):
        start = max(c.start_s, out[-1].end_s + gap_s) if out else c.start_s
        limit = parts[i + 1].start_s - gap_s if i + 1 < len(parts) else math.inf
        chars = style.width(c.text.replace("\n", ""))
        need = max(style.min_duration_s, chars / style.max_cps)
        end = max(c.end_s, start + 1e-3)
        if end - start < need:
            reach = max(start + style.min_duration_s, c.end_s + style.max_extension_s)  # min duration first, then cps
            end = max(end, min(start + need, reach, limit))
        end = min(end, max(limit, start + 1e-3))
        out.append(Cue(start, end, c.text))
    return out


def check_cues(cues: list[Cue], style: SubtitleStyle) -> list[CueViolation]:
    """Every limit of ``style`` each cue breaks: ``lines``, ``chars_per_line``, ``cps``,
    ``min_duration_s``, ``max_duration_s`` (lines are separated by ``"\\n"``)."""
    found = []
    for i, c in enumerate(cues):
        lines = c.text.split("\n")
        dur = c.end_s - c.start_s
        chars = style.width(c.text.replace("\n", ""))
        checks = [("lines", len(lines), style.max_lines), ("chars_per_line", max(style.width(x) for x in lines), style.max_chars_per_line),
                  ("cps", chars / max(dur, 1e-9), style.max_cps), ("max_duration_s", dur, style.max_duration_s)]
        found += [CueViolation(i, name, float(v), float(a)) for name, v, a in checks if v > a + 1e-9]
        if dur < style.min_duration_s - 1e-9:
            found.append(CueViolation(i, "min_duration_s", dur, style.min_duration_s))
    return found
