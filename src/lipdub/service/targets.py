"""Request-time check that the installed translators reach every language a job or campaign asks for.

The pipeline checks its language pairs too, but only when a job runs: a campaign into a language no
installed translator reaches would be accepted and then fail every job. The check runs on the API
server, against the translators installed there (workers are expected to have the same).
"""

from __future__ import annotations

from ..contracts.translate import TRANSLATORS
from ..errors import ConfigError, LipdubError
from ..languages import Language, parse_language


def _pair_languages(pair: str) -> tuple[Language, Language] | None:
    """``eng-spa`` -> (English, Spanish); None for names that are not ``src-tgt`` language codes."""
    parts = pair.split("-")
    try:
        return parse_language(parts[-2]), parse_language(parts[-1])
    except (LipdubError, IndexError):
        return None


def installed_pairs(translator) -> list[tuple[Language, Language]] | None:  # noqa: ANN001
    """The ``(source, target)`` pairs a translator with a fixed list (``pairs()``, apertium) has,
    or None for one that takes any pair (``llm``)."""
    pairs = getattr(translator, "pairs", None)
    if pairs is None:
        return None
    return [p for p in map(_pair_languages, pairs()) if p is not None]


def _describe(pairs: list[tuple[Language, Language]]) -> str:
    return ", ".join(sorted({f"{s.code}->{t.code}" for s, t in pairs})) or "none"


def check_targets(translator_name: str, source_code: str | None, target_codes: list[str]) -> list[str]:
    """Validate the target languages of a request; returns their ISO 639-1 codes, in order, once each.

    Args:
        translator_name: a registered translator (``apertium``, ``llm``).
        source_code: the source language when the client gave it (None: detected later, so each
            target must be reachable from some installed source).
        target_codes: the requested targets.

    Raises:
        ConfigError: an unknown code, a target equal to the source, a translator that cannot run on
            this server, or targets no installed pair reaches (the message names them and what is
            installed).
    """
    targets = list(dict.fromkeys(parse_language(c) for c in target_codes))
    source = parse_language(source_code) if source_code else None
    for t in targets:
        if source is not None and t.code == source.code:
            raise ConfigError(f"the source and target language are both {t.code}", "choose another target language")
    try:
        translator = TRANSLATORS.create(translator_name)
    except LipdubError as exc:
        raise ConfigError(f"the {translator_name} translator cannot run on this server ({exc.message}), so it reaches no language",
                          "choose another translator, or ask the administrator to install this one") from None
    pairs = installed_pairs(translator)
    if source is not None:
        missing = [t for t in targets if not translator.supports(source, t)]
    else:
        missing = [] if pairs is None else [t for t in targets if t.code not in {tgt.code for _, tgt in pairs}]
    if missing:
        names = ", ".join(f"{t.code} ({t.name})" for t in missing)
        frm = f"from {source.code}" if source is not None else "from any language"
        installed = f"installed {translator_name} pairs: {_describe(pairs)}" if pairs is not None else f"the {translator_name} translator"
        raise ConfigError(f"no installed translator reaches {names} {frm}",
                          f"{installed}; choose one of those languages, or options.translator 'llm'")
    return [t.code for t in targets]
