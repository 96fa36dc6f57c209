"""Where neural MT models come from: CTranslate2 model directories and Argos Translate packages.

Resolution order (the Whisper models' order, :mod:`lipdub.models`; nothing is downloaded):

1. an explicit path (``--mt-model``): a CTranslate2 model directory, an Argos package directory,
   or an ``.argosmodel`` file (installed once into ``$LIPDUB_MODEL_DIR/argos/``);
2. the user's model directory ``$LIPDUB_MODEL_DIR`` (default ``~/.cache/lipdub/models``): every
   sub-directory that is a CTranslate2 translation model or an Argos package, and the packages in
   its ``argos/`` folder;
3. the Hugging Face hub cache: snapshots that are CTranslate2 translation models;
4. Argos Translate's own package folder (``$ARGOS_PACKAGES_DIR``, else
   ``$XDG_DATA_HOME/argos-translate/packages``, else ``~/.local/share/argos-translate/packages``).

A CTranslate2 translation model is a directory with ``model.bin`` and ``shared_vocabulary.json``
(or ``.txt``, or ``source_``/``target_vocabulary``), as ``ct2-transformers-converter`` and
``ct2-opus-mt-converter`` write, plus its SentencePiece model: ``source.spm`` and ``target.spm``
(Marian / OPUS-MT), ``sentencepiece.bpe.model`` (NLLB, M2M-100 from Hugging Face),
``spm.128k.model`` (M2M-100 from fairseq) or ``sentencepiece.model``. An Argos package
(https://github.com/argosopentech/argos-translate, ``package.py``) is a zip of a folder holding
``metadata.json`` (``from_code``, ``to_code``, optional ``target_prefix``), ``model/`` (the
CTranslate2 model) and ``sentencepiece.model``.

The languages a model covers: NLLB and M2M-100 from the language tokens in the vocabulary; Argos
from ``metadata.json``; Marian from ``lipdub-mt.json`` beside the model
(``{"source": ["en"], "target": ["es"]}``), else ``source_lang`` / ``target_lang`` of a copied
``tokenizer_config.json``, else the OPUS-MT name of the directory (``opus-mt-en-es``,
``opus-mt-tc-big-en-es``, ``opus-mt-mul-en``: ``mul`` is any source), with the ``>>spa<<`` tokens
of a multi-target model as its targets.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError, InputError, MissingWeights
from ...languages import Language, parse_language
from ...models import hf_hub_cache, model_dir
from . import ct2_codes as codes

logger = logging.getLogger(__name__)

SIDECAR = "lipdub-mt.json"
_VOCAB_NAMES = ("shared_vocabulary.json", "shared_vocabulary.txt", "target_vocabulary.json", "target_vocabulary.txt")
_SPM_NAMES = ("sentencepiece.bpe.model", "spm.128k.model", "sentencepiece.model")
_OPUS_RE = re.compile(r"opus-mt-(?:tc-(?:big|base)-)?([A-Za-z_]+)-([A-Za-z_]+?)(?:[-_.](?:ct2|ctranslate2|int8|float16|float32|converted)\b.*)?$")


@dataclass(frozen=True)
class MtModel:
    """A translation model found here.

    Attributes:
        name: directory (or package) name.
        path: the CTranslate2 model directory.
        family: ``"nllb"``, ``"m2m100"``, ``"marian"`` or ``"argos"``.
        origin: ``"explicit"``, ``"model-dir"``, ``"hf-cache"`` or ``"argos"``.
        source_spm / target_spm: its SentencePiece models (None when missing: see ``problem``).
        language_tokens: NLLB / M2M-100 language tokens, Marian ``>>xx<<`` target tokens.
        sources / targets: languages from metadata (Marian, Argos); ``sources`` None: any source.
        target_prefix: Argos ``metadata.json`` token to start decoding with (None: none).
        problem: why it cannot be used (None: usable).
    """

    name: str
    path: Path
    family: str
    origin: str
    source_spm: Path | None = None
    target_spm: Path | None = None
    language_tokens: tuple[str, ...] = ()
    sources: tuple[Language, ...] | None = ()
    targets: tuple[Language, ...] = ()
    target_prefix: str | None = None
    problem: str | None = None

    def source_token(self, lang: Language) -> str | None:
        """NLLB / M2M-100 token of a language (None for the other families or an unknown one)."""
        if self.family == codes.NLLB:
            return codes.nllb_code(lang, self.language_tokens)
        if self.family == codes.M2M100:
            return codes.m2m_code(lang, self.language_tokens)
        return None

    def target_token(self, lang: Language) -> str | None:
        """The token that selects ``lang`` as target (NLLB/M2M code, Marian ``>>xx<<``), or None."""
        if self.family == codes.MARIAN:
            return codes.marian_target_token(lang, self.language_tokens) if self.language_tokens else None
        return self.source_token(lang)

    def covers(self, source: Language, target: Language) -> bool:
        """True when the model is usable and translates ``source`` into ``target``."""
        if self.problem is not None or codes.same_language(source, target):
            return False
        if self.family in (codes.NLLB, codes.M2M100):
            return self.source_token(source) is not None and self.source_token(target) is not None
        src_ok = self.sources is None or any(codes.same_language(source, s) for s in self.sources)
        if self.family == codes.MARIAN and self.language_tokens:
            return src_ok and self.target_token(target) is not None
        return src_ok and any(codes.same_language(target, t) for t in self.targets)

    def languages_text(self) -> str:
        """The pairs it covers, in words: ``"200 languages, any pair"`` or ``"en -> es,fr"``."""
        if self.family in (codes.NLLB, codes.M2M100):
            return f"{len(self.language_tokens)} languages, any pair"
        src = "any" if self.sources is None else ",".join(l.code for l in self.sources) or "?"
        return f"{src} -> {','.join(l.code for l in self.targets) or '?'}"

    def describe(self) -> str:
        """One line for ``lipdub doctor``: family, languages, origin and path."""
        if self.problem:
            return f"{self.family} at {self.path}: not usable ({self.problem})"
        return f"{self.family}, {self.languages_text()} ({self.origin}: {self.path})"


def read_vocabulary(model_path: Path) -> list[str]:
    """Target (or shared) vocabulary of a CTranslate2 model: JSON list or one token per line."""
    for name in _VOCAB_NAMES:
        p = model_path / name
        if p.is_file():
            if name.endswith(".json"):
                return list(json.loads(p.read_text(encoding="utf-8")))
            return p.read_text(encoding="utf-8").splitlines()
    return []


def is_translation_model(path: Path) -> bool:
    """True when ``path`` holds ``model.bin`` and a translation vocabulary (not Whisper's)."""
    return path.is_dir() and (path / "model.bin").is_file() and any((path / n).is_file() for n in _VOCAB_NAMES)


def is_argos_package(path: Path) -> bool:
    """True when ``path`` is an unpacked Argos package (``metadata.json`` and ``model/``)."""
    return path.is_dir() and (path / "metadata.json").is_file() and is_translation_model(path / "model")


def _languages(values) -> tuple[Language, ...]:
    out = []
    for v in values or ():
        try:
            lang = parse_language(str(v))
        except ConfigError:
            continue
        if lang not in out:
            out.append(lang)
    return tuple(out)


def _marian_languages(path: Path, name: str) -> tuple[tuple[Language, ...] | None, tuple[Language, ...]]:
    for meta_name, skey, tkey in ((SIDECAR, "source", "target"), ("tokenizer_config.json", "source_lang", "target_lang")):
        meta = path / meta_name
        if meta.is_file():
            try:
                data = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            src, tgt = data.get(skey), data.get(tkey)
            if src and tgt:
                as_list = lambda v: v if isinstance(v, list) else [v]  # noqa: E731
                return (None if as_list(src) == ["mul"] else _languages(as_list(src))), _languages(as_list(tgt))
    m = _OPUS_RE.search(name)
    if m is None:
        return (), ()
    src, tgt = m.group(1), m.group(2)
    return (None if src == "mul" else _languages(src.split("_"))), _languages(tgt.split("_"))


def inspect_model(path: Path, origin: str, name: str | None = None) -> MtModel:
    """Describe the CTranslate2 model (or Argos package) at ``path`` (module doc for the rules).

    Raises:
        MissingWeights: ``path`` is neither a CTranslate2 translation model nor an Argos package.
    """
    path = Path(path)
    if is_argos_package(path):
        return _inspect_argos(path, origin, name or path.name)
    if not is_translation_model(path):
        raise MissingWeights(
            f"{path} is not a CTranslate2 translation model (no model.bin with shared_vocabulary.json)",
            "convert one with ct2-transformers-converter (see the README, Translation) or pass an .argosmodel file")
    name = name or path.name
    vocab = read_vocabulary(path)
    family = codes.detect_family(vocab)
    tokens = tuple(codes.language_tokens(family, vocab))
    if family == codes.MARIAN:
        spm_src, spm_tgt = path / "source.spm", path / "target.spm"
        if not (spm_src.is_file() and spm_tgt.is_file()):
            one = next((path / n for n in _SPM_NAMES if (path / n).is_file()), None)
            spm_src = spm_tgt = one
        sources, targets = _marian_languages(path, name)
        if tokens and not targets:
            targets = tuple(l for l in (codes.language_of_token(family, t) for t in tokens) if l is not None)
        problem = None
        if spm_src is None:
            problem = "no SentencePiece model: copy source.spm and target.spm next to model.bin"
        elif sources == () or not targets:
            problem = f"its languages are unknown: add {SIDECAR} with {{\"source\": [\"en\"], \"target\": [\"es\"]}}"
        return MtModel(name, path, family, origin, spm_src, spm_tgt, tokens, sources, targets, problem=problem)
    spm = next((path / n for n in _SPM_NAMES if (path / n).is_file()), None)
    problem = None if spm else "no SentencePiece model: copy sentencepiece.bpe.model next to model.bin (ct2-transformers-converter --copy_files sentencepiece.bpe.model)"
    return MtModel(name, path, family, origin, spm, spm, tokens, problem=problem)


def _inspect_argos(path: Path, origin: str, name: str) -> MtModel:
    try:
        meta = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return MtModel(name, path / "model", codes.ARGOS, origin, problem=f"unreadable metadata.json ({exc})")
    sources = _languages([meta.get("from_code"), *meta.get("from_codes", [])] + [l.get("code") for l in meta.get("languages", [])])
    targets = _languages([meta.get("to_code"), *meta.get("to_codes", [])] + [l.get("code") for l in meta.get("languages", [])])
    spm = path / "sentencepiece.model"
    problem = None
    if not spm.is_file():
        problem = ("BPE-tokenized Argos packages are not supported (use a SentencePiece package)" if (path / "bpe.model").is_file()
                   else "no sentencepiece.model in the package")
        spm = None
    elif meta.get("type", "translate") != "translate":
        problem = f"package type {meta.get('type')!r} is not a translation model"
    elif not sources or not targets:
        problem = "metadata.json names no from_code / to_code"
    return MtModel(name, path / "model", codes.ARGOS, origin, spm, spm, (), sources, targets,
                   meta.get("target_prefix") or None, problem)


def argos_packages_dir() -> Path:
    """Argos Translate's package folder (its ``settings.py`` rules, module doc step 4)."""
    env = os.environ.get("ARGOS_PACKAGES_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share") / "argos-translate" / "packages"


def _candidates(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(("whisper-", "."))]


def _hf_snapshots() -> list[tuple[str, Path]]:
    cache = hf_hub_cache()
    out = []
    for repo in (sorted(cache.glob("models--*")) if cache.is_dir() else []):
        snaps = repo / "snapshots"
        ref = repo / "refs" / "main"
        chosen = snaps / ref.read_text(encoding="utf-8").strip() if ref.is_file() else None
        if chosen is None or not chosen.is_dir():
            found = [p for p in snaps.iterdir() if p.is_dir()] if snaps.is_dir() else []
            chosen = max(found, key=lambda p: p.stat().st_mtime) if found else None
        if chosen is not None and is_translation_model(chosen):
            out.append((repo.name.removeprefix("models--").replace("--", "/", 1), chosen))
    return out


def available_mt_models() -> list[MtModel]:
    """Every translation model found by steps 2-4 of the module doc, in that order (usable or not)."""
    found: list[MtModel] = []
    seen: set[Path] = set()

    def add(path: Path, origin: str, name: str | None = None) -> None:
        real = path.resolve()
        if real in seen:
            return
        if is_argos_package(path) or is_translation_model(path):
            seen.add(real)
            found.append(inspect_model(path, origin, name))

    user = model_dir()
    for d in _candidates(user):
        add(d, "model-dir")
    for d in _candidates(user / "argos"):
        add(d, "argos")
    for name, snap in _hf_snapshots():
        add(snap, "hf-cache", name)
    for d in _candidates(argos_packages_dir()):
        add(d, "argos")
    return found


def install_argos_package(archive: str | os.PathLike, dest_root: str | os.PathLike | None = None) -> Path:
    """Unpack an ``.argosmodel`` file into ``$LIPDUB_MODEL_DIR/argos/`` (or ``dest_root``).

    The package folder is named after the archive's top folder; a package already unpacked from an
    archive with the same ``metadata.json`` is reused. Unpacking goes to a temporary folder that is
    renamed into place, so a killed run never leaves half a package.

    Returns:
        The package directory (holding ``metadata.json``, ``model/``, ``sentencepiece.model``).

    Raises:
        InputError: not a zip file, no ``metadata.json`` in a single top folder, or a member path
            that would land outside the package.
        MissingWeights: the archive unpacks to something that is not an Argos translation package.
    """
    src = Path(archive)
    if not zipfile.is_zipfile(src):
        raise InputError(f"{src} is not an Argos package (not a zip archive)", "pass an .argosmodel file as Argos Translate distributes them")
    root = Path(dest_root) if dest_root is not None else model_dir() / "argos"
    with zipfile.ZipFile(src) as zf:
        names = [n for n in zf.namelist() if n and not n.startswith("__MACOSX")]
        tops = {n.split("/", 1)[0] for n in names}
        meta_name = next((n for n in names if n.count("/") == 1 and n.endswith("/metadata.json")), None)
        if len(tops) != 1 or meta_name is None:
            raise InputError(f"{src}: an Argos package holds one folder with metadata.json", "check the file: unzip -l " + str(src))
        if any(n.startswith("/") or ".." in Path(n).parts for n in names):
            raise InputError(f"{src}: member paths leave the package folder", "the archive is malformed or unsafe; do not use it")
        top = tops.pop()
        meta = zf.read(meta_name)
        target = root / top
        if (target / "metadata.json").is_file() and (target / "metadata.json").read_bytes() == meta and is_argos_package(target):
            return target
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{top}.", dir=root))
        try:
            zf.extractall(tmp, members=names)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp / top, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not is_argos_package(target):
        raise MissingWeights(f"{src} unpacked to {target}, which holds no metadata.json with a model/ folder", "use a translation package (.argosmodel)")
    logger.info("installed Argos package %s into %s", src.name, target)
    return target


def resolve_explicit(path: str | os.PathLike) -> MtModel:
    """The model at an explicit path (step 1 of the module doc).

    Raises:
        MissingWeights: the path does not exist or is not a model (the hint says what is expected).
        InputError: a malformed ``.argosmodel`` file.
    """
    p = Path(path).expanduser()
    if p.is_file():
        p = install_argos_package(p)
    elif not p.exists():
        raise MissingWeights(f"translation model {p} not found", "pass a CTranslate2 model directory, an Argos package directory or an .argosmodel file")
    model = inspect_model(p, "explicit")
    return model
