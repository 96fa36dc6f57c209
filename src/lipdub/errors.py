"""Errors lipdub raises for bad input, missing backends and missing weights.

Every error carries a one-line ``message`` (what is wrong) and a ``hint`` (what to do), so that the
CLI can print one clear line without a traceback.
"""

from __future__ import annotations


class LipdubError(Exception):
    """Base class of every error lipdub reports to a user.

    Args:
        message: what is wrong, one line.
        hint: what the user can do about it, one line (optional).
    """

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # one line, used by the CLI
        return f"{self.message}. {self.hint}" if self.hint else self.message


class InputError(LipdubError):
    """The input media or an input file (transcript, script) is unusable."""


class ConfigError(LipdubError):
    """An option or configuration value is invalid (unknown language code, bad ratio, ...)."""


class BackendUnavailable(LipdubError):
    """A backend's package, program or service is missing; the hint names what to install."""


class MissingWeights(LipdubError):
    """A model file a backend needs was not found; the hint names the file or package to supply."""


class StageFailed(LipdubError):
    """A stage ran but could not produce its output (the message says which stage and why)."""
