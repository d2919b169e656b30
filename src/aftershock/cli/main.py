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
from typing import Annotated, Any, Literal

import typer
from typer.core import TyperCommand

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


class _Logging(TyperCommand):
    """A command that logs: logging is set up with the root options just before it runs.

    Not while listing or parsing: ``run --help`` exits before ``invoke``.
    """

    def invoke(self, ctx: Any) -> Any:  # ctx: the click Context typer vendors (private)
        from aftershock.observability.logging import configure_logging

        root = ctx.find_root().params
        configure_logging(root["log_level"], root["log_format"])
        return super().invoke(ctx)


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

    The logging options are read by the commands that log (``_Logging``) when they run.
    """


app.command(cls=_Logging)(demo)
app.command()(validate_cmds.validate)
app.command()(validate_cmds.schema)
app.command(cls=_Logging)(proxy)
app.command(cls=_Logging)(run_cmds.run)
app.command(cls=_Logging)(heal)
app.command(cls=_Logging)(run_cmds.recover)
app.command(cls=_Logging)(run_cmds.report)
app.command(cls=_Logging)(history)
app.command(cls=_Logging)(run_cmds.lever)
app.command(cls=_Logging)(schedule)
app.command(cls=_Logging)(operator)
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
