"""Run reports: a journal replayed into a view and rendered as HTML, Markdown and JUnit."""

from __future__ import annotations

import json
import math
import re
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aftershock.model.results import (
    BudgetResult,
    CheckResult,
    FaultRecord,
    HealingResult,
    ProbeSummary,
    RunResult,
    RunStatus,
)
from aftershock.model.targets import TargetKind
from aftershock.ports import Handle
from aftershock.reporting import (
    CRASHED_REASON,
    RunView,
    load_run,
    render_html,
    render_junit,
    render_markdown,
    write_report,
)
from aftershock.reporting.charts import MAX_POINTS
from aftershock.reporting.html import COLOURS

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
RUN = "run-20260302-0300-ab12"
EVIL = "<script>alert('x')</script>"


def at(t: float) -> datetime:
    return T0 + timedelta(seconds=t)


class Journal:
    """Writes a run file the way FaultJournal lays it out (one JSON object per line)."""

    def __init__(self, path: Path, run_id: str = RUN) -> None:
        self.path, self.run_id, self.seq = path, run_id, 0
        self.lines: list[str] = []

    def add(self, when: float, event: str, /, **fields: Any) -> None:
        self.seq += 1
        record = {
            "ts": at(when).isoformat(),
            "seq": self.seq,
            "event": event,
            "run_id": self.run_id,
        }
        self.lines.append(json.dumps({**record, **fields}))

    def fault(
        self, when: float, event: str, step: str, fault: str, target: str, **extra: Any
    ) -> None:
        handle = Handle(
            run_id=self.run_id,
            step=step,
            kind=TargetKind(fault.split(".", maxsplit=1)[0].replace("k8s", "kubernetes")),
            fault=fault,
            target=target,
            resources=(f"{target}:{step}",),
            undo={"env": {"TOKEN": "***"}, "api": "http://127.0.0.1:8474"},
        )
        self.add(when, event, key=f"{step}/{target}:{step}", handle=handle.to_json(), **extra)

    def save(self, torn: str = "") -> Path:
        self.path.write_text("\n".join(self.lines) + "\n" + torn, encoding="utf-8")
        return self.path


def latency(probe: str, t: float) -> float:
    base = 0.040 if probe == "checkout" else 0.015
    slow = 0.300 if probe == "checkout" and 10 <= t < 70 else 0.0
    return base + slow + 0.008 * math.sin(t * 1.7) ** 2


def failed(probe: str, t: float) -> bool:
    if probe == "checkout":
        return 30 <= t < 41 or t in (55.5, 56.0)
    return t in (33.0, 33.5)


