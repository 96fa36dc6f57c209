"""Stage 6, translate: target text per segment, with a duration budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..languages import Language
from ..registry import Registry


@dataclass(frozen=True)
class TranslationRequest:
    """One line to translate. ``duration_budget_s``: the time the spoken translation should fit in.

    ``too_long``: a previous translation of this line that did not fit the budget (the isochrony
    loop, :mod:`lipdub.timing.isochrony`); a translator that can shorten (``shortens = True``) gives
    a shorter one, others ignore it and are never asked.
    """

    text: str
    duration_budget_s: float | None = None
    too_long: str | None = None


class Translator(Protocol):
    """A translation backend (adapters subclass :class:`TranslatorBackend` for the capability defaults).

    Capabilities (class attributes):
        shortens: given a request with ``too_long``, the backend returns a shorter translation (the
            isochrony loop asks it; others are never asked).
    """

    name: str
    shortens: bool

    def supports(self, source: Language, target: Language) -> bool:
        ...

    def translate(self, requests: list[TranslationRequest], source: Language, target: Language) -> list[str]:
        """One translated string per request, same order.

        Raises:
            ConfigError: the pair is not supported (message names the pair, hint what to install).
        """
        ...


class TranslatorBackend:
    """Defaults of the :class:`Translator` capabilities: cannot shorten."""

    name = ""
    shortens = False


TRANSLATORS: Registry[Translator] = Registry("translate")
TRANSLATORS.register("apertium", "lipdub.backends.translate.apertium:ApertiumTranslator", "apertium rule-based pairs from Debian (eng-spa, eng-cat, fr-es, ...)")
TRANSLATORS.register("llm", "lipdub.backends.translate.llm:LlmTranslator", "any OpenAI-compatible chat endpoint (LIPDUB_LLM_BASE_URL, LIPDUB_LLM_MODEL, LIPDUB_LLM_API_KEY)")
