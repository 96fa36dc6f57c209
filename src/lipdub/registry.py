"""Backend registries: one per stage, name -> adapter, optional imports guarded.

Backends are registered lazily by import path so that importing lipdub never imports torch,
faster-whisper or piper; the adapter module is imported only when the backend is used or checked.
Pattern after PySceneDetect's detector backends: one narrow protocol per stage, many adapters.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import BackendUnavailable, ConfigError, LipdubError

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendStatus:
    """Whether a backend is usable on this machine, and why not."""

    stage: str
    name: str
    usable: bool
    detail: str


class Registry(Generic[T]):
    """Name -> backend class for one stage.

    Args:
        stage: the stage name (``"separate"``, ``"tts"``, ...), used in messages.

    Each registered class must be constructible with keyword options and may define a classmethod
    ``check() -> str`` that raises :class:`BackendUnavailable` / :class:`MissingWeights` when it
    cannot run here and returns a short description of what it found otherwise.
    """

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._paths: dict[str, str] = {}
        self._descriptions: dict[str, str] = {}
        self._auto_ranks: dict[str, int] = {}

    def register(self, name: str, path: str, description: str = "", auto_rank: int | None = None) -> None:
        """Register backend ``name`` implemented by ``"package.module:ClassName"``; with ``auto_rank``
        it is a candidate of :meth:`auto_choice` (lower ranks are asked first)."""
        self._paths[name] = path
        self._descriptions[name] = description
        if auto_rank is not None:
            self._auto_ranks[name] = auto_rank

    def names(self) -> list[str]:
        """Registered backend names, in registration order."""
        return list(self._paths)

    def description(self, name: str) -> str:
        return self._descriptions.get(name, "")

    def load(self, name: str) -> type[T]:
        """Import and return the backend class.

        Raises:
            ConfigError: ``name`` is not registered for this stage.
            BackendUnavailable: its module cannot be imported (missing optional package).
        """
        if name not in self._paths:
            raise ConfigError(
                f"unknown {self.stage} backend {name!r}",
                f"choose one of: {', '.join(self._paths)}",
            )
        module_name, _, class_name = self._paths[name].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise BackendUnavailable(
                f"{self.stage} backend {name!r} cannot be imported ({exc})",
                "install lipdub with its extras: pip install 'lipdub[audio,weights]' (see README)",
            ) from exc
        return getattr(module, class_name)

    def create(self, name: str, **options: Any) -> T:
        """Import, check and instantiate backend ``name`` with ``options``."""
        cls = self.load(name)
        return cls(**options)

    def create_checked(self, name: str, options: dict[str, Any] | None = None) -> T:
        """Instantiate backend ``name`` with the user's ``options`` (None values: not given, dropped).

        Raises:
            ConfigError: unknown backend, or an option its constructor does not take (named as a CLI
                flag, with the ones it takes): an option is never accepted and ignored.
        """
        cls = self.load(name)
        opts = {k: v for k, v in (options or {}).items() if v is not None}
        params = inspect.signature(cls.__init__).parameters
        takes = [p for p in params if p != "self" and params[p].kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        for key in opts:
            if key not in takes:
                flag = "--" + key.replace("_", "-")
                raise ConfigError(f"{self.stage} backend {name!r} does not take {flag}",
                                  f"it takes: {', '.join('--' + t.replace('_', '-') for t in takes) or 'no options'}")
        return cls(**opts)

    def auto_choice(self, *args: Any, **options: Any) -> str:
        """The backend an ``auto`` setting picks: the first candidate (by ``auto_rank``) whose class
        method ``auto_supports(*args, **options)`` is true. A candidate whose package is not installed
        is passed over (logged), as it cannot be the user's choice.

        Raises:
            ConfigError: no candidate accepts ``args`` (e.g. no TTS speaks the language).
        """
        for name in sorted(self._auto_ranks, key=lambda n: self._auto_ranks[n]):
            try:
                cls = self.load(name)
                if cls.auto_supports(*args, **options):
                    return name
            except BackendUnavailable as exc:
                log.info("%s auto: %s unusable (%s)", self.stage, name, exc)
        raise ConfigError(f"no {self.stage} backend can be chosen automatically for {', '.join(map(str, args))}",
                          f"choose one of {', '.join(self._paths)} explicitly")

    def status(self, name: str) -> BackendStatus:
        """Check backend ``name`` without running it (used by ``lipdub doctor``)."""
        try:
            cls = self.load(name)
            check = getattr(cls, "check", None)
            detail = check() if check else "ok"
            return BackendStatus(self.stage, name, True, detail or "ok")
        except LipdubError as exc:
            return BackendStatus(self.stage, name, False, str(exc))
        except Exception as exc:  # a broken install must not crash doctor
            return BackendStatus(self.stage, name, False, f"{type(exc).__name__}: {exc}")


def require_module(module: str, package: str) -> Any:
    """Import ``module`` or raise :class:`BackendUnavailable` naming the pip ``package``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailable(
            f"Python package {package!r} is not installed ({exc})",
            f"pip install {package}",
        ) from exc
