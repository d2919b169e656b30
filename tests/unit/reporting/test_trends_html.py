"""The trends page: self-contained, escaped, never NaN, labels that never overlap."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aftershock.journal.ledger import Ledger, LedgerAction
from aftershock.model.results import (
    BudgetResult,
    FaultRecord,
    HealingResult,
    RunResult,
    RunStatus,
)
from aftershock.reporting import TRENDS_FILE, load_run, render_html, render_trends, write_trends
from aftershock.reporting.trends import Trends, load_trends
from aftershock.reporting.trends_charts import CHAR_WIDTH, PLOT_FILL, PLOT_WIDTH, x_labels, y_ticks
from aftershock.reporting.trends_html import CONTENT_SECURITY_POLICY

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # Wednesday of 2026-W10
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
EVIL = "<script>alert('x')</script>\"&"
EVIL_ESCAPED = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;&amp;"
REAL_RUN = Path(__file__).parent / "data" / "real_run.jsonl"
FAULTS = ("toxiproxy.latency", "docker.kill", "k8s.deletePod", "process.kill")


def record_weeks(
    ledger: Ledger, weeks: int, *, experiments: tuple[str, ...] = ("checkout", "api")
) -> None:
    """Runs every week for ``weeks`` weeks up to NOW: every verdict, spend, faults, actions."""
    statuses = list(RunStatus)
    n = 0
    for week in range(weeks):
        for e, experiment in enumerate(experiments):
            for k in range(2):
                start = MONDAY - timedelta(weeks=weeks - 1 - week) + timedelta(hours=6 + 30 * k)
                n += 1
                fault = FAULTS[(week + e + k) % len(FAULTS)]
                result = RunResult(
                    run_id=f"run-{n}",
                    experiment=experiment,
                    status=statuses[(week + e + k) % len(statuses)],
                    started_at=start,
                    finished_at=start + timedelta(minutes=3),
                    faults=[FaultRecord(step="f", fault=fault, target="t", injected_at=start)],
                    recovery_seconds=5.0 + week % 7 + 3 * k,
                    recover_within=30.0,
                    budgets=[
                        BudgetResult(
                            slo=f"{experiment}-availability",
                            objective=0.999,
                            window_seconds=28 * 86400,
                            spent=0.01 * (1 + (week + k) % 4),
                            burn_rate=4.0,
                            baseline_bad_ratio=0.0,
                        )
                    ],
                    healing=HealingResult(expected_playbook="restart", fired=k == 0),
                )
                actions = [LedgerAction(playbook="restart", action="docker.restart", outcome="ok")]
                ledger.record_run(result, healer_actions=actions if k == 0 else [])


def page_for(tmp_path: Path, weeks: int, *, shown: int | None = None) -> tuple[Trends, str]:
    ledger = Ledger(tmp_path / f"ledger-{weeks}.sqlite3")
    record_weeks(ledger, weeks)
    trends = load_trends(ledger, now=NOW, weeks=shown or weeks)
    return trends, render_trends(trends)


def svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r"<svg.*?</svg>", page, re.DOTALL)]


def test_the_page_has_every_section_and_a_plot_each(tmp_path: Path) -> None:
    trends, page = page_for(tmp_path, 12)
    assert len(trends.periods) == 12
    for section in ("verdicts", "budget", "mttr", "healer", "weeks", "experiment-1"):
        assert f'id="{section}"' in page
    plots = svgs(page)
    # verdicts, one budget plot per SLO, MTTR, healer, and two per experiment
    assert len(plots) == 1 + 2 + 1 + 1 + 2 * 2
    for plot in plots:
        frame = plot.find("rect")
        assert frame is not None
        assert frame.get("fill") == PLOT_FILL
    assert page.count('class="bar"') > 100
    assert "docker" in page
    assert "k8s" in page
    assert "expect.recoverWithin" in page
    assert "allowance" in page


def test_the_page_is_self_contained_with_the_run_reports_policy(tmp_path: Path) -> None:
    _, page = page_for(tmp_path, 3)
    report = render_html(load_run(REAL_RUN))
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', report)
    assert policy is not None
    assert policy.group(1) == CONTENT_SECURITY_POLICY
    assert f'content="{CONTENT_SECURITY_POLICY}"' in page
    assert re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I) == []
    links = re.findall(r'href="([^"]*)"', page)
    assert links
    assert all(link.startswith("#") for link in links), links
    for banned in ("<script", "<link", "<img", "@import", "url(", "<iframe"):
        assert banned not in page.lower()


def test_hostile_names_are_escaped_everywhere(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    result = RunResult(
        run_id=EVIL,
        experiment=EVIL,
        status=RunStatus.FAILED,
        started_at=MONDAY,
        finished_at=MONDAY + timedelta(minutes=1),
        faults=[FaultRecord(step=EVIL, fault=f"{EVIL}.kill", target=EVIL, injected_at=MONDAY)],
        recovery_seconds=3.0,
        budgets=[
            BudgetResult(
                slo=EVIL,
                objective=0.99,
                window_seconds=86400,
                spent=0.5,
                burn_rate=1.0,
                baseline_bad_ratio=0.0,
            )
        ],
        healing=HealingResult(expected_playbook=EVIL, fired=True, playbook=EVIL),
    )
    action = LedgerAction(playbook=EVIL, action=EVIL, target=EVIL, outcome=EVIL)
    ledger.record_run(result, healer_actions=[action])
    page = render_trends(load_trends(ledger, now=NOW, weeks=4))
    assert "<script" not in page
    assert "alert('x')" not in page
    # experiment (card, legends, tables), SLO, family, outcome, playbook: action
    assert page.count(EVIL_ESCAPED) >= 8
    for plot in svgs(page):  # every plot is still well-formed XML
        assert plot.get("role") == "img"


@pytest.mark.parametrize("weeks", [1, 12, 52, 130])
def test_x_labels_never_overlap_and_the_latest_week_is_labelled(tmp_path: Path, weeks: int) -> None:
    trends, page = page_for(tmp_path, weeks, shown=200)
    assert 1 <= len(trends.periods) <= 60
    for plot in svgs(page):
        width = float(plot.get("viewBox", "").split()[2])
        labels = [
            (float(t.get("x", "0")), t.text or "")
            for t in plot.iter()
            if t.tag.endswith("text") and t.get("class") == "x"
        ]
        assert labels, "every plot labels its x axis"
        assert labels[-1][1] == trends.periods[-1].start.isoformat()
        extents = []
        for x, text in labels:
            half = len(text) * CHAR_WIDTH / 2
            extents.append((x - half, x + half))
        for (_, right), (left, _) in itertools.pairwise(extents):
            assert left - right >= 5, (weeks, right, left)
        assert extents[0][0] >= 0
        assert extents[-1][1] <= width


@pytest.mark.parametrize("count", [1, 2, 5, 12, 52, 60, 61, 120, 500])
def test_x_labels_always_fit(count: int) -> None:
    width = 10 * CHAR_WIDTH
    placed = x_labels(count, width)
    assert placed[-1][0] == count - 1
    assert all(b - a >= width + 10 for (_, a), (_, b) in itertools.pairwise(placed))
    assert placed[-1][1] + width / 2 <= PLOT_WIDTH
    assert x_labels(0, width) == []


def test_y_ticks() -> None:
    assert y_ticks(0, "count") == [0.0, 1.0]
    assert y_ticks(7, "count") == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert y_ticks(0.0123, "share") == pytest.approx([0.0, 0.005, 0.01, 0.015])
    assert y_ticks(45, "seconds") == [0, 15, 30, 45]
    assert y_ticks(700, "seconds") == [0, 300, 600, 900]
    assert len(y_ticks(1e12, "seconds")) <= 6  # beyond the table: steps of whole days
    assert len(y_ticks(math.inf, "share")) >= 2


def test_nan_and_infinity_are_never_rendered(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    for i, bad in enumerate([math.inf, -math.inf, math.nan, 1e300, -5.0]):
        result = RunResult(
            run_id=f"bad-{i}",
            experiment="checkout",
            status=RunStatus.PASSED,
            started_at=MONDAY + timedelta(hours=i),
            finished_at=MONDAY + timedelta(hours=i, minutes=1),
            recovery_seconds=bad,
            recover_within=bad,
            faults=[FaultRecord(step="s", fault="docker.kill", target="t", injected_at=MONDAY)],
            budgets=[]
            if math.isnan(bad)  # a NaN spend cannot be stored (the column is NOT NULL)
            else [
                BudgetResult(
                    slo="avail",
                    objective=bad,
                    window_seconds=bad,
                    spent=bad,
                    burn_rate=bad,
                    baseline_bad_ratio=0.0,
                )
            ],
            healing=HealingResult(fired=True, first_action_after=bad, healthy_after=bad),
        )
        ledger.record_run(
            result, healer_actions=[LedgerAction(playbook="p", action="a", at_seconds=bad)]
        )
    trends = load_trends(ledger, now=NOW, weeks=2)
    assert trends.total.runs == 5
    assert trends.skipped > 0
    page = render_trends(trends)
    text = re.sub(r"<[^>]*>", " ", page)
    assert re.search(r"\b(nan|inf|infinity)\b", text, re.I) is None
    assert re.search(r"\b(nan|inf|infinity)\b", page, re.I) is None
    assert "e+" not in page
    assert "not finite" in page  # the page says figures were left out


def test_no_runs_is_a_page_that_says_so(tmp_path: Path) -> None:
    trends = load_trends(Ledger(tmp_path / "ledger.sqlite3"), now=NOW, weeks=8)
    page = render_trends(trends)
    assert "No runs recorded in the last 8 week(s)" in page
    assert "<svg" not in page


def test_write_trends_writes_one_file(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    record_weeks(ledger, 1)
    path = write_trends(load_trends(ledger, now=NOW, weeks=1), tmp_path / "out" / "deep")
    assert path == tmp_path / "out" / "deep" / TRENDS_FILE
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in path.parent.iterdir()] == [TRENDS_FILE]
