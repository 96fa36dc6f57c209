"""Translate backend ``apertium``: rule-based machine translation with the Debian apertium pairs.

Apertium (Forcada et al. 2011, "Apertium: a free/open-source platform for rule-based machine
translation", Machine Translation 25(2)) runs as the ``apertium`` command line program, one
installed *mode* per direction (``/usr/share/apertium/modes/eng-spa.mode``...). Modes are named
with ISO 639-3 codes (``eng-spa``) or, in older pairs, ISO 639-1 codes (``fr-es``).

Apertium ignores duration budgets (it is rule-based); use the ``llm`` translator to fit budgets.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from ...contracts.translate import TranslationRequest, TranslatorBackend
from ...errors import BackendUnavailable, ConfigError, StageFailed
from ...languages import Language

logger = logging.getLogger(__name__)

#: Default data directory of the Debian packages (the ``apertium`` script's APERTIUM_DATADIR).
DEFAULT_DATA_DIR = "/usr/share/apertium"

# Blank lines separate the lines of one batch: apertium's txt format passes them through unchanged.
_SEPARATOR = "\n\n"
_SPLIT_RE = re.compile(r"\n[ \t]*\n")
_SPACE_RE = re.compile(r"\s+")
# Apertium marks: '#' before a word the generator could not inflect, '@' before a word missing from
# the bilingual dictionary ('*' for unknown words is suppressed by -u).
_MARK_RE = {mark: re.compile(re.escape(mark) + r"(?=\w)") for mark in "#@"}


def _data_dir(data_dir: str | os.PathLike | None) -> Path:
    return Path(data_dir or os.environ.get("APERTIUM_DATADIR") or DEFAULT_DATA_DIR)


def installed_modes(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the installed apertium modes (``["eng-cat", "eng-spa", "fr-es", ...]``), sorted.

    Args:
        data_dir: apertium data directory (default ``$APERTIUM_DATADIR`` or /usr/share/apertium).
    """
    modes = _data_dir(data_dir) / "modes"
    if not modes.is_dir():
        return []
    return sorted(p.stem for p in modes.glob("*.mode"))


def language_codes(lang: Language) -> list[str]:
    """The codes apertium may use for ``lang``: ISO 639-3 (terminology), 639-2/B and 639-1.

    Source: ISO 639 tables from ``pycountry`` (``fra`` for French, whose 639-2/B code is ``fre``).
    """
    codes: list[str] = []
    try:
        import pycountry

        entry = pycountry.languages.get(alpha_3=lang.alpha3) or pycountry.languages.get(bibliographic=lang.alpha3)
        if entry is not None:
            codes.append(entry.alpha_3)
    except ImportError:  # pragma: no cover - pycountry is a core dependency
        pass
    for code in (lang.alpha3, lang.code):
        if code not in codes:
            codes.append(code)
    return codes


def _pair_package_hint(source: Language, target: Language) -> str:
    s, t = language_codes(source)[0], language_codes(target)[0]
    return f"apt-get install apertium-{s}-{t} (or apertium-{t}-{s}) if Debian has that pair (apt-cache search apertium-{s})"


