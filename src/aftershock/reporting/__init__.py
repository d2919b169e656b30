"""Run reports: a run's journal replayed into a ``RunView`` and rendered for people and CI.

Rule: reports are pure functions of a journal. ``load_run`` reads one run file
(never the experiment document, never a live system); the renderers are pure
functions of the view: ``render_html`` (one self-contained page, no network),
``render_markdown`` (a PR comment) and ``render_junit`` (CI). Only ``files``
writes, and only where it is told. This package imports ``journal`` and
``model``, never the engine, a driver or the runtime.

Modules: ``view`` (what a report shows), ``fields`` (reading a note's values),
``collector`` and ``verdict`` (journal records to view parts), ``replay``
(``load_run``), ``format`` (shared figures), ``markdown``, ``junit``,
``charts`` (SVG timelines), ``html`` and ``files``.

Trends over weeks are pure functions of the ledger's runs: ``trends`` (periods x
experiments), ``trends_charts`` (SVG plots over weeks), ``trends_sections`` and
``trends_html`` (the page, as self-contained as a run report).
"""

from aftershock.reporting.files import REPORT_FILES, write_junit, write_report
from aftershock.reporting.html import render_html
from aftershock.reporting.junit import render_junit
from aftershock.reporting.markdown import render_markdown
from aftershock.reporting.replay import NotAJournal, load_run
from aftershock.reporting.trends import Trends, compute_trends, load_trends
from aftershock.reporting.trends_html import TRENDS_FILE, render_trends, write_trends
from aftershock.reporting.verdict import CRASHED_REASON
from aftershock.reporting.view import (
    LIMIT,
    AbortMark,
    FaultRow,
    FaultWindow,
    HealingEvent,
    Phase,
    RecoveryMark,
    RunView,
    Sample,
    SloInfo,
)

__all__ = [
    "CRASHED_REASON",
    "LIMIT",
    "REPORT_FILES",
    "TRENDS_FILE",
    "AbortMark",
    "FaultRow",
    "FaultWindow",
    "HealingEvent",
    "NotAJournal",
    "Phase",
    "RecoveryMark",
    "RunView",
    "Sample",
    "SloInfo",
    "Trends",
    "compute_trends",
    "load_run",
    "load_trends",
    "render_html",
    "render_junit",
    "render_markdown",
    "render_trends",
    "write_junit",
    "write_report",
    "write_trends",
]
