"""Translation logic shared by every translator: glossary, names, sentences across lines, n-best.

The translate stage's entry point is :class:`LineTranslator` (or :func:`translate_lines` for one
call): give it the translator and every line of the script; it returns one
:class:`LineTranslation` record per line.
"""

from .glossary import Glossary, GlossaryEntry
from .lines import LineTranslation, LineTranslator, SourceLine, TermUse, fixed_terms, translate_lines
from .names import detect_names
from .nbest import choose_hypothesis
from .sentences import group_sentences, split_translation

__all__ = [
    "Glossary", "GlossaryEntry", "LineTranslation", "LineTranslator", "SourceLine", "TermUse",
    "choose_hypothesis", "detect_names", "fixed_terms", "group_sentences", "split_translation", "translate_lines",
]