def write_run(
    tmp: Path,
    *,
    step: str = "crash-api",
    finished: bool = True,
    every: float = 0.5,
    end: float = 102.0,
    status: RunStatus = RunStatus.FAILED,
    abort_at: float | None = None,
    flaky: int = 0,
) -> Path:
    """A run of checkout-db-latency: slow-db 10-70 s overlaps crash-api 30-45 s.

    Unfinished (crashed) runs never revert crash-api and end with a torn line.
    """
    j = Journal(tmp / f"{RUN}.jsonl")
    slo = {
        "checkout-availability": {
            "probe": "checkout",
            "objective": 0.999,
            "latency_seconds": 0.25,
            "window_seconds": 28 * 86400,
        }
    }
    j.add(
        0,
        "run.started",
        experiment="checkout-db-latency",
        description="Checkout keeps its SLO while the database is 300 ms slower.",
        seed=7,
        dry_run=False,
        forced=True,
        started_at=T0.isoformat(),
        probes=["checkout", "inventory"],
        slo=slo,
    )
    phases = {0.0: "steady-before", 10.0: "method", 70.0: "recovery", 90.0: "steady-after"}
    phases |= {100.0: "rollback", 102.0: "done"}
    faults = {
        10.0: ("fault.intent", "slow-db", "toxiproxy.latency", "db"),
        10.5: ("fault.applied", "slow-db", "toxiproxy.latency", "db"),
        30.0: ("fault.intent", step, "docker.kill", "api"),
        30.5: ("fault.applied", step, "docker.kill", "api"),
        45.0: ("fault.reverted", step, "docker.kill", "api"),
        70.0: ("fault.reverted", "slow-db", "toxiproxy.latency", "db"),
    }
    t = 0.0
    while t <= end:
        if t in phases:
            j.add(t, "phase", phase=phases[t], t=t)
        event, name, fault, target = faults.get(t, ("", "", "", ""))
        if event and (finished or event != "fault.reverted" or name != step):
            extra = {"deadline": at(t + 120).isoformat()} if event == "fault.intent" else {}
            j.fault(t, event, name, fault, target, **extra)
            # The runner notes a window when it opens and again when it closes.
            window = {"step": name, "fault": fault, "target": target}
            if event == "fault.applied":
                j.add(t, "window", **window, start_t=t, end_t=None)
            if event == "fault.reverted":
                j.add(t, "window", **window, start_t=10.5 if name == "slow-db" else 30.5, end_t=t)
        if t == 33.0:
            j.add(t, "healing", playbook="restart-api", action="docker.restart", t=t, outcome="ok")
        if t == 41.0:
            j.add(t, "healing", playbook="restart-api", action="wait.healthy", t=t, outcome="ok")
        if t == 76.0:
            j.add(t, "recovered", t=t, seconds=6.0)
        if t == abort_at:
            j.add(t, "abort", reason="budget checkout-availability spent 5.20% > 5%", t=t)
        for probe in ("checkout", "inventory"):
            bad = failed(probe, t) or (flaky > 0 and j.seq % flaky == 0)
            detail = "connection refused" if bad else "200 OK"
            j.add(
                t,
                "sample",
                probe=probe,
                t=t,
                ok=not bad,
                latency=0.001 if bad else latency(probe, t),
                status=None if bad else 200,
                detail=detail,
            )
        t = round(t + every, 6)
    if finished:
        j.add(end + 0.5, "run.finished", result=verdict(status, step).model_dump(mode="json"))
    return j.save(torn='{"ts": "2026-03-02T03:02:00+00:00", "seq": 99' if not finished else "")


def verdict(status: RunStatus, step: str = "crash-api") -> RunResult:
    return RunResult(
        run_id=RUN,
        experiment="checkout-db-latency",
        status=status,
        reason="budget checkout-availability: spent 2.31% > maxSpend 2.00%",
        started_at=T0,
        finished_at=at(102.5),
        method_started_at=at(10),
        method_ended_at=at(70),
        forced=True,
        seed=7,
        checks=[
            CheckResult(phase="steady-before", probe="checkout", ok=True, samples=20,
                        success_ratio=1.0, p50=0.041, p95=0.047, p99=0.048),
            CheckResult(phase="steady-after", probe="checkout", ok=False, samples=20,
                        success_ratio=0.95, p50=0.042, p95=0.31, p99=0.33,
                        failures=["p95 310 ms not < 200ms"]),
        ],
        faults=[
            FaultRecord(step="slow-db", fault="toxiproxy.latency", target="db",
                        resources=["db:slow-db"], injected_at=at(10.5), reverted_at=at(70),
                        verified_at=at(70.2)),
            FaultRecord(step=step, fault="docker.kill", target="api", resources=["api:" + step],
                        injected_at=at(30.5), reverted_at=at(45), verified_at=at(45.4)),
        ],
        probes=[ProbeSummary(probe="checkout", count=205, success_ratio=0.88, p50=0.2, p95=0.35,
                             p99=0.36)],
        budgets=[BudgetResult(slo="checkout-availability", objective=0.999,
                              window_seconds=28 * 86400, spent=0.0231, burn_rate=41.3,
                              baseline_bad_ratio=0.0, remaining_before=0.87, max_spend=0.02)],
        recovery_seconds=6.0,
        recover_within=30.0,
        healing=HealingResult(expected_playbook="restart-api", fired=True, playbook="restart-api",
                              first_action_after=3.0, healthy_after=11.0),
    )  # fmt: skip


def external_refs(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)


@pytest.fixture
def finished(tmp_path: Path) -> RunView:
    return load_run(write_run(tmp_path))


@pytest.fixture
def crashed(tmp_path: Path) -> RunView:
    return load_run(write_run(tmp_path, finished=False, end=80.0))


