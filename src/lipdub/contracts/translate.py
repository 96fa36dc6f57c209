"""Stage 6, translate: target text per segment, with a duration budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..languages import Language
from ..registry import Registry


@dataclass(frozen=True)
class Term:
    """A span of a source line that must come out as ``target`` in the translation.

    A glossary entry (``source`` -> ``target``), or a name or ``keep`` term (``target == source``).
    Made by :mod:`lipdub.translation` from the glossary file and the names found in the transcript.
    """

    source: str
    target: str


@dataclass(frozen=True)
class TranslationRequest:
    """One line to translate. ``duration_budget_s``: the time the spoken translation should fit in.

    ``too_long``: a previous translation of this line that did not fit the budget (the isochrony
    loop, :mod:`lipdub.timing.isochrony`); a translator that can shorten (``shortens = True``) gives
    a shorter one, others ignore it and are never asked.

    ``terms``: spans of ``text`` with a fixed rendering (glossary entries, names to keep); sent only
    to translators with ``handles_terms = True`` (others get placeholders from
    :mod:`lipdub.translation`). ``syllables_per_s``: the speaker's rate, for translators that
    estimate spoken durations (None: :data:`lipdub.timing.isochrony.DEFAULT_SYLLABLES_PER_S`).
    ``context_before`` / ``context_after``: the neighbouring source lines, for translators that can
    use context (never translated themselves).
    """

    text: str
    duration_budget_s: float | None = None
    too_long: str | None = None
    terms: tuple[Term, ...] = ()
    syllables_per_s: float | None = None
    context_before: str | None = None
    context_after: str | None = None


@dataclass(frozen=True)
class Hypothesis:
    """One candidate translation a translator considered.

    Attributes:
        text: the candidate.
        score: the translator's own score, higher is better (ctranslate2: mean log-probability per
            generated token, natural log); None when the translator gives none.
        estimated_s: estimated spoken duration, seconds
            (:func:`lipdub.timing.isochrony.estimate_duration_s`); None when not estimated.
    """

    text: str
    score: float | None = None
    estimated_s: float | None = None


@dataclass(frozen=True)
class TranslationResult:
    """A translation with the candidates it was chosen from.

    Attributes:
        text: the chosen translation.
        hypotheses: every candidate considered (may be empty: the translator gives one answer).
        chosen: index of ``text`` in ``hypotheses``, or None.
        choice: why that candidate (``"best score that fits"``, ``"shortest: none fits"``...).
    """

    text: str
    hypotheses: tuple[Hypothesis, ...] = ()
    chosen: int | None = None
    choice: str = ""


class Translator(Protocol):
    """A translation backend (adapters subclass :class:`TranslatorBackend` for the capability defaults).

    Capabilities (class attributes):
        shortens: given a request with ``too_long``, the backend returns a shorter translation (the
            isochrony loop asks it; others are never asked).
        handles_terms: the backend honours ``TranslationRequest.terms`` itself (others get them
            protected by placeholders, :mod:`lipdub.translation.terms`).

    :meth:`translate_detailed` is :meth:`translate` with the candidates considered (the base gives
    each answer as its only candidate).
    """

    name: str
    shortens: bool
    handles_terms: bool

    def supports(self, source: Language, target: Language) -> bool:
        ...

    def translate(self, requests: list[TranslationRequest], source: Language, target: Language) -> list[str]:
        """One translated string per request, same order.

        Raises:
            ConfigError: the pair is not supported (message names the pair, hint what to install).
        """
        ...

    def translate_detailed(self, requests: list[TranslationRequest], source: Language, target: Language) -> list[TranslationResult]:
        """:meth:`translate` with the candidates considered per request."""
        ...


class TranslatorBackend:
    """Defaults of the :class:`Translator` capabilities: cannot shorten, does not handle terms, one
    candidate per line."""

    name = ""
    shortens = False
    handles_terms = False

    @classmethod
    def auto_supports(cls, source: Language, target: Language, **options) -> bool:
        """Whether ``--translator auto`` may choose this backend for ``source`` -> ``target``."""
        return False

    def translate_detailed(self, requests: list[TranslationRequest], source: Language, target: Language) -> list[TranslationResult]:
        """:meth:`Translator.translate` with each answer as the only candidate considered."""
        return [TranslationResult(t, (Hypothesis(t),), 0, "only answer") for t in self.translate(requests, source, target)]


TRANSLATORS: Registry[Translator] = Registry("translate")
#: ``--translator auto`` (the default) asks ctranslate2 first (a neural model the user installed covers the
#: pair), then apertium: :meth:`lipdub.registry.Registry.auto_choice`. llm needs a server: never automatic.
TRANSLATORS.register("apertium", "lipdub.backends.translate.apertium:ApertiumTranslator", "apertium rule-based pairs from Debian (eng-spa, eng-cat, fr-es, ...)", auto_rank=1)
TRANSLATORS.register("llm", "lipdub.backends.translate.llm:LlmTranslator", "any OpenAI-compatible chat endpoint (LIPDUB_LLM_BASE_URL, LIPDUB_LLM_MODEL, LIPDUB_LLM_API_KEY)")
TRANSLATORS.register("ctranslate2", "lipdub.backends.translate.ctranslate2:Ctranslate2Translator", "neural MT with CTranslate2: NLLB-200, M2M-100, OPUS-MT (Marian) or Argos Translate models in $LIPDUB_MODEL_DIR or --mt-model", auto_rank=0)
