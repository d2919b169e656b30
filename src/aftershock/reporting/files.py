"""The report files of a run: ``report.html`` and ``summary.md`` in a directory, JUnit XML apart."""

from __future__ import annotations

from pathlib import Path

from aftershock.reporting.html import render_html
from aftershock.reporting.junit import render_junit
from aftershock.reporting.markdown import render_markdown
from aftershock.reporting.view import RunView

__all__ = ["REPORT_FILES", "write_junit", "write_report"]

REPORT_FILES = ("report.html", "summary.md")
"""What ``write_report`` writes into its directory."""


def write_report(view: RunView, directory: Path | str) -> dict[str, Path]:
    """Write ``report.html`` and ``summary.md`` into ``directory`` (created); return their paths."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    paths = {"html": target / REPORT_FILES[0], "markdown": target / REPORT_FILES[1]}
    paths["html"].write_text(render_html(view), encoding="utf-8")
    paths["markdown"].write_text(render_markdown(view), encoding="utf-8")
    return paths


def write_junit(view: RunView, path: Path | str) -> Path:
    """Write the JUnit XML of a run to ``path`` (its directories created); return it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_junit(view), encoding="utf-8")
    return target