def test_view_replays_a_finished_run(finished: RunView) -> None:
    assert finished.finished
    assert finished.result.status is RunStatus.FAILED
    assert set(finished.samples) == {"checkout", "inventory"}
    assert len(finished.samples["checkout"]) == 205
    assert [p.name for p in finished.phases][:3] == ["steady-before", "method", "recovery"]
    assert [(w.step, w.start_t, w.end_t) for w in finished.windows] == [
        ("slow-db", 10.5, 70.0),
        ("crash-api", 30.5, 45.0),
    ]
    assert finished.recovery is not None
    assert finished.recovery.seconds == 6.0
    assert [h.action for h in finished.healing] == ["docker.restart", "wait.healthy"]
    assert not any(row.still_applied for row in finished.faults)
    assert finished.problems == ()
    assert finished.duration == 102.5


def test_html_shows_verdict_figures_timeline_and_faults(finished: RunView) -> None:
    page = render_html(finished)
    assert page.startswith("<!DOCTYPE html>")
    assert "FAILED" in page
    assert "#cf222e" in page  # coloured by status
    assert "budget checkout-availability: spent 2.31% &gt; maxSpend 2.00%" in page
    for text in ("checkout-db-latency", RUN, "2026-03-02 03:00:00 UTC", "seed", "2.31%"):
        assert text in page
    assert "41.3×" in page  # noqa: RUF001
    assert "6.0 s" in page  # recovery
    assert "30.0 s" in page  # recoverWithin
    assert "restart-api" in page
    assert "p95 310 ms not &lt; 200ms" in page
    assert page.count("<svg") == 2
    assert page.count('class="fault"') == 4  # two windows shaded on each probe's plot
    for label in ("slow-db", "crash-api", "steady-before", "recovered after 6.0 s", "SLO 250 ms"):
        assert label in page
    assert "db:slow-db" in page
    assert "03:00:10.500 (+10.5 s)" in page  # injected at
    assert "***" not in page
    assert "TOKEN" not in page


def test_html_is_self_contained(finished: RunView) -> None:
    page = render_html(finished)
    assert external_refs(page) == []
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert "@import" not in page
    assert "url(" not in page
    assert "default-src 'none'" in page


def test_every_dynamic_string_is_escaped(tmp_path: Path) -> None:
    view = load_run(write_run(tmp_path, step=EVIL, abort_at=20.0))
    page = render_html(view)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<script" not in render_markdown(view)
    ET.fromstring(render_junit(view))  # still well-formed

    j = Journal(tmp_path / "evil.jsonl", run_id="evil")
    slo = {EVIL: {"probe": EVIL, "objective": 0.99, "latency_seconds": 0.1}}
    j.add(0, "run.started", experiment=EVIL, description=EVIL, started_at=EVIL, probes=[EVIL])
    j.add(0, "run.started", experiment=EVIL, description=EVIL, probes=[EVIL], slo=slo)
    j.add(1, "phase", phase=EVIL, t=1)
    j.add(2, "sample", probe=EVIL, t=2, ok=False, latency=0.1, status=500, detail=EVIL + "\x07")
    j.add(3, "sample", probe=EVIL, t=3, ok=True, latency=0.1, status=200, detail=EVIL)
    j.add(4, "healing", playbook=EVIL, action=EVIL, t=4, outcome=EVIL)
    j.add(5, "abort", reason=EVIL + "\x00", t=5)
    j.fault(6, "fault.intent", EVIL, "process.kill", EVIL)
    j.fault(7, "fault.revert_failed", EVIL, "process.kill", EVIL, error=EVIL)
    view = load_run(j.save())
    assert view.result.experiment == EVIL
    page = render_html(view)
    assert "<script" not in page
    assert page.count("&lt;script&gt;") >= 10
    assert "<script" not in render_markdown(view)
    suite = ET.fromstring(render_junit(view)).find("testsuite")
    assert suite is not None
    assert suite.get("name") == EVIL


def test_markdown_has_verdict_budget_recovery_checks_faults(finished: RunView) -> None:
    text = render_markdown(finished)
    assert text.startswith("### ❌ FAILED: checkout-db-latency")
    assert "| checkout-availability | 2.31% | 2.00% | 41.3× | 87.00% |" in text  # noqa: RUF001
    assert "**Recovery:** 6.0 s (expected within 30.0 s: met)" in text
    assert "`restart-api` fired" in text
    assert "**forced**" in text
    assert (
        "| steady-after | checkout | ❌ | 20 | 95.0% | 310 ms | p95 310 ms not &lt; 200ms |" in text
    )
    assert "| crash-api | docker.kill | api |" in text


