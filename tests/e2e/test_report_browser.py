"""The HTML report is a real web page: headless Chromium loads it without console
errors and draws the timeline plot (checked on a screenshot, decoded here).

The report comes from a real run of the CLI (the demo service behind the
embedded proxy, a latency fault, then a kill) so the plot holds real samples,
a fault window, failed samples and a recovery mark.

Chromium is Debian's ``chromium`` package (scripts/test.sh installs it). Without
it the tests skip with the reason, unless ``AFTERSHOCK_REQUIRE_BROWSER=1`` (CI),
where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.docker import free_port
from tests.support.png import read_png

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 1280, 1800
LATENCY_BLUE = (0x09, 0x69, 0xDA)  # reporting.html: "latency of successful samples"
FAULT_FILL = (0xD4, 0xA7, 0x2C)  # the first fault window's colour
PHASE_FILL = (0xF2, 0xF5, 0xF9)  # the method phase, under the fault window
# reporting.charts shades a fault window with its colour at fill-opacity .14 over the phase
FAULT_SHADE = (238, 234, 220)  # = round(FAULT_FILL * .14 + PHASE_FILL * .86)
RATIO_GREEN = (0xB7, 0xE4, 0xC7)  # the rolling success ratio
FAILED_RED = (0xCF, 0x22, 0x2E)  # failed samples

EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: browser-report}}
spec:
  description: A report for the browser to render.
  targets:
    svc: {{process: {{command: [{python}, -m, aftershock.demo.service, --port, "{svc}"], ready: "127.0.0.1:{svc}"}}}}
    front: {{toxiproxy: {{api: embedded, proxy: front, listen: "127.0.0.1:{front}", upstream: "127.0.0.1:{svc}"}}}}
  probes:
    web: {{http: {{url: "http://127.0.0.1:{front}/health", timeout: 500ms}}, every: 100ms}}
  slo:
    avail: {{probe: web, objective: 99%, latency: 150ms, window: 7d}}
  steadyState:
    - {{probe: web, over: 1s, expect: {{successRatio: ">= 0.9"}}}}
  method:
    - {{name: slow, fault: toxiproxy.latency, target: front, with: {{latency: 250ms}}, for: 2s}}
    - {{name: kill, fault: process.kill, target: svc, at: 2500ms, for: 1s}}
  expect: {{recoverWithin: 10s}}
"""


# ---------------------------------------------------------------- the browser
def chromium() -> str:
    """Debian's chromium, or skip (fail with AFTERSHOCK_REQUIRE_BROWSER=1)."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        message = (
            "headless Chromium not available: install Debian's `chromium` package "
            "(scripts/test.sh does, as root)"
        )
        if os.environ.get("AFTERSHOCK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{message} (AFTERSHOCK_REQUIRE_BROWSER=1)", pytrace=False)
        pytest.skip(message)
    return found


@dataclass(frozen=True)
class Visit:
    """What Chromium said while loading a page, and the screenshot it took."""

    url: str
    log: str
    screenshot: Path

    def console(self) -> list[str]:
        """Console messages about the page, and page errors, from Chromium's log."""
        found = []
        for line in self.log.splitlines():
            # [pid:tid:date:INFO:CONSOLE:12] "message", source: file:///...(12)
            # (older builds: INFO:CONSOLE(12)); console.error is logged the same way.
            is_console = re.search(r":CONSOLE[:(]", line) is not None
            about_page = self.url in line
            console_error = is_console and (about_page or "Uncaught" in line)
            page_error = about_page and re.search(r":(ERROR|FATAL):", line) is not None
            if console_error or page_error or "ERROR:CONSOLE" in line:
                found.append(line)
        return found


def visit(browser: str, page: Path, workdir: Path) -> Visit:
    """Load ``page`` in headless Chromium, take a screenshot, keep its log."""
    workdir.mkdir(parents=True, exist_ok=True)
    shot = workdir / "screenshot.png"
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
    return Visit(url, log, shot)


