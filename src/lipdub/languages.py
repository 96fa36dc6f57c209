"""Language codes: ISO 639-1 (two letters, what the CLI takes) <-> ISO 639-2/3 (container tags).

Source: ISO 639 tables through the ``pycountry`` package.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class Language:
    """A language known to ISO 639.

    Attributes:
        code: ISO 639-1 two-letter code (``"es"``), or the 639-3 code when it has no 639-1 code.
        alpha3: ISO 639-2/B-compatible three-letter code used in MP4/MKV language tags (``"spa"``).
        name: English name (``"Spanish"``).
    """

    code: str
    alpha3: str
    name: str


def parse_language(code: str) -> Language:
    """Resolve a user-given language code (``es``, ``spa``, ``ES``) to a :class:`Language`.

    Raises:
        ConfigError: the code is not an ISO 639 language code.
    """
    import pycountry

    raw = code.strip().lower().replace("_", "-").split("-")[0]
    lang = None
    if len(raw) == 2:
        lang = pycountry.languages.get(alpha_2=raw)
    elif len(raw) == 3:
        lang = pycountry.languages.get(alpha_3=raw) or pycountry.languages.get(bibliographic=raw)
    if lang is None:
        raise ConfigError(
            f"unknown language code {code!r}",
            "use an ISO 639-1 code such as es, fr, de, ca, ja",
        )
    alpha2 = getattr(lang, "alpha_2", None)
    alpha3 = getattr(lang, "bibliographic", None) or lang.alpha_3
    return Language(code=alpha2 or lang.alpha_3, alpha3=alpha3, name=lang.name)


def parse_language_list(codes: str) -> list[Language]:
    """Parse ``"es,fr"`` into languages, keeping order and dropping duplicates."""
    out: list[Language] = []
    for part in codes.split(","):
        if part.strip():
            lang = parse_language(part)
            if lang not in out:
                out.append(lang)
    if not out:
        raise ConfigError("no target language given", "pass --to es (or several: --to es,fr)")
    return out