def test_junit_has_a_case_per_check_expectation_and_fault(finished: RunView) -> None:
    root = ET.fromstring(render_junit(finished))
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "checkout-db-latency"
    names = [c.get("name") for c in suite.iter("testcase")]
    assert names == [
        "verdict",
        "steady-before: checkout",
        "steady-after: checkout",
        "recoverWithin",
        "healedBy restart-api",
        "maxSpend checkout-availability",
        "slow-db (toxiproxy.latency on db)",
        "crash-api (docker.kill on api)",
    ]
    failed = {c.get("name"): c.find("failure") for c in suite.iter("testcase")}
    assert failed["verdict"] is not None
    assert failed["steady-after: checkout"] is not None
    assert failed["maxSpend checkout-availability"] is not None
    assert "2.31%" in (failed["maxSpend checkout-availability"].get("message") or "")
    assert failed["recoverWithin"] is None
    assert failed["steady-before: checkout"] is None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("8", "3", "0")
    assert suite.get("skipped") == "0"


def test_junit_reports_errors_for_an_errored_run(tmp_path: Path) -> None:
    view = load_run(write_run(tmp_path, status=RunStatus.ERRORED))
    suite = ET.fromstring(render_junit(view)).find("testsuite")
    assert suite is not None
    assert suite.get("errors") == "1"
    verdict_case = next(c for c in suite.iter("testcase") if c.get("name") == "verdict")
    assert verdict_case.find("error") is not None


def test_a_passed_run_has_no_failures(tmp_path: Path) -> None:
    view = load_run(write_run(tmp_path, status=RunStatus.PASSED))
    suite = ET.fromstring(render_junit(view)).find("testsuite")
    assert suite is not None
    verdict_case = next(c for c in suite.iter("testcase") if c.get("name") == "verdict")
    assert verdict_case.find("failure") is None
    assert verdict_case.find("error") is None
    assert "#1a7f37" in render_html(view)


def test_crashed_run_is_interrupted_and_shows_what_is_still_applied(crashed: RunView) -> None:
    assert not crashed.finished
    assert crashed.result.status is RunStatus.INTERRUPTED
    assert crashed.result.reason == CRASHED_REASON
    assert crashed.result.seed == 7
    assert crashed.result.forced
    assert [p.probe for p in crashed.result.probes] == ["checkout", "inventory"]
    assert crashed.result.probes[0].count == 161
    assert {row.record.step: row.still_applied for row in crashed.faults} == {
        "slow-db": False,
        "crash-api": True,
    }
    # slow-db's window was closed by a second record; crash-api's never was.
    assert [(w.step, w.end_t) for w in crashed.windows] == [("slow-db", 70.0), ("crash-api", None)]
    assert len(crashed.problems) == 1
    assert "torn last line" in crashed.problems[0]
    assert crashed.duration == 80.0

    page = render_html(crashed)
    assert "INTERRUPTED" in page
    assert "#57606a" in page
    assert "journal ends without a verdict (crash?)" in page
    assert page.count("still applied — run `aftershock recover`") == 1
    assert "crash-api: docker.kill on api, from 30.5 s to the end (still applied)" in page
    assert page.count("<svg") == 2
    assert page.count('class="fault"') == 4
    assert "torn last line" in page
    assert external_refs(page) == []

    text = render_markdown(crashed)
    assert "INTERRUPTED" in text
    assert "| crash-api | docker.kill | api | still applied — run `aftershock recover` |" in text
    suite = ET.fromstring(render_junit(crashed)).find("testsuite")
    assert suite is not None
    assert (suite.get("failures"), suite.get("errors")) == ("0", "2")  # verdict, crash-api
    errors = [c.get("name") for c in suite.iter("testcase") if c.find("error") is not None]
    assert errors == ["verdict", "crash-api (docker.kill on api)"]


def test_aborted_run_marks_the_abort_on_every_timeline(tmp_path: Path) -> None:
    view = load_run(write_run(tmp_path, status=RunStatus.ABORTED, abort_at=50.0))
    assert view.abort is not None
    assert view.abort.t == 50.0
    page = render_html(view)
    assert (
        page.count("abort: budget checkout-availability spent 5.20% &gt; 5%") == 4
    )  # 2 x label+tip
    assert "ABORTED" in page
    assert COLOURS[RunStatus.ABORTED] in page
    assert "🛑 ABORTED" in render_markdown(view)


