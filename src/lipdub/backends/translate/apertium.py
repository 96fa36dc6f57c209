"""Translate backend ``apertium``: rule-based machine translation with the Debian apertium pairs.

Apertium (Forcada et al. 2011, "Apertium: a free/open-source platform for rule-based machine
translation", Machine Translation 25(2)) runs as the ``apertium`` command line program, one
installed *mode* per direction (``/usr/share/apertium/modes/eng-spa.mode``...). Modes are named
with ISO 639-3 codes (``eng-spa``) or, in older pairs, ISO 639-1 codes (``fr-es``).

Apertium ignores duration budgets (it is rule-based); use the ``llm`` or ``ctranslate2``
translator to fit budgets.

Fixed terms (``TranslationRequest.terms``: glossary entries, names): a term whose words apertium's
morphological analyser (the mode's first ``lt-proc`` step) reads only as proper nouns (``<np>``) or
does not know at all is passed through by apertium as written, so it is sent as is and keeps its
grammar ("el perro de Tony"); any other term (``Bill``, also a noun and a verb, would come out
"Factura") goes behind a placeholder word apertium does not know (:mod:`lipdub.translation.terms`)
and its target is put back afterwards. Apertium's marks (``*`` unknown word, ``#`` word the
generator could not inflect, ``@`` word missing from the bilingual dictionary) are removed from
the output unless the source had that mark on that word.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from ...contracts.translate import Term, TranslationRequest, TranslatorBackend
from ...errors import BackendUnavailable, ConfigError, StageFailed
from ...languages import Language
from ...tools import run_child
from ...translation.terms import Protected, protect, restore

logger = logging.getLogger(__name__)

#: Default data directory of the Debian packages (the ``apertium`` script's APERTIUM_DATADIR).
DEFAULT_DATA_DIR = "/usr/share/apertium"

# Blank lines separate the lines of one batch: apertium's txt format passes them through unchanged.
_SEPARATOR = "\n\n"
_SPLIT_RE = re.compile(r"\n[ \t]*\n")
_SPACE_RE = re.compile(r"\s+")
# Apertium marks: '*' before an unknown word (also suppressed by -u), '#' before a word the
# generator could not inflect, '@' before a word missing from the bilingual dictionary.
_MARK_RE = re.compile(r"[*#@]+(?=\w)")
_MARKED_WORD_RE = re.compile(r"[*#@]+\w[\w'’-]*")
# One lexical unit of lt-proc's output: ^surface/reading1/reading2$
_UNIT_RE = re.compile(r"\^((?:\\.|[^/$\\])*)/((?:\\.|[^$\\])*)\$")
_AUTOMORF_RE = re.compile(r"^\s*lt-proc\s+(?:-\S+\s+)*'?([^'\s|]+automorf\.bin)'?")


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
    #: Honours ``TranslationRequest.terms`` (see the module doc).
    handles_terms = True

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
        self._passes: dict[tuple[str, str], bool] = {}

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

    @classmethod
    def auto_supports(cls, source: Language, target: Language, **_: object) -> bool:
        """``--translator auto`` takes apertium where Debian's pair for ``source`` -> ``target`` is installed."""
        try:
            return cls().supports(source, target)
        except BackendUnavailable:
            return False

    def supports(self, source: Language, target: Language) -> bool:
        """True when a mode for ``source`` -> ``target`` is installed."""
        return self.mode_for(source, target) is not None

    def _run(self, mode: str, text: str) -> str:
        cmd = [self.program, "-d", str(self.data_dir), "-u", mode]
        try:
            proc = run_child(cmd, input=text, capture_output=True, text=True, encoding="utf-8", timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise StageFailed(f"translate: apertium {mode} took more than {self.timeout_s:.0f} s", "raise timeout_s or translate fewer lines") from exc
        if proc.returncode != 0:
            raise StageFailed(f"translate: apertium {mode} failed ({proc.stderr.strip()[:300]})", "check the pair's installation: apertium -l")
        return proc.stdout

    @staticmethod
    def _clean(translated: str, source_text: str) -> str:
        """Strip apertium's marks (module doc) and collapse whitespace."""
        written = {m.group(0) for m in _MARKED_WORD_RE.finditer(source_text)}
        out = _MARKED_WORD_RE.sub(lambda m: m.group(0) if m.group(0) in written else _MARK_RE.sub("", m.group(0)), translated.strip())
        return _SPACE_RE.sub(" ", out).strip()

    def _analyser(self, mode: str) -> Path | None:
        """The morphological analyser (``*.automorf.bin``) of ``mode``: the first step of its pipeline."""
        try:
            first = (self.data_dir / "modes" / f"{mode}.mode").read_text(encoding="utf-8")
        except OSError:
            return None
        m = _AUTOMORF_RE.match(first)
        return Path(m.group(1)) if m and Path(m.group(1)).is_file() else None

    def passes_through(self, mode: str, texts: list[str]) -> dict[str, bool]:
        """For each text, whether apertium ``mode`` copies it as written: every word a proper noun
        (only ``<np>`` readings) or unknown to the analyser. Without an analyser, False for all."""
        todo = sorted({t for t in texts if (mode, t) not in self._passes})
        analyser = self._analyser(mode) if todo else None
        lt_proc = shutil.which("lt-proc")
        if todo and analyser is not None and lt_proc is not None:
            try:
                proc = run_child([lt_proc, str(analyser)], input="\n\n".join(todo) + "\n", capture_output=True,
                                      text=True, encoding="utf-8", timeout=self.timeout_s, check=False)
                blocks = proc.stdout.split("\n\n") if proc.returncode == 0 else []
            except subprocess.TimeoutExpired:
                blocks = []
            if len(blocks) >= len(todo):
                for text, block in zip(todo, blocks):
                    units = [u.group(2).split("/") for u in _UNIT_RE.finditer(block)]
                    self._passes[(mode, text)] = bool(units) and all(
                        all(r.startswith("*") or "<np>" in r for r in readings) for readings in units)
        for t in todo:
            self._passes.setdefault((mode, t), False)
        return {t: self._passes[(mode, t)] for t in texts}

    def _protect(self, mode: str, text: str, terms: tuple[Term, ...]) -> Protected:
        """Placeholders for the terms apertium would not copy as their target (module doc)."""
        same = [t.source for t in terms if t.source == t.target]
        passing = self.passes_through(mode, same) if same else {}
        return protect(text, [t for t in terms if not (t.source == t.target and passing.get(t.source))])

    def translate(self, requests: list[TranslationRequest], source: Language, target: Language) -> list[str]:
        """Translate every line in one apertium run.

        Lines are joined with blank lines (which apertium passes through) and split again; if the
        count of lines coming back differs, each line is translated by its own apertium run.
        Empty or whitespace-only lines give ``""`` without being sent; newlines inside a line are
        turned into spaces. ``terms`` are protected (module doc). ``duration_budget_s``,
        ``syllables_per_s`` and the context are not used (rule-based translation, line by line).

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
        originals = [_SPACE_RE.sub(" ", r.text).strip() for r in requests]
        protected = [self._protect(mode, t, r.terms) if t and r.terms else Protected(t, ()) for t, r in zip(originals, requests)]
        texts = [p.text for p in protected]
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
            out[i] = restore(self._clean(piece, originals[i]), protected[i])[0]
        logger.info("apertium %s translated %d lines", mode, len(todo))
        return out

