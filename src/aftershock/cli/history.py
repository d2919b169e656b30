"""``aftershock history``: runs, budget spend and recovery per experiment, week over week."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from aftershock.cli.common import (
    EXIT_ERRORED,
    fail,
    os_reason,
    output_dir_problem,
    require_home,
    settings_or_exit,
)

if TYPE_CHECKING:
    # The ledger and the reports load when the command runs, not for ``--help``.
    from aftershock.journal.ledger import WeekRow

__all__ = ["history"]

TRENDS_FILE: Final = "trends.html"
"""The page ``--html`` writes: ``aftershock.reporting.TRENDS_FILE``, named here for the help."""

TABLE_WEEKS: Final = 8
"""Weeks the text table shows unless ``--weeks`` says otherwise."""
HTML_WEEKS: Final = 52
"""Weeks the ``--html`` page covers unless ``--weeks`` says otherwise (from the first run)."""
MAX_WEEKS: Final = 5200
"""A hundred years: further back than any ledger, short of the calendar's limits."""
_COLUMNS: Final = (
    "week",
    "experiment",
    "runs",
    "passed",
    "failed",
    "aborted",
    "errored",
    "interrupted",
    "forced",
    "budget spent",
    "median recovery",
    "max recovery",
)


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _print_table(rows: list[WeekRow]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="aftershock history")
    for column in _COLUMNS:
        table.add_column(column)
    for row in rows:
        cells = (
            row.week,
            row.experiment,
            str(row.runs),
            str(row.passed),
            str(row.failed),
            str(row.aborted),
            str(row.errored),
            str(row.interrupted),
            str(row.forced),
            f"{row.budget_spent:.3%}",
            _secs(row.recovery_median),
            _secs(row.recovery_max),
        )
        table.add_row(*map(Text, cells))  # experiment names are not markup
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # piped output: never squeeze names into ellipses
    console.print(table)


def history(
    weeks: Annotated[
        int | None,
        typer.Option(
            help=f"How many weeks back (default {TABLE_WEEKS}; {HTML_WEEKS} for --html).",
            min=1,
            max=MAX_WEEKS,
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help=f"Also write {TRENDS_FILE} (weekly plots, self-contained) into this directory.",
        ),
    ] = None,
) -> None:
    """Runs, budget spend and recovery times per experiment, week over week.

    ``interrupted`` counts runs stopped by a signal (SIGINT, SIGTERM) or a crash,
    apart from ``errored`` (a driver or probe failed). ``--html DIR`` also writes
    a page of plots per week and experiment: runs by verdict, budget spent per
    SLO against its window's allowance, recovery time and MTTR per fault family,
    healer actions. Weeks are ISO weeks in UTC. Exit 2 when the state directory
    or DIR cannot be used (checked first), 4 when writing the page fails.
    """
    from aftershock.journal.ledger import LEDGER_FILE, Ledger
    from aftershock.reporting import load_trends, write_trends

    settings = settings_or_exit(home=False)
    if html is not None and (problem := output_dir_problem(html, (TRENDS_FILE,), "--html")):
        fail(problem)
    require_home(settings)
    ledger = Ledger(settings.home / LEDGER_FILE)
    now = datetime.now(UTC)
    _print_table(ledger.history(weeks or TABLE_WEEKS, now))
    if html is not None:
        trends = load_trends(ledger, now=now, weeks=weeks or HTML_WEEKS)
        try:
            path = write_trends(trends, html)
        except OSError as exc:
            fail(f"cannot write {TRENDS_FILE}: {os_reason(exc)}", EXIT_ERRORED)
        typer.echo(f"trends: {path}")
