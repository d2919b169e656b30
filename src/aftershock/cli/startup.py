"""The garbage collector of an ``aftershock`` process: off while it starts, idle at its exit.

A command's start allocates a few hundred thousand objects that live as long
as the process (modules, classes, the document model and its validator) and
almost no garbage, yet the cyclic collector walks all of them each time its
thresholds trip: a full collection every few dozen modules imported. The
interpreter's own collections at exit walk them once more. Together that was
about a fifth of a short ``aftershock run`` (``bench/bench_cli.py``).

So the console-script entry point calls ``starting()`` first: no collection
until the command says what it lives with is loaded (``started()``, from the
command classes below). ``started()`` freezes that heap
(``gc.freeze``: the collector no longer walks it) and turns the collector on,
so the command's own work (a run, a daemon for weeks) is collected as usual,
only cheaper. At exit the heap is frozen again, so the interpreter's final
collections skip it; nothing is lost by that: files, the journal and the
ledger are closed by the code that opened them, and the operating system takes
back the memory.

Only the entry point turns this on: a command run in another process's
interpreter (``typer.testing.CliRunner``, an embedding program) leaves that
process's collector alone, and ``started()`` does nothing there.
"""

from __future__ import annotations

import atexit
import gc
from typing import Any

from typer.core import TyperCommand

__all__ = ["Command", "LoggingCommand", "ReadingCommand", "started", "starting"]

_paused = False
_at_exit = False


def starting() -> None:
    """The process starts a command: no cyclic collection until ``started()``."""
    global _paused, _at_exit  # noqa: PLW0603 - the one process-wide switch
    if not gc.isenabled():
        return  # someone else turned it off and will turn it on
    gc.disable()
    _paused = True
    if not _at_exit:
        atexit.register(gc.freeze)
        _at_exit = True


def started() -> None:
    """What the command lives with is loaded: freeze it and collect from here on.

    Does nothing unless ``starting()`` paused the collector; called more than
    once, it acts once.
    """
    global _paused  # noqa: PLW0603 - the one process-wide switch
    if not _paused:
        return
    _paused = False
    gc.freeze()
    gc.enable()


class Command(TyperCommand):
    """A command: once what it first loads is loaded (``prepare``), the heap has settled.

    The collector paused by ``starting`` runs again from there, before the
    command's own work. Not while listing or parsing: ``run --help`` exits
    before ``invoke``.
    """

    def prepare(self, ctx: Any) -> None:  # ctx: the click Context typer vendors (private)
        """Load what the command needs first; nothing for a plain command."""

    def invoke(self, ctx: Any) -> Any:
        self.prepare(ctx)
        started()
        return super().invoke(ctx)


class LoggingCommand(Command):
    """A command that logs: logging is set up with the root options just before it runs.

    Setting it up loads structlog and the document model (secrets are redacted
    from every line), which the command then lives with.
    """

    def prepare(self, ctx: Any) -> None:
        from aftershock.observability.logging import configure_logging

        root = ctx.find_root().params
        configure_logging(root["log_level"], root["log_format"])


class ReadingCommand(Command):
    """A command that reads documents: the loader and the document model load first."""

    def prepare(self, ctx: Any) -> None:
        import aftershock.loading  # noqa: F401 - loaded before the heap settles
