"""Translating the lines of a dub: glossary, names, sentences across lines, n-best, one record per line.

The translate stage calls :class:`LineTranslator` with every line of the script at once:

1. the names of the transcript (:func:`lipdub.translation.names.detect_names`) and the glossary's
   entries for the target language (:class:`lipdub.translation.glossary.Glossary`) become fixed
   terms; a glossary entry overrides a name written the same way;
2. lines that continue one sentence are joined (:func:`lipdub.translation.sentences.group_sentences`),
   their budgets added;
3. each group goes to the translator with its terms (translators with ``handles_terms``) or with
   the terms behind placeholders (:func:`lipdub.translation.terms.protect`, others), its budget, the
   speaker's rate and the neighbouring groups as context;
4. the translation of a group is cut back into its lines
   (:func:`lipdub.translation.sentences.split_translation`);
5. each line gets a :class:`LineTranslation` record: backend, hypotheses considered (text, score,
   estimated duration), the chosen one and why, estimated vs budget duration, and which fixed terms
   came through.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Sequence

from ..contracts.translate import Hypothesis, Term, TranslationRequest, TranslationResult, Translator
from ..errors import ConfigError
from ..languages import Language
from ..timing.isochrony import estimate_duration_s
from ..voice.params import count_syllables
from .glossary import Glossary
from .names import detect_names
from .sentences import LineSpan, group_sentences, split_translation
from .terms import contains, find_terms, protect, restore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceLine:
    """One line of the script to translate.

    Attributes:
        text: the source text.
        budget_s: seconds the spoken translation should fit in (slot plus the free time after it).
        speaker: speaker id (lines of different speakers are never joined).
        start_s / end_s: the line's times, seconds (lines further apart are never joined).
        syllables_per_s: the speaker's rate for the duration estimate (None: the default rate).
    """

    text: str
    budget_s: float | None = None
    speaker: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    syllables_per_s: float | None = None


@dataclass(frozen=True)
class TermUse:
    """A fixed term met in a line: ``kind`` is ``"glossary"``, ``"keep"`` or ``"name"``; ``kept``:
    its target form is in the translation."""

    source: str
    target: str
    kind: str
    kept: bool


@dataclass
class LineTranslation:
    """The record of one translated line (what the translate stage stores).

    Attributes:
        index: the line's index in the list given.
        text: its translation (the part of the group's translation that falls to it).
        backend: the translator's name.
        source_text: its source text.
        group: indices of the lines translated together with it (itself alone: ``[index]``).
        group_source: the text sent to the translator (terms not yet protected).
        group_text: the translation of the whole group, before the split.
        hypotheses: the candidates considered for the group.
        chosen: index of the one taken in ``hypotheses`` (None: none).
        choice: why it was taken.
        estimated_s: estimated spoken duration of ``text``, seconds.
        budget_s: the line's budget, seconds (None: none given).
        terms: fixed terms of this line and whether they came through.
    """

    index: int
    text: str
    backend: str
    source_text: str
    group: list[int]
    group_source: str = ""
    group_text: str = ""
    hypotheses: list[Hypothesis] = field(default_factory=list)
    chosen: int | None = None
    choice: str = ""
    estimated_s: float | None = None
    budget_s: float | None = None
    terms: list[TermUse] = field(default_factory=list)

    @property
    def glossary_hits(self) -> list[TermUse]:
        """Glossary entries (translations and ``keep``) of this line that came through."""
        return [t for t in self.terms if t.kind != "name" and t.kept]

    @property
    def names_kept(self) -> list[str]:
        """Names of this line that came through unchanged."""
        return [t.source for t in self.terms if t.kind == "name" and t.kept]

    def to_dict(self) -> dict:
        """JSON-ready form (durations rounded to milliseconds)."""
        d = asdict(self)
        d["hypotheses"] = [{"text": h.text, "score": None if h.score is None else round(h.score, 4),
                            "estimated_s": None if h.estimated_s is None else round(h.estimated_s, 3)} for h in self.hypotheses]
        for key in ("estimated_s", "budget_s"):
            d[key] = None if d[key] is None else round(d[key], 3)
        d["glossary_hits"] = [t.source for t in self.glossary_hits]
        d["names_kept"] = self.names_kept
        return d


def fixed_terms(target: Language, glossary: Glossary | None, names: Sequence[str]) -> dict[Term, str]:
    """The terms a translation into ``target`` renders fixed, each with its kind, in order: the
    glossary's entries for ``target`` (``"glossary"``: a fixed translation, ``"keep"``: kept as
    written), then the ``names`` (``"name"``, kept as written) that no glossary entry covers
    (compared case-folded: a glossary entry for the same words wins)."""
    kinds: dict[Term, str] = {}
    fixed: set[str] = set()
    for entry in (glossary.for_target(target) if glossary is not None else []):
        kinds[entry.term()] = "keep" if entry.keep else "glossary"
        fixed.add(" ".join(entry.source.split()).casefold())
    for name in names:
        if name.casefold() not in fixed:
            kinds.setdefault(Term(name, name), "name")
    return kinds


class LineTranslator:
    """Translate a script's lines with any :class:`~lipdub.contracts.translate.Translator`.

    Args:
        translator: the backend (``TRANSLATORS.create(name)``).
        source, target: the languages.
        glossary: fixed renderings (None: none).
        names: names to keep (usually ``detect_names(all source texts, source)``); a glossary entry
            for the same words wins.
        merge_sentences: join lines that continue one sentence (module doc, step 2).
        max_group_lines, max_gap_s: limits of that join
            (:func:`lipdub.translation.sentences.group_sentences`).
    """

    def __init__(self, translator: Translator, source: Language, target: Language, *, glossary: Glossary | None = None,
                 names: Sequence[str] = (), merge_sentences: bool = True, max_group_lines: int = 3, max_gap_s: float = 1.5) -> None:
        self.translator = translator
        self.source, self.target = source, target
        self.merge_sentences = merge_sentences
        self.max_group_lines, self.max_gap_s = max_group_lines, max_gap_s
        self.kinds = fixed_terms(target, glossary, names)

    @property
    def name(self) -> str:
        return getattr(self.translator, "name", type(self.translator).__name__)

    def terms_in(self, text: str) -> list[Term]:
        """The fixed terms occurring in ``text``, in order of first occurrence, each once."""
        out: list[Term] = []
        for span in find_terms(text, self.kinds):
            if span.term not in out:
                out.append(span.term)
        return out

    def groups(self, lines: Sequence[SourceLine]) -> list[list[int]]:
        """The groups of line indices translated together (each line alone without ``merge_sentences``)."""
        spans = [LineSpan(" ".join(l.text.split()), l.speaker, l.start_s, l.end_s) for l in lines]
        if not self.merge_sentences:
            return [[i] for i in range(len(lines))]
        return group_sentences(spans, max_lines=self.max_group_lines, max_gap_s=self.max_gap_s)

    def translate_lines(self, lines: Sequence[SourceLine], only: set[int] | None = None) -> list[LineTranslation | None]:
        """Translate every line (module doc); one record per line, same order.

        Args:
            lines: every line of the script (the groups and the context depend on all of them).
            only: translate just the groups holding one of these indices (lines whose source changed
                or that have no translation yet); the other entries of the result are None.

        Raises:
            Whatever the translator raises (ConfigError for an unsupported pair, StageFailed...).
        """
        groups = self.groups(lines)
        groups_text = [" ".join(" ".join(lines[i].text.split()) for i in g).strip() for g in groups]
        todo = [k for k, t in enumerate(groups_text) if t and (only is None or any(i in only for i in groups[k]))]
        requests = []
        for k in todo:
            g = groups[k]
            budgets = [lines[i].budget_s for i in g]
            requests.append(TranslationRequest(
                groups_text[k], None if any(b is None for b in budgets) else float(sum(budgets)),
                syllables_per_s=lines[g[0]].syllables_per_s,
                context_before=_neighbour(groups_text, k, -1), context_after=_neighbour(groups_text, k, +1)))
        results = self._run(requests)
        records: list[LineTranslation | None] = [
            LineTranslation(i, "", self.name, lines[i].text, [i], budget_s=lines[i].budget_s)
            if only is None or i in only else None for i in range(len(lines))]
        for k, req, res in zip(todo, requests, results):
            for rec in self._split(groups[k], req, res, lines):
                records[rec.index] = rec
        log.info("%s: translated %d lines in %d groups %s->%s", self.name, sum(len(groups[k]) for k in todo),
                 len(todo), self.source.code, self.target.code)
        return records

    def shorten(self, line: SourceLine, too_long: str, budget_s: float, *, index: int = 0,
                context_before: str | None = None, context_after: str | None = None) -> LineTranslation:
        """Ask a translator that can shorten (``shortens``) for a shorter translation of one line.

        Args:
            line: the source line.
            too_long: its translation that did not fit.
            budget_s: the seconds it must fit in.
            index: the line's index, for the record.
            context_before / context_after: the neighbouring source lines.

        Raises:
            ConfigError: the translator cannot shorten.
        """
        if not self.translator.shortens:
            raise ConfigError(f"the {self.name} translator cannot give shorter translations", "use --translator ctranslate2 or llm")
        text = " ".join(line.text.split())
        req = TranslationRequest(text, budget_s, too_long=too_long, syllables_per_s=line.syllables_per_s,
                                 context_before=context_before, context_after=context_after)
        res = self._run([req])[0]
        return self._split([index], req, res, {index: _replace(line, budget_s=budget_s)})[0]

    def _run(self, requests: list[TranslationRequest]) -> list[TranslationResult]:
        """Send the requests with their terms (or placeholders); restore; fill the estimates."""
        if not requests:
            return []
        handles = self.translator.handles_terms
        protected = []
        sent = []
        for req in requests:
            terms = tuple(self.terms_in(req.text))
            if handles:
                sent.append(_replace(req, terms=terms))
                protected.append(None)
            else:
                p = protect(req.text, terms)
                protected.append(p)
                sent.append(_replace(req, text=p.text))
        results = list(self.translator.translate_detailed(sent, self.source, self.target))
        out = []
        for req, p, res in zip(requests, protected, results):
            hyps = tuple(self._estimated(h if p is None else Hypothesis(restore(h.text, p)[0], h.score, None), req)
                         for h in res.hypotheses)
            text = res.text if p is None else restore(res.text, p)[0]
            out.append(TranslationResult(" ".join(text.split()), hyps, res.chosen, res.choice))
        return out

    def _estimated(self, h: Hypothesis, req: TranslationRequest) -> Hypothesis:
        if h.estimated_s is not None:
            return h
        return Hypothesis(h.text, h.score, estimate_duration_s(h.text, req.syllables_per_s, self.target.code))

    def _split(self, group: list[int], req: TranslationRequest, res: TranslationResult, lines) -> list[LineTranslation]:
        terms = self.terms_in(req.text)
        if len(group) == 1:
            parts = [res.text]
        else:
            weights = [max(1, count_syllables(lines[i].text, self.source.code)) for i in group]
            parts = split_translation(res.text, weights, self.target.code, atomic=[t.target for t in terms])
        owner: dict[Term, int] = {}
        for term in terms:
            hit = next((j for j, part in enumerate(parts) if contains(part, term.target, any_case=True)), None)
            if hit is None:
                hit = next((j for j, i in enumerate(group) if contains(lines[i].text, term.source)), 0)
            owner[term] = hit
        out = []
        for j, i in enumerate(group):
            line = lines[i]
            out.append(LineTranslation(
                index=i, text=parts[j], backend=self.name, source_text=line.text, group=list(group),
                group_source=req.text, group_text=res.text, hypotheses=list(res.hypotheses), chosen=res.chosen,
                choice=res.choice, estimated_s=estimate_duration_s(parts[j], line.syllables_per_s, self.target.code),
                budget_s=line.budget_s,
                terms=[TermUse(t.source, t.target, self.kinds.get(t, "name"), contains(res.text, t.target, any_case=True))
                       for t in terms if owner[t] == j]))
        return out


def _neighbour(texts: list[str], k: int, step: int) -> str | None:
    j = k + step
    while 0 <= j < len(texts):
        if texts[j]:
            return texts[j]
        j += step
    return None


def _replace(obj, **changes):
    from dataclasses import replace

    return replace(obj, **changes)


def translate_lines(translator: Translator, lines: Sequence[SourceLine], source: Language, target: Language, *,
                    glossary: Glossary | None = None, keep_names: bool = True, merge_sentences: bool = True) -> list[LineTranslation]:
    """One call for the whole script: names detected in ``lines`` (when ``keep_names``), then
    :meth:`LineTranslator.translate_lines`. Returns one record per line, same order."""
    names = detect_names([l.text for l in lines], source) if keep_names else []
    return LineTranslator(translator, source, target, glossary=glossary, names=names,
                          merge_sentences=merge_sentences).translate_lines(lines)
