"""Language codes of the neural MT model families, and which family a CTranslate2 model is.

- NLLB-200 (Costa-jussà et al. 2022, "No Language Left Behind"): FLORES-200 codes, ISO 639-3 plus
  ISO 15924 script, ``spa_Latn``; the source text is prefixed with the source code and decoding
  starts from the target code (``target_prefix``). Macrolanguages are written as the individual
  language FLORES-200 uses (Arabic ``arb``, Persian ``pes``, Malay ``zsm``...: :data:`NLLB_INDIVIDUAL`).
- M2M-100 (Fan et al. 2021, "Beyond English-Centric Multilingual Machine Translation"):
  ``__es__``, ISO 639-1 where it exists (``__ast__``, ``__ceb__``... otherwise).
- OPUS-MT / Marian (Tiedemann & Thottingal 2020, "OPUS-MT"): one model per pair or per group,
  named ``opus-mt-<src>-<tgt>``; a model with several target languages needs a target token at
  the start of the source, ``>>spa<<`` (ISO 639-3, sometimes with a script, ``>>cmn_Hans<<``) or
  ``>>es<<`` in older models.

The family is read from the model's vocabulary: NLLB's and M2M-100's language tokens are in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ...errors import ConfigError
from ...languages import Language, parse_language

NLLB, M2M100, MARIAN, ARGOS = "nllb", "m2m100", "marian", "argos"

_NLLB_TOKEN_RE = re.compile(r"^([a-z]{3})_([A-Z][a-z]{3})$")
_M2M_TOKEN_RE = re.compile(r"^__([a-z]{2,3})__$")
_MARIAN_TOKEN_RE = re.compile(r"^>>([a-z]{2,3}(?:_[A-Z][a-z]{3})?)<<$")

#: ISO 639-3 macrolanguage -> the individual language FLORES-200 (NLLB) uses for it.
NLLB_INDIVIDUAL = {
    "ara": "arb", "aym": "ayr", "aze": "azj", "fas": "pes", "kau": "knc", "kur": "kmr", "lav": "lvs",
    "mlg": "plt", "mon": "khk", "msa": "zsm", "nep": "npi", "nor": "nob", "ori": "ory", "orm": "gaz",
    "pus": "pbt", "que": "quy", "sqi": "als", "swa": "swh", "uzb": "uzn", "yid": "ydd",
}
#: The script taken when FLORES-200 has a language in several (``zho_Hans`` / ``zho_Hant``).
DEFAULT_SCRIPT = {"zho": "Hans", "ace": "Latn", "bjn": "Latn", "kas": "Arab", "knc": "Latn", "taq": "Latn", "cmn": "Hans"}
#: M2M-100 codes that are not the ISO 639-1/639-3 code (Northern Sotho is ``ns``).
M2M_CODES = {"nso": "ns"}
#: Individual languages a Marian target token may use for a macrolanguage.
MARIAN_INDIVIDUAL = {"zho": ("cmn", "yue"), "ara": ("arb",), "fas": ("pes",), "msa": ("zsm", "ind"), "nor": ("nob", "nno")}


def iso639_3(lang: Language) -> str:
    """ISO 639-3 code of ``lang`` (``fra``, where :attr:`Language.alpha3` is 639-2/B ``fre``).

    Source: pycountry's ISO 639-3 table.
    """
    import pycountry

    entry = (pycountry.languages.get(alpha_2=lang.code) if len(lang.code) == 2 else None) \
        or pycountry.languages.get(alpha_3=lang.alpha3) or pycountry.languages.get(bibliographic=lang.alpha3)
    return entry.alpha_3 if entry is not None else lang.alpha3


def detect_family(vocabulary: Iterable[str]) -> str:
    """``"nllb"`` when the vocabulary holds FLORES-200 language tokens, ``"m2m100"`` for
    ``__xx__`` tokens, else ``"marian"`` (at least 10 such tokens are required, so that a stray
    piece never decides)."""
    nllb = m2m = 0
    for tok in vocabulary:
        if _NLLB_TOKEN_RE.match(tok):
            nllb += 1
        elif _M2M_TOKEN_RE.match(tok):
            m2m += 1
    if nllb >= 10 and nllb >= m2m:
        return NLLB
    if m2m >= 10:
        return M2M100
    return MARIAN


def language_tokens(family: str, vocabulary: Iterable[str]) -> list[str]:
    """The language tokens of the vocabulary for ``family`` (Marian: the ``>>xx<<`` target tokens)."""
    pattern = {NLLB: _NLLB_TOKEN_RE, M2M100: _M2M_TOKEN_RE, MARIAN: _MARIAN_TOKEN_RE}.get(family)
    return [t for t in vocabulary if pattern is not None and pattern.match(t)]


def _with_script(base: str, tokens: set[str], prefix: str = "", suffix: str = "") -> str | None:
    """The token ``<prefix><base>_<Script><suffix>`` among ``tokens``; the default script first."""
    choices = sorted(t for t in tokens if t.startswith(f"{prefix}{base}_") and t.endswith(suffix)
                     and len(t) == len(prefix) + len(base) + 5 + len(suffix))
    if not choices:
        return None
    preferred = f"{prefix}{base}_{DEFAULT_SCRIPT.get(base, '')}{suffix}"
    return preferred if preferred in choices else choices[0]


def same_language(a: Language, b: Language) -> bool:
    """True when ``a`` and ``b`` are one language, a macrolanguage counting as its individual
    language of :data:`NLLB_INDIVIDUAL` / :data:`MARIAN_INDIVIDUAL` (``zh`` and ``cmn``)."""
    x, y = iso639_3(a), iso639_3(b)
    if x == y:
        return True
    related = lambda m, i: i == NLLB_INDIVIDUAL.get(m) or i in MARIAN_INDIVIDUAL.get(m, ())  # noqa: E731
    return related(x, y) or related(y, x)


def nllb_code(lang: Language, tokens: Iterable[str]) -> str | None:
    """The FLORES-200 token for ``lang`` among ``tokens`` (``spa_Latn``), or None."""
    have = set(tokens)
    code3 = iso639_3(lang)
    for base in (code3, NLLB_INDIVIDUAL.get(code3)):
        if base:
            found = _with_script(base, have)
            if found:
                return found
    return None


def m2m_code(lang: Language, tokens: Iterable[str]) -> str | None:
    """The M2M-100 token for ``lang`` among ``tokens`` (``__es__``), or None."""
    have = set(tokens)
    code3 = iso639_3(lang)
    for code in (M2M_CODES.get(code3), lang.code, code3):
        if code and f"__{code}__" in have:
            return f"__{code}__"
    return None


def marian_target_token(lang: Language, tokens: Iterable[str]) -> str | None:
    """The target-language token of a multi-target Marian model for ``lang`` (``>>spa<<``), or None."""
    have = set(tokens)
    code3 = iso639_3(lang)
    for code in (code3, lang.code, lang.alpha3, *MARIAN_INDIVIDUAL.get(code3, ())):
        if f">>{code}<<" in have:
            return f">>{code}<<"
        found = _with_script(code, have, ">>", "<<")
        if found:
            return found
    return None


def language_of_token(family: str, token: str) -> Language | None:
    """The language a model's language token stands for (``spa_Latn`` -> Spanish), or None."""
    m = {NLLB: _NLLB_TOKEN_RE, M2M100: _M2M_TOKEN_RE, MARIAN: _MARIAN_TOKEN_RE}[family].match(token)
    if m is None:
        return None
    code = m.group(1).split("_")[0]
    code = {v: k for k, v in M2M_CODES.items()}.get(code, code) if family == M2M100 else code
    code = {v: k for k, v in NLLB_INDIVIDUAL.items()}.get(code, code)
    try:
        return parse_language(code)
    except ConfigError:
        return None
