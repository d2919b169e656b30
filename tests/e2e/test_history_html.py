"""``aftershock history --html`` is a real web page: headless Chromium loads it without
console errors or network requests and draws every plot (checked on a screenshot).

The ledger is written by the test through the real ``Ledger`` API: 12 weeks of
runs of several experiments, every verdict, budget spent on two SLOs, recoveries
after faults of every family, healer actions. The CLI runs in a subprocess, as a
user runs it. A one-week and a 52-week ledger must render as well.

Chromium is Debian's ``chromium`` package. Without it the tests skip with the
reason, unless ``AFTERSHOCK_REQUIRE_BROWSER=1`` (CI), where they fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aftershock.journal.ledger import LEDGER_FILE, Ledger, LedgerAction
from aftershock.model.results import (
    BudgetResult,
    FaultRecord,
    HealingResult,
    RunResult,
    RunStatus,
)
from tests.e2e.test_report_browser import Visit, chromium, near
from tests.support.png import Image, read_png

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 1280, 5600
PLOT_FILL = (0xF5, 0xF9, 0xFF)  # reporting.trends_charts.PLOT_FILL: the plot area
VERDICTS = {  # reporting.html.COLOURS
    "passed": (0x1A, 0x7F, 0x37),
    "failed": (0xCF, 0x22, 0x2E),
    "aborted": (0xBC, 0x4C, 0x00),
    "errored": (0x82, 0x50, 0xDF),
    "interrupted": (0x57, 0x60, 0x6A),
}
EXPERIMENT_BARS = [(0x09, 0x69, 0xDA), (0xBF, 0x39, 0x89), (0x1B, 0x7C, 0x83)]  # PALETTE[:3]
ROLLING = (0x1F, 0x23, 0x28)  # the rolling-window spend line
FAMILIES = {  # trends_sections: toxiproxy, docker, k8s, process
    "toxiproxy": (0x09, 0x69, 0xDA),
    "docker": (0x1B, 0x7C, 0x83),
    "k8s": (0x82, 0x50, 0xDF),
    "process": (0xBF, 0x39, 0x89),
}
OUTCOMES = {"ok": (0x1A, 0x7F, 0x37), "failed": (0xCF, 0x22, 0x2E), "timeout": (0xBC, 0x4C, 0x00)}
MEDIAN = (0x1A, 0x7F, 0x37)  # an experiment's median recovery line

EXPERIMENTS = {  # name -> (SLO it spends, faults it injects)
    "checkout-db-latency": ("checkout-availability", ("toxiproxy.latency",)),
    "api-crash": ("checkout-availability", ("docker.kill", "process.kill")),
    "search-pod-loss": ("search-latency", ("k8s.deletePod",)),
}
SLOS = ("checkout-availability", "search-latency")


# ---------------------------------------------------------------- the ledger
def write_ledger(home: Path, weeks: int, now: datetime) -> int:
    """Runs in each of the last ``weeks`` ISO weeks up to ``now``; returns how many."""
    ledger = Ledger(home / LEDGER_FILE)
    monday = (now - timedelta(days=now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    into_week = now - monday  # runs at the same share of each week: never past now
    statuses = list(RunStatus)
    outcomes = list(OUTCOMES)
    count = 0
    for week in range(weeks):
        week_start = monday - timedelta(weeks=weeks - 1 - week)
        for e, (experiment, (slo, faults)) in enumerate(EXPERIMENTS.items()):
            for k in range(3):
                start = week_start + into_week * ((1 + 3 * e + k) / 12)
                count += 1
                healed = experiment == "api-crash" and k < 2
                result = RunResult(
                    run_id=f"{experiment}-{week}-{k}",
                    experiment=experiment,
                    status=statuses[(week + e + k) % len(statuses)],
                    started_at=start,
                    finished_at=start + timedelta(minutes=2),
                    faults=[
                        FaultRecord(
                            step=f"step-{i}",
                            fault=fault,
                            target="t",
                            injected_at=start + timedelta(seconds=5),
                            reverted_at=start + timedelta(seconds=65),
                        )
                        for i, fault in enumerate(faults)
                    ],
                    recovery_seconds=4.0 + 3 * e + (week % 5) + k,
                    recover_within=30.0,
                    budgets=[
                        BudgetResult(
                            slo=slo,
                            objective=0.999,
                            window_seconds=28 * 86400,
                            spent=0.004 * (1 + (week + k + e) % 5),
                            burn_rate=5.0,
                            baseline_bad_ratio=0.0,
                        )
                    ],
                    healing=HealingResult(expected_playbook="restart-api", fired=healed),
                )
                actions = [
                    LedgerAction(
                        playbook="restart-api",
                        action="docker.restart",
                        target="api",
                        outcome=outcomes[(week + k + j) % len(outcomes)],
                        at_seconds=20.0 + j,
                    )
                    for j in range(2 if healed else 0)
                ]
                ledger.record_run(result, healer_actions=actions)
    return count


def history_html(home: Path, out: Path, weeks: int) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "aftershock", "history", "--weeks", str(weeks), "--html", str(out)],
        env={**os.environ, "AFTERSHOCK_HOME": str(home), "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"trends: {out / 'trends.html'}" in done.stdout
    assert "aftershock history" in done.stdout  # the text table stays
    return done.stdout


@dataclass(frozen=True)
class Rendered:
    page: Path
    html: str
    visit: Visit
    requests: list[str]
    image: Image | None
    """The screenshot, decoded (None when not asked for)."""


def page_requests(netlog: Path) -> list[str]:
    """URLs the page asked for, from Chromium's net log (the browser's own calls left out)."""
    data = json.loads(netlog.read_text())
    kinds = {v: k for k, v in data["constants"]["logEventTypes"].items()}
    found = []
    for event in data["events"]:
        params = event.get("params") or {}
        if kinds.get(event["type"]) != "URL_REQUEST_START_JOB" or "url" not in params:
            continue
        # The browser's update and time checks have no origin; a page's have its own.
        from_page = params.get("initiator") != "not an origin" or "file://" in str(
            params.get("network_isolation_key", "")
        )
        if from_page:
            found.append(params["url"])
    return found


def render(browser: str, page: Path, workdir: Path, *, decode: bool = True) -> Rendered:
    """Load ``page`` in headless Chromium with a net log; screenshot it."""
    workdir.mkdir(parents=True, exist_ok=True)
    shot, netlog = workdir / "screenshot.png", workdir / "netlog.json"
    url = page.resolve().as_uri()
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={workdir / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            f"--log-net-log={netlog}",
            f"--screenshot={shot}",
            f"--window-size={WIDTH},{HEIGHT}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=workdir,
    )
    log = done.stdout + done.stderr
    assert shot.exists(), f"chromium exited {done.returncode} without a screenshot:\n{log[-3000:]}"
    assert netlog.exists(), f"chromium wrote no net log:\n{log[-3000:]}"
    visit = Visit(url, log, shot)
    html = page.read_text(encoding="utf-8")
    image = read_png(shot) if decode else None
    return Rendered(page, html, visit, page_requests(netlog), image)


# ---------------------------------------------------------------- the screenshot
@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int
    bottom: int


def plot_boxes(image: Image) -> list[Box]:
    """The plot areas, top to bottom: rows with a long run of the plot fill, grouped."""
    rows: list[tuple[int, int, int]] = []  # y, first x, last x
    for y, row in enumerate(image.rows):
        xs = [x for x, colour in enumerate(row) if colour == PLOT_FILL]
        if len(xs) >= 100:
            rows.append((y, xs[0], xs[-1]))
    boxes: list[list[tuple[int, int, int]]] = []
    for row in rows:
        # Grid lines and the lines of a plot cross it: a gap of a few rows stays one box.
        if boxes and row[0] - boxes[-1][-1][0] <= 6:
            boxes[-1].append(row)
        else:
            boxes.append([row])
    return [
        Box(min(r[1] for r in b), b[0][0], max(r[2] for r in b) + 1, b[-1][0] + 1)
        for b in boxes
        if b[-1][0] - b[0][0] >= 60
    ]


def colour_count(image: Image, box: Box, target: tuple[int, int, int], tolerance: int = 6) -> int:
    found = image.colours((box.left, box.top, box.right, box.bottom))
    return sum(n for colour, n in found.items() if near(colour, target, tolerance))


def expected_plots() -> list[tuple[str, list[tuple[int, int, int]], int]]:
    """(what, colours of which ``n`` must show, n) for each plot in page order."""
    plots = [("runs by verdict", list(VERDICTS.values()), 4)]
    plots += [(f"budget {slo}", [*EXPERIMENT_BARS, ROLLING], 2) for slo in SLOS]
    plots += [("MTTR per family", list(FAMILIES.values()), 3)]
    plots += [("healer actions", list(OUTCOMES.values()), 2)]
    for experiment in sorted(EXPERIMENTS):
        plots += [(f"{experiment} verdicts", list(VERDICTS.values()), 2)]
        plots += [(f"{experiment} recovery", [MEDIAN], 1)]
    return plots


def check_plots(rendered: Rendered, *, min_pixels: int) -> None:
    """Every plot is on the screenshot, and each shows its own colours inside its box."""
    expected, image = expected_plots(), rendered.image
    assert image is not None
    assert rendered.html.count('<svg class="plot"') == len(expected)
    boxes = plot_boxes(image)
    assert len(boxes) == len(expected), f"{len(boxes)} plot boxes on the screenshot: {boxes}"
    for box, (what, colours, need) in zip(boxes, expected, strict=True):
        assert box.right - box.left >= 0.7 * WIDTH, (what, box)
        counts = [colour_count(image, box, c) for c in colours]
        shown = [n for n in counts if n >= min_pixels]
        assert len(shown) >= need, f"{what}: only {counts} pixels of its colours in {box}"
        inside = image.colours((box.left, box.top, box.right, box.bottom))
        drawn = sum(inside.values()) - inside[PLOT_FILL] - inside[(255, 255, 255)]
        assert drawn >= 2 * need * min_pixels, f"{what}: only {drawn} pixels drawn in {box}"


def check_clean(rendered: Rendered) -> None:
    assert rendered.visit.console() == [], "\n".join(rendered.visit.console())
    assert rendered.requests == [], rendered.requests


# ---------------------------------------------------------------- the tests
def test_the_network_check_catches_a_page_that_fetches(tmp_path: Path) -> None:
    """The request detector is not vacuous: a page loading an image over HTTP is caught."""
    page = tmp_path / "fetching.html"
    page.write_text("<!DOCTYPE html><p>x</p><img src='http://127.0.0.1:9/missing.png'>")
    seen = render(chromium(), page, tmp_path / "fetching", decode=False)
    assert seen.requests == ["http://127.0.0.1:9/missing.png"]


@pytest.fixture(scope="module")
def twelve_weeks(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    browser = chromium()  # skip before writing a ledger on a machine without a browser
    where = tmp_path_factory.mktemp("twelve-weeks")
    count = write_ledger(where / "home", 12, datetime.now(UTC))
    assert count == 12 * 3 * 3
    history_html(where / "home", where / "out", 12)
    return render(browser, where / "out" / "trends.html", where / "chromium")


def test_twelve_weeks_load_without_console_errors_or_requests(twelve_weeks: Rendered) -> None:
    check_clean(twelve_weeks)


def test_twelve_weeks_of_plots_are_drawn(twelve_weeks: Rendered) -> None:
    html = twelve_weeks.html
    assert "default-src 'none'" in html
    # Twelve weekly bars: the verdict plot labels each of its twelve weeks.
    first_plot = html[html.index('<svg class="plot"') : html.index("</svg>")]
    assert len(re.findall(r'class="x"', first_plot)) == 12
    for name in (*EXPERIMENTS, *SLOS, *FAMILIES):
        assert name in html
    check_plots(twelve_weeks, min_pixels=150)


@pytest.mark.parametrize("weeks", [1, 52])
def test_one_week_and_a_year_render(tmp_path: Path, weeks: int) -> None:
    browser = chromium()
    write_ledger(tmp_path / "home", weeks, datetime.now(UTC))
    history_html(tmp_path / "home", tmp_path / "out", weeks)
    rendered = render(browser, tmp_path / "out" / "trends.html", tmp_path / "chromium")
    check_clean(rendered)
    first_plot = rendered.html[: rendered.html.index("</svg>")]
    assert first_plot.count('class="bar"') >= weeks  # a bar for every week
    check_plots(rendered, min_pixels=30)


def test_an_html_directory_that_cannot_be_written_is_one_line_and_exit_2(tmp_path: Path) -> None:
    home = tmp_path / "home"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "aftershock", "history", "--html", str(blocker)],
        env={**os.environ, "AFTERSHOCK_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == f"error: --html {blocker}: exists and is not a directory"
    assert done.stdout == ""
    assert not home.exists()  # checked before the state directory is touched


def test_an_empty_ledger_writes_a_page_that_says_so(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aftershock", "history", "--html", str(tmp_path / "out")],
        env={**os.environ, "AFTERSHOCK_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    page = (tmp_path / "out" / "trends.html").read_text(encoding="utf-8")
    assert "No runs recorded in the last 52 week(s)" in page
