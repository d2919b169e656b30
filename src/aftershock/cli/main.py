"""The ``aftershock`` command.

Commands load what they use: every command module imports only typer, rich and
the standard library at import time, and its body imports the loader, the
model, the runtime or a driver when it runs. Logging is set up when a command
that logs starts running, after its options are parsed, so ``--help`` of any
command, ``validate`` and ``schema`` start without the runtime, any driver SDK
or structlog (``tests/e2e/test_cli_imports.py`` checks it).
"""

from __future__ import annotations

import sys
from typing import Annotated, Literal

import typer

import aftershock
from aftershock.cli import run as run_cmds
from aftershock.cli import validate as validate_cmds
from aftershock.cli.common import EXIT_ERRORED, os_reason
from aftershock.cli.demo import demo
from aftershock.cli.heal import heal
from aftershock.cli.history import history
from aftershock.cli.importing import import_app
from aftershock.cli.operator import operator
from aftershock.cli.proxy import proxy
from aftershock.cli.schedule import schedule
from aftershock.cli.startup import Command, LoggingCommand, ReadingCommand, starting
from aftershock.errors import AftershockError

__all__ = ["app", "main"]

app = typer.Typer(
    name="aftershock",
    help="Chaos experiments and self-healing, booked against SLO error budgets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


LogFormat = Literal["auto", "json", "console"]
"""``--log-format``: ``aftershock.observability.logging.LogFormat``, named here for the help."""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aftershock {aftershock.__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "warning",
    log_format: Annotated[LogFormat, typer.Option(help="auto, json or console.")] = "auto",
) -> None:
    """Chaos experiments and self-healing, booked against SLO error budgets.

    The logging options are read by the commands that log (``LoggingCommand``) when they run.
    """


app.command(cls=LoggingCommand)(demo)
app.command(cls=ReadingCommand)(validate_cmds.validate)
app.command(cls=Command)(validate_cmds.schema)
app.command(cls=LoggingCommand)(proxy)
app.command(cls=LoggingCommand)(run_cmds.run)
app.command(cls=LoggingCommand)(heal)
app.command(cls=LoggingCommand)(run_cmds.recover)
app.command(cls=LoggingCommand)(run_cmds.report)
app.command(cls=LoggingCommand)(history)
app.command(cls=LoggingCommand)(run_cmds.lever)
app.command(cls=LoggingCommand)(schedule)
app.command(cls=LoggingCommand)(operator)
app.add_typer(import_app, name="import")


def main() -> None:
    """Console-script entry point: expected errors become one line and an exit code.

    Commands check what a user names (settings, ``$AFTERSHOCK_HOME``, output paths,
    input files) first and exit 2 with one line. Whatever still fails while working,
    an ``AftershockError`` or an ``OSError`` (a state file, a full disk), is one
    ``error:`` line and exit 4, never a traceback.
    """
    starting()
    try:
        app()
    except AftershockError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        sys.exit(EXIT_ERRORED)
    except OSError as exc:
        print(f"error: {os_reason(exc)}", file=sys.stderr)  # noqa: T201
        sys.exit(EXIT_ERRORED)
