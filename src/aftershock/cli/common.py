"""What every command shares: exit codes, one-line errors, settings and the paths a user names.

Exit codes beyond ``run``'s verdicts: 2 for input the command cannot use (settings,
an unusable state directory, an output path that cannot be written, a file that
is not a journal), 4 for a failure while working (a driver, a probe, a state
file, an I/O error). Every such error is one line on stderr, never a traceback.
Paths are checked before anything is touched, so a refused command leaves no trace.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import typer

from aftershock.errors import AftershockError
from aftershock.settings import Settings, load_settings

__all__ = [
    "EXIT_ERRORED",
    "EXIT_INVALID",
    "fail",
    "home_problem",
    "listen_address",
    "os_reason",
    "output_dir_problem",
    "output_file_problem",
    "require_home",
    "settings_or_exit",
]

EXIT_INVALID = 2
EXIT_ERRORED = 4


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def os_reason(exc: OSError) -> str:
    """An OSError as a short reason, with the file it names: ``/x: Not a directory``."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename is not None else reason


def listen_address(listen: str) -> tuple[str, int]:
    """``host:port`` of a ``--listen`` option; a usage error (exit 2) otherwise."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        msg = f"invalid --listen {listen!r}; expected host:port, e.g. 127.0.0.1:9464"
        raise typer.BadParameter(msg)
    return host, int(port)


def home_problem(home: Path) -> str | None:
    """Why the state directory cannot be used (it is created if missing), or ``None``."""
    hint = "set $AFTERSHOCK_HOME to a writable directory"
    try:
        if home.exists() and not home.is_dir():
            why = "it exists and is not a directory"
        else:
            home.mkdir(parents=True, exist_ok=True)
            why = "" if os.access(home, os.W_OK | os.X_OK) else "not writable"
    except OSError as exc:
        why = str(exc.strerror or exc)
    return f"state directory {home} is unusable: {why} ({hint})" if why else None


def settings_or_exit(*, home: bool = True) -> Settings:
    """The controller settings, or exit 2 with the one-line reason.

    With ``home`` the state directory must be usable too (created if missing).
    """
    try:
        settings = load_settings()
    except AftershockError as exc:
        fail(str(exc))
    if home:
        require_home(settings)
    return settings


def require_home(settings: Settings) -> None:
    """Create the state directory, or exit 2 naming it."""
    if (problem := home_problem(settings.home)) is not None:
        fail(problem)


def _creatable(path: Path, what: str) -> str | None:
    """Why ``path`` (missing) cannot be created, judged by its nearest existing ancestor."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{what} {path}: cannot be created, {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{what} {path}: cannot be created, {parent} is not writable"
    return None


def output_dir_problem(path: Path, files: tuple[str, ...] = (), what: str = "--out") -> str | None:
    """Why ``files`` cannot be written into the directory ``path`` (created if missing)."""
    try:
        if not path.exists():
            return _creatable(path, what)
        if not path.is_dir():
            return f"{what} {path}: exists and is not a directory"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{what} {path}: directory is not writable"
        for name in files:
            target = path / name
            if target.is_dir() or (target.exists() and not os.access(target, os.W_OK)):
                return f"{what} {path}: {name} exists and cannot be overwritten"
    except OSError as exc:
        return f"{what} {path}: {exc.strerror or exc}"
    return None


def output_file_problem(path: Path, what: str = "--junit") -> str | None:
    """Why a file cannot be written at ``path`` (its directories created if missing)."""
    try:
        if path.is_dir():
            return f"{what} {path}: is a directory"
        if path.exists():
            return None if os.access(path, os.W_OK) else f"{what} {path}: not writable"
        return _creatable(path, what)
    except OSError as exc:
        return f"{what} {path}: {exc.strerror or exc}"