# ---------------------------------------------------------------- the report
@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """report.html of a real run (latency, then a kill, then recovery)."""
    chromium()  # skip before spending a run on a machine without a browser
    where = tmp_path_factory.mktemp("report-run")
    exp = where / "exp.yaml"
    exp.write_text(
        EXPERIMENT.format(python=json.dumps(sys.executable), svc=free_port(), front=free_port())
    )
    env = {**os.environ, "AFTERSHOCK_HOME": str(where / "home"), "COLUMNS": "250"}
    done = subprocess.run(
        [sys.executable, "-m", "aftershock", "run", str(exp), "--report", str(where / "report")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    page = where / "report" / "report.html"
    assert page.exists(), done.stdout + done.stderr
    return page


def near(colour: tuple[int, int, int], target: tuple[int, int, int], tolerance: int) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, target, strict=True))


# ---------------------------------------------------------------- the tests
def test_the_console_check_catches_a_broken_page(tmp_path: Path) -> None:
    """The detector is not vacuous: a page with a blocked fetch and a script error is caught."""
    browser = chromium()
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'\"></head><body><p>broken</p>"
        "<img src='http://127.0.0.1:9/missing.png'></body></html>"
    )
    scripted = tmp_path / "scripted.html"
    scripted.write_text("<!DOCTYPE html><p>x</p><script>window.noSuchFunction()</script>")
    assert visit(browser, page, tmp_path / "broken").console()
    errors = visit(browser, scripted, tmp_path / "scripted").console()
    assert any("Uncaught" in line for line in errors), errors


def test_the_report_loads_in_chromium_without_console_errors(report: Path, tmp_path: Path) -> None:
    seen = visit(chromium(), report, tmp_path / "chromium")
    assert seen.console() == [], "\n".join(seen.console())


def test_the_report_plot_is_drawn(report: Path, tmp_path: Path) -> None:
    html = report.read_text()
    assert "<svg" in html
    image = read_png(visit(chromium(), report, tmp_path / "chromium").screenshot)
    assert (image.width, image.height) == (WIDTH, HEIGHT)
    palette = image.colours()
    assert len(palette) > 50, "the screenshot is nearly blank"

    def like(target: tuple[int, int, int], tolerance: int) -> set[tuple[int, int, int]]:
        return {c for c in palette if near(c, target, tolerance)}

    # Find the plot from the layout: the fault window is shaded over the whole
    # height of the latency panel, so the rows with a wide run of that shade are
    # the plot's rows (the legend's swatch is only 14 px wide).
    shade = like(FAULT_SHADE, 8)
    rows = [y for y, row in enumerate(image.rows) if sum(c in shade for c in row) >= 40]
    assert rows, "no fault window shading in the screenshot"
    top, bottom = min(rows), max(rows)
    assert bottom - top >= 100, f"plot only {bottom - top} px tall"

    # The latency line inside it: many pixels of its colour, spread across the
    # plot's width and over a vertical range (the 250 ms fault lifts it).
    blue = like(LATENCY_BLUE, 40)
    line = [
        (x, y)
        for y in range(top, bottom + 1)
        for x, colour in enumerate(image.rows[y])
        if colour in blue
    ]
    assert len(line) >= 400, f"only {len(line)} pixels of the latency line's colour"
    xs, ys = [x for x, _ in line], [y for _, y in line]
    left, right = min(xs), max(xs)
    assert right - left >= WIDTH * 0.5, (left, right)
    assert max(ys) - min(ys) >= 60, (min(ys), max(ys))
    columns = {x // 20 for x in xs}  # drawn all along, in most 20 px columns
    assert len(columns) >= 0.6 * (right - left) / 20, sorted(columns)

    # The plot area with the success-ratio strip below it is not blank: many
    # pixels off the background, several distinct colours, the failed samples
    # of the kill drawn inside the plot (right of the axis labels).
    band = (left, top, right + 1, min(bottom + 100, HEIGHT))
    colours = image.colours(band)
    total = sum(colours.values())
    background = colours.most_common(1)[0][1]
    assert total - background >= 0.2 * total, "the plot area is mostly one colour"
    common = [c for c, n in colours.items() if n >= 50]
    assert len(common) >= 6, f"only {len(common)} colours with >= 50 pixels in the plot"
    ratio = sum(n for c, n in colours.items() if near(c, RATIO_GREEN, 12))
    failed = sum(n for c, n in colours.items() if near(c, FAILED_RED, 40))
    assert ratio >= 2000, f"success ratio: {ratio} pixels"
    assert failed >= 20, f"failed samples: {failed} pixels"