class ApertiumTranslator(TranslatorBackend):
    """Translate lines with the ``apertium`` program and an installed language pair.

    Keyword-only options:
        mode: an installed mode to use instead of the default one for the pair, e.g.
            ``"eng-cat_valencia"`` or ``"spa-eng_US"``; it must start with the pair's mode name.
        data_dir: apertium data directory (default ``$APERTIUM_DATADIR`` or /usr/share/apertium).
        timeout_s: time limit of one apertium run, in seconds.

    Raises:
        BackendUnavailable: the ``apertium`` program is not installed.
        ConfigError: ``mode`` is not installed, or ``timeout_s`` is not positive.
    """

    name = "apertium"

    def __init__(self, *, mode: str | None = None, data_dir: str | os.PathLike | None = None, timeout_s: float = 120.0) -> None:
        self.program = self._program()
        self.data_dir = _data_dir(data_dir)
        if timeout_s <= 0:
            raise ConfigError(f"timeout_s must be positive, got {timeout_s}", "use e.g. 120")
        self.timeout_s = float(timeout_s)
        self.modes = installed_modes(self.data_dir)
        if mode is not None and mode not in self.modes:
            raise ConfigError(
                f"apertium mode {mode!r} is not installed in {self.data_dir}",
                f"installed modes: {', '.join(self.modes) or 'none'}",
            )
        self.mode = mode

    @staticmethod
    def _program() -> str:
        program = shutil.which("apertium")
        if program is None:
            raise BackendUnavailable("the apertium program is not installed", "apt-get install apertium apertium-eng-spa (and the pairs you need)")
        return program

    @classmethod
    def check(cls) -> str:
        """List the installed pairs.

        Raises:
            BackendUnavailable: apertium or every language pair is missing.
        """
        cls._program()
        modes = installed_modes()
        if not modes:
            raise BackendUnavailable(
                f"apertium is installed but no language pair is (no modes in {_data_dir(None) / 'modes'})",
                "apt-get install apertium-eng-spa (or another pair: apt-cache search apertium-)",
            )
        return f"apertium pairs: {', '.join(modes)}"

    def mode_for(self, source: Language, target: Language) -> str | None:
        """The installed mode translating ``source`` to ``target``, or None.

        Tries every combination of :func:`language_codes` (``eng-spa``, ``en-es``...), ISO 639-3
        first. With the ``mode`` option, returns it when it belongs to this pair.
        """
        candidates = [f"{s}-{t}" for s in language_codes(source) for t in language_codes(target)]
        if self.mode is not None:
            base = self.mode.split("_")[0]
            return self.mode if base in candidates else None
        return next((c for c in candidates if c in self.modes), None)

    def pairs(self) -> list[str]:
        """Installed modes without variant suffixes (``eng-spa`` but not ``spa-eng_US``)."""
        return [m for m in self.modes if "_" not in m]

    def supports(self, source: Language, target: Language) -> bool:
        """True when a mode for ``source`` -> ``target`` is installed."""
        return self.mode_for(source, target) is not None

    def _run(self, mode: str, text: str) -> str:
        cmd = [self.program, "-d", str(self.data_dir), "-u", mode]
        try:
            proc = subprocess.run(cmd, input=text, capture_output=True, text=True, encoding="utf-8", timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise StageFailed(f"translate: apertium {mode} took more than {self.timeout_s:.0f} s", "raise timeout_s or translate fewer lines") from exc
        if proc.returncode != 0:
            raise StageFailed(f"translate: apertium {mode} failed ({proc.stderr.strip()[:300]})", "check the pair's installation: apertium -l")
        return proc.stdout

    @staticmethod
    def _clean(translated: str, source_text: str) -> str:
        out = translated.strip()
        for mark, pattern in _MARK_RE.items():
            if mark not in source_text:  # the mark was added by apertium, not written by the user
                out = pattern.sub("", out)
        return _SPACE_RE.sub(" ", out)

    def translate(self, requests: list[TranslationRequest], source: Language, target: Language) -> list[str]:
        """Translate every line in one apertium run.

        Lines are joined with blank lines (which apertium passes through) and split again; if the
        count of lines coming back differs, each line is translated by its own apertium run.
        Empty or whitespace-only lines give ``""`` without being sent; newlines inside a line are
        turned into spaces. ``duration_budget_s`` is not used (rule-based translation).

        Returns:
            One string per request, same order.

        Raises:
            ConfigError: no installed mode for the pair (the hint names the Debian package).
            StageFailed: apertium failed or timed out.
        """
        mode = self.mode_for(source, target)
        if mode is None:
            raise ConfigError(
                f"apertium has no {source.code}->{target.code} pair installed ({source.name} to {target.name})",
                f"{_pair_package_hint(source, target)}, or use --translator llm; installed pairs: {', '.join(self.pairs()) or 'none'}",
            )
        texts = [_SPACE_RE.sub(" ", r.text).strip() for r in requests]
        todo = [i for i, t in enumerate(texts) if t]
        out = [""] * len(texts)
        if not todo:
            return out
        joined = _SEPARATOR.join(texts[i] for i in todo) + "\n"
        pieces = _SPLIT_RE.split(self._run(mode, joined).strip("\n"))
        if len(pieces) != len(todo):
            logger.warning("apertium %s returned %d lines for %d; translating line by line", mode, len(pieces), len(todo))
            pieces = [self._run(mode, texts[i] + "\n") for i in todo]
        for i, piece in zip(todo, pieces):
            out[i] = self._clean(piece, texts[i])
        logger.info("apertium %s translated %d lines", mode, len(todo))
        return out

