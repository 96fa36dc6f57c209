"""The CLI's plumbing: the stderr console, progress bars, one-line errors and exit codes, option
parsing helpers (:mod:`lipdub.cli` holds the commands)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

try:  # typer >= 0.20 carries its own copy of click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - older typer on click
    from click import exceptions as click_exc

from .errors import ConfigError, InputError, LipdubError

console = Console(stderr=True)
state = {"debug": False}


class RichHooks:
    """Pipeline hooks drawing one progress line per stage (rich)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def stage_started(self, stage: str, total: int | None = None) -> None:
        self.tasks[stage] = self.progress.add_task(stage, total=total)

    def stage_progress(self, stage: str, done: int, total: int) -> None:
        if stage in self.tasks:
            self.progress.update(self.tasks[stage], completed=done, total=total)

    def stage_finished(self, stage: str, record, skipped: bool) -> None:
        if skipped:
            self.progress.add_task(f"{stage} [dim](unchanged, reused)[/dim]", total=1, completed=1)
        elif stage in self.tasks:
            t = self.progress.tasks[self.tasks[stage]]
            self.progress.update(self.tasks[stage], total=t.total or 1, completed=t.total or 1,
                                 description=f"{stage} [dim]{record.duration_s:.1f} s[/dim]")


def progress() -> Progress:
    """Progress bars on stderr when it is a terminal; none otherwise, so that a failing run piped to a
    file or a program says one line on stderr (the summary on stdout lists every stage)."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=console, transient=False, disable=not console.is_terminal)


def run_guarded(fn):
    """Run ``fn`` turning lipdub errors into one line on stderr and exit code 2 (traceback with --debug)."""
    try:
        return fn()
    except LipdubError as exc:
        if state["debug"]:
            raise
        console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        console.print("interrupted: finished stages are kept in the project directory; run the same command to resume")
        raise typer.Exit(130) from None
    except Exception as exc:  # an unexpected bug: still one line, unless --debug
        if state["debug"]:
            raise
        console.print(f"[bold red]internal error:[/bold red] {type(exc).__name__}: {exc} (run with --debug for the traceback)", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def key_values(items: list[str] | None, flag: str) -> dict:
    """``["k=v", ...]`` -> ``{k: v}`` with ints, floats and true/false read as such.

    Raises:
        ConfigError: an item without ``=``.
    """
    out: dict = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} {item!r} is not KEY=VALUE", f"write e.g. {flag} num_hypotheses=8")
        value: object = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            for kind in (int, float):
                try:
                    value = kind(raw)
                    break
                except ValueError:
                    pass
        out[key.strip()] = value
    return out


def not_the_input(output: Path | None, *inputs: Path) -> None:
    """An ``-o`` file must not be one of the command's inputs (it would be overwritten)."""
    for path in inputs:
        if output is not None and path is not None and os.path.realpath(output) == os.path.realpath(path):
            raise InputError(f"-o {output} is the input: it would be overwritten", "pass another -o")


def native_chatter_off_stderr() -> None:
    """Point file descriptor 2 at ``/dev/null`` and keep Python's ``sys.stderr`` (lipdub's messages,
    logging, Python warnings) on the real stderr: native libraries write there directly (MediaPipe's
    absl and TensorFlow Lite logs: "Created TensorFlow Lite XNNPACK delegate", "W0000 ... feedback
    tensors"), which would bury a failing run's one line. ``--verbose`` / ``--debug`` keep them."""
    try:
        saved = os.dup(2)
        real = os.fdopen(saved, "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8", errors="backslashreplace")
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # pragma: no cover - no stderr at all
        return
    sys.stderr.flush()
    os.dup2(null, 2)
    os.close(null)
    sys.stderr = real  # the console (stderr=True) follows sys.stderr


def main(app: typer.Typer) -> None:
    """Run the CLI; a usage error (unknown option, a value of the wrong type, a missing argument) is
    one line on stderr and exit code 2, like every other bad input; no arguments at all print the help."""
    if not {"-v", "--verbose", "--debug"} & set(sys.argv[1:]):
        native_chatter_off_stderr()
    try:
        code = app(standalone_mode=False, prog_name="lipdub")
    except click_exc.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help())
        sys.exit(0)
    except click_exc.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "lipdub"
        console.print(f"[bold red]error:[/bold red] {exc.format_message().rstrip('.')}; see {command} --help", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except click_exc.ClickException as exc:
        console.print(f"[bold red]error:[/bold red] {exc.format_message()}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
