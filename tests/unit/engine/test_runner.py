"""The runner on a manual clock with fake drivers and probes: verdicts, rollback, recovery."""

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aftershock.engine.context import RunContext
from aftershock.engine.runner import Runner
from aftershock.errors import FaultInjectionFailed
from aftershock.journal.faults import FaultJournal
from aftershock.loading import load_text
from aftershock.model import Experiment
from aftershock.model.results import RunResult, RunStatus
from aftershock.model.targets import TargetKind
from aftershock.testing import FakeDriver, FakeProbe, ManualClock, capture_events

DOC = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {name: unit}
spec:
  targets:
    db: {toxiproxy: {api: http://127.0.0.1:8474, proxy: pg}}
  probes:
    web: {http: {url: http://127.0.0.1:8080/}, every: 500ms}
  slo:
    avail: {probe: web, objective: 99.9%, window: 1d}
  steadyState:
    - {probe: web, over: 3s, expect: {successRatio: ">= 0.9"}}
  method:
    - {name: slow, fault: toxiproxy.latency, target: db, with: {latency: 300ms}, at: 1s, for: 10s}
  expect: {recoverWithin: 20s}
"""


def experiment(text: str = DOC, **replace: str) -> Experiment:
    for old, new in replace.items():
        text = text.replace(old, new)
    docs, problems = load_text(text, "unit.yaml", env={})
    assert problems == []
    doc = docs[0].document
    assert isinstance(doc, Experiment)
    return doc


class Harness:
    def __init__(
        self,
        tmp_path: Path,
        exp: Experiment,
        health: Callable[[float], bool | float],
        handler: Any = None,
        kill: Callable[[], bool] = lambda: False,
    ) -> None:
        self.clock = ManualClock()
        self.driver = FakeDriver(TargetKind.TOXIPROXY, handler)
        self.probe = FakeProbe(health, self.clock)
        self.journal = FaultJournal(tmp_path, "run-1", clock=self.clock.now)
        self.events_cm = capture_events()
        self.events = self.events_cm.__enter__()
        self.ctx = RunContext(
            experiment=exp,
            run_id="run-1",
            drivers={TargetKind.TOXIPROXY: self.driver},
            probes={"web": self.probe},
            journal=self.journal,
            clock=self.clock,
            events=self.events,
            kill_switch=kill,
        )
        self.runner = Runner(self.ctx)

    async def run(
        self,
        step: float = 0.05,
        limit: float = 300.0,
        during: Callable[[float], None] | None = None,
    ) -> RunResult:
        task = asyncio.create_task(self.runner.run())
        while not task.done():
            await self.clock.advance(step)
            if during is not None:
                during(self.clock.monotonic())
            assert self.clock.monotonic() < limit, "run did not finish"
        return task.result()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.journal.path.read_text().splitlines()]

    def at(self, kind: str) -> list[float]:
        return [e.fields.get("t", 0.0) for e in self.events.of(kind)]  # type: ignore[misc]


async def test_a_healthy_run_passes_and_journals_before_applying(tmp_path: Path) -> None:
    h = Harness(tmp_path, experiment(), lambda t: True)
    result = await h.run()
    assert result.status is RunStatus.PASSED, result.reason
    assert h.driver.ops() == ["prepare", "inject", "revert"]
    events = [r["event"] for r in h.records()]
    assert (
        events.index("fault.intent")
        < events.index("fault.applied")
        < events.index("fault.reverted")
    )
    assert events[0] == "run.started" and events[-1] == "run.finished"
    assert result.recovery_seconds is not None and result.recovery_seconds <= 0.5
    fault = result.faults[0]
    assert fault.injected_at is not None and fault.reverted_at is not None
    assert (fault.reverted_at - fault.injected_at).total_seconds() == pytest.approx(10.0, abs=0.1)
    assert [c.phase for c in result.checks] == ["before", "after"]
    assert result.budgets[0].spent == 0.0


async def test_recovery_is_measured_from_the_end_of_the_last_fault(tmp_path: Path) -> None:
    # steady before: 0-3 s; method starts at 3 s; fault 4-14 s; down 6-18 s (4 s past the revert)
    h = Harness(tmp_path, experiment(), lambda t: not 6.0 <= t < 18.0)
    result = await h.run()
    assert result.status is RunStatus.PASSED, result.reason
    assert result.recovery_seconds == pytest.approx(4.0, abs=0.55)
    budget = result.budgets[0]
    assert budget.spent > 0
    assert budget.burn_rate > 100


async def test_no_recovery_within_the_limit_fails_the_run(tmp_path: Path) -> None:
    h = Harness(
        tmp_path,
        experiment(**{"recoverWithin: 20s": "recoverWithin: 2s"}),
        lambda t: not 6.0 <= t < 30.0,
    )
    result = await h.run()
    assert result.status is RunStatus.FAILED
    assert "did not recover within 2s" in result.reason
    assert h.driver.applied == {}


async def test_failing_steady_state_before_injects_nothing(tmp_path: Path) -> None:
    h = Harness(tmp_path, experiment(), lambda t: False)
    result = await h.run()
    assert result.status is RunStatus.FAILED
    assert "inject" not in h.driver.ops()


async def test_abort_on_probe_collapse_rolls_back_within_100ms(tmp_path: Path) -> None:
    doc = experiment(
        **{
            "  expect: {recoverWithin: 20s}": (
                "  abort:\n    - {probe: web, over: 2s, expect: {successRatio: '< 0.5'}}\n"
                "  expect: {recoverWithin: 20s}"
            )
        }
    )
    h = Harness(tmp_path, doc, lambda t: t < 5.0)
    reverted_at: list[float] = []

    def handler(op: str, payload: Any) -> None:
        if op == "revert":
            reverted_at.append(h.clock.monotonic())

    h.driver.handler = handler
    result = await h.run()
    assert result.status is RunStatus.ABORTED
    assert result.aborted_by is not None and "web" in result.aborted_by
    abort = next(r for r in h.records() if r["event"] == "abort")
    decided = abort["t"] + h.runner.t0
    assert reverted_at and reverted_at[0] - decided <= 0.1
    assert h.driver.applied == {}


async def test_an_injection_error_is_reported_and_rolled_back(tmp_path: Path) -> None:
    def handler(op: str, payload: Any) -> None:
        if op == "inject":
            raise FaultInjectionFailed("toxiproxy said no", target="db")

    h = Harness(tmp_path, experiment(), lambda t: True, handler)
    result = await h.run()
    assert result.status is RunStatus.ERRORED
    assert "toxiproxy said no" in result.reason
    assert h.driver.ops()[-1] == "revert"  # the intent was journaled, so rollback tries it


async def test_interrupt_during_the_method_reverts_and_reports(tmp_path: Path) -> None:
    h = Harness(tmp_path, experiment(), lambda t: True)

    def interrupt(now: float) -> None:
        if now >= 6.0:
            h.runner.interrupt()

    result = await h.run(during=interrupt)
    assert result.status is RunStatus.INTERRUPTED
    assert result.status.exit_code == 130
    assert h.driver.applied == {}
    assert "fault.reverted" in [r["event"] for r in h.records()]


async def test_kill_switch_aborts(tmp_path: Path) -> None:
    flag = {"on": False}
    h = Harness(tmp_path, experiment(), lambda t: True, kill=lambda: flag["on"])
    result = await h.run(during=lambda now: flag.update(on=now >= 7.0))
    assert result.status is RunStatus.ABORTED
    assert result.reason == "kill switch engaged"
    assert h.driver.applied == {}


async def test_budget_overspend_fails_the_run(tmp_path: Path) -> None:
    doc = experiment(
        **{
            "  expect: {recoverWithin: 20s}": (
                "  expect: {recoverWithin: 20s}\n  budget: {slo: avail, maxSpend: 1%}"
            )
        }
    )
    h = Harness(tmp_path, doc, lambda t: not 6.0 <= t < 12.0)
    result = await h.run()
    assert result.status is RunStatus.FAILED
    assert "maxSpend" in result.reason
    assert result.budgets[0].spent > 0.01


async def test_dry_run_prepares_only(tmp_path: Path) -> None:
    h = Harness(tmp_path, experiment(), lambda t: True)
    h.ctx.dry_run = True
    result = await h.run()
    assert result.status is RunStatus.PASSED
    assert h.driver.ops() == ["prepare"]
    assert result.notes == ["slow: would apply toxiproxy.latency to fake:db"]
