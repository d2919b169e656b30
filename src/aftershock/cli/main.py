"""The ``aftershock`` command."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from aftershock import __version__
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
from aftershock.errors import AftershockError
from aftershock.observability.logging import LogFormat, configure_logging

__all__ = ["app", "main"]

app = typer.Typer(
    name="aftershock",
    help="Chaos experiments and self-healing, booked against SLO error budgets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aftershock {__version__}")
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
    """Chaos experiments and self-healing, booked against SLO error budgets."""
    configure_logging(log_level, log_format)


app.command()(demo)
app.command()(validate_cmds.validate)
app.command()(validate_cmds.schema)
app.command()(proxy)
app.command()(run_cmds.run)
app.command()(heal)
app.command()(run_cmds.recover)
app.command()(run_cmds.report)
app.command()(history)
app.command()(run_cmds.lever)
app.command()(schedule)
app.command()(operator)
app.add_typer(import_app, name="import")


def main() -> None:
    """Console-script entry point: expected errors become one line and an exit code.

    Commands check what a user names (settings, ``$AFTERSHOCK_HOME``, output paths,
    input files) first and exit 2 with one line. Whatever still fails while working,
    an ``AftershockError`` or an ``OSError`` (a state file, a full disk), is one
    ``error:`` line and exit 4, never a traceback.
    """
    try:
        app()
    except AftershockError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        sys.exit(EXIT_ERRORED)
    except OSError as exc:
        print(f"error: {os_reason(exc)}", file=sys.stderr)  # noqa: T201
        sys.exit(EXIT_ERRORED)