def test_crashed_run_with_one_fault_reverted(tmp_path: Path) -> None:
    j = Journal(tmp_path / "half.jsonl", run_id="half")
    j.add(0, "run.started", experiment="half", started_at=T0.isoformat(), probes=["p"], slo={})
    j.fault(1, "fault.intent", "a", "process.stop", "web")
    j.fault(2, "fault.applied", "a", "process.stop", "web")
    j.fault(3, "fault.reverted", "a", "process.stop", "web")
    j.fault(4, "fault.intent", "b", "process.kill", "web")
    j.fault(5, "fault.revert_failed", "b", "process.kill", "web", error="no such process")
    view = load_run(j.save())
    rows = {r.record.step: r for r in view.faults}
    assert not rows["a"].still_applied
    assert rows["a"].record.reverted_at == at(3)
    assert rows["b"].still_applied
    assert rows["b"].record.error == "no such process"
    # Without fault.window records the windows come from the fault records.
    assert [(w.step, w.start_t, w.end_t) for w in view.windows] == [("a", 2, 3), ("b", 4, None)]
    page = render_html(view)
    assert "no such process" in page
    assert ">no samples<" in page
    assert page.count("still applied — run `aftershock recover`") == 1


def test_garbage_is_a_problem_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "not json\n"
        + json.dumps({"ts": T0.isoformat(), "seq": 1, "event": "sample", "run_id": "bad", "t": "x"})
        + "\n",
        encoding="utf-8",
    )
    view = load_run(path)
    assert view.result.status is RunStatus.INTERRUPTED
    assert any("garbage" in p for p in view.problems)
    assert any("sample record(s) skipped" in p for p in view.problems)
    assert "INTERRUPTED" in render_html(view)


def test_an_unreadable_verdict_is_a_problem(tmp_path: Path) -> None:
    j = Journal(tmp_path / "odd.jsonl", run_id="odd")
    j.add(0, "run.started", experiment="odd", started_at=T0.isoformat(), probes=[], seed=3)
    j.add(9, "run.finished", result={"run_id": "odd", "status": "exploded"})
    view = load_run(j.save())
    assert not view.finished
    assert view.result.status is RunStatus.INTERRUPTED
    assert view.result.reason == "journal's verdict is unreadable"
    assert view.result.seed == 3
    assert view.duration == 9.0
    assert any("run.finished result unreadable" in p for p in view.problems)
    assert "no probes" in render_html(view)


def test_ten_thousand_samples_are_downsampled_keeping_every_failure(tmp_path: Path) -> None:
    path = write_run(tmp_path, every=0.05, end=500.0, flaky=499)
    started = time.perf_counter()
    view = load_run(path)
    page = render_html(view)
    elapsed = time.perf_counter() - started
    assert len(view.samples["checkout"]) == 10_001
    failures = [s for probe in view.samples.values() for s in probe if not s.ok]
    assert len(failures) > 250  # the crash-api outage plus isolated failures all along
    markers = re.findall(r'<line class="fail"[^>]* x1="([\d.]+)"', page)
    assert len(markers) == len(failures)
    expected = [66 + 1070 * s.t / view.span for s in failures]  # same order: probe, time
    assert all(abs(float(x) - e) <= 0.051 for x, e in zip(markers, expected, strict=True))
    points = [int(n) for n in re.findall(r'class="latency" data-points="(\d+)"', page)]
    assert len(points) == 2
    assert all(0 < n <= MAX_POINTS for n in points)
    print(f"10k samples per probe: load + render {elapsed:.2f} s, {len(page) // 1024} KiB")


def test_write_report_writes_html_and_markdown(finished: RunView, tmp_path: Path) -> None:
    paths = write_report(finished, tmp_path / "out" / "nested")
    assert set(paths) == {"html", "markdown"}
    assert paths["html"].name == "report.html"
    assert paths["markdown"].name == "summary.md"
    assert paths["html"].read_text(encoding="utf-8") == render_html(finished)
    assert paths["markdown"].read_text(encoding="utf-8") == render_markdown(finished)
