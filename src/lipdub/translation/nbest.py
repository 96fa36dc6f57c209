"""Choosing among a translator's n-best hypotheses by the time the line has to be spoken in.

Dubbing adapts the text to the slot before touching the audio (Chaume 2012, "Audiovisual
Translation: Dubbing", isochrony): among the candidates a neural translator finds, the best-scoring
one whose estimated spoken duration (:func:`lipdub.timing.isochrony.estimate_duration_s`) fits the
budget is taken; when none fits, the shortest. Candidates that keep every fixed term (glossary
targets, names) are preferred over any that lose one.
"""

from __future__ import annotations

from typing import Sequence

from ..contracts.translate import Hypothesis
from .terms import contains


def _score(h: Hypothesis) -> float:
    return h.score if h.score is not None else float("-inf")


def choose_hypothesis(hypotheses: Sequence[Hypothesis], budget_s: float | None, *, fit_ratio: float = 1.0,
                      required: Sequence[str] = (), shorter_than_s: float | None = None) -> tuple[int, str]:
    """Index of the hypothesis to use, and why.

    Args:
        hypotheses: candidates with ``score`` (higher is better) and ``estimated_s`` (seconds).
        budget_s: the line's duration budget, seconds (None: no budget, best score wins).
        fit_ratio: a candidate fits when ``estimated_s <= fit_ratio * budget_s``.
        required: target-language terms the translation must contain; candidates holding all of
            them are preferred (when any does).
        shorter_than_s: a re-translation request: only candidates estimated shorter than this many
            seconds are considered (when any is).

    Returns:
        ``(index, reason)``.

    Raises:
        ValueError: ``hypotheses`` holds no candidate with text.
    """
    pool = [i for i, h in enumerate(hypotheses) if h.text.strip()]
    if not pool:
        raise ValueError("no hypothesis with text")
    notes = []
    if required:
        keeping = [i for i in pool if all(contains(hypotheses[i].text, t, any_case=True) for t in required)]
        if keeping:
            pool = keeping
        else:
            notes.append("no candidate keeps every term")
    if shorter_than_s is not None:
        shorter = [i for i in pool if (hypotheses[i].estimated_s or 0.0) < shorter_than_s]
        if shorter:
            pool = shorter
        else:
            notes.append("no shorter candidate")
    suffix = f" ({'; '.join(notes)})" if notes else ""
    if budget_s is None or any(hypotheses[i].estimated_s is None for i in pool):
        return max(pool, key=lambda i: (_score(hypotheses[i]), -i)), "best score" + suffix
    fitting = [i for i in pool if hypotheses[i].estimated_s <= fit_ratio * budget_s + 1e-9]
    if fitting:
        best = max(fitting, key=lambda i: (_score(hypotheses[i]), -i))
        top = max(pool, key=lambda i: (_score(hypotheses[i]), -i))
        reason = "best score, fits" if best == top else "best score that fits"
        return best, reason + suffix
    return min(pool, key=lambda i: (hypotheses[i].estimated_s, -_score(hypotheses[i]), i)), "shortest: none fits" + suffix
