"""The runner keeps its first promise: cancelled or failing, every applied fault is reverted."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aftershock.engine.context import RunContext, step_seed
from aftershock.engine.runner import Runner
from aftershock.errors import JournalError
from aftershock.journal.faults import FaultJournal
from aftershock.model.results import RunStatus
from aftershock.model.targets import TargetKind
from aftershock.ports import FaultRequest, Handle
from aftershock.testing import FakeDriver, FakeProbe, ManualClock, capture_events
from tests.unit.engine.test_runner import DOC, experiment

ONE_STEP = (
    "    - {name: slow, fault: toxiproxy.latency, target: db, with: {latency: 300ms},"
    " at: 1s, for: 10s}"
)


def steps(*names: str) -> str:
    """The unit experiment with one 10 s latency step per name, a second apart."""
    lines = [
        f"    - {{name: {name}, fault: toxiproxy.latency, target: db, with: {{latency: 1ms}},"
        f" at: {at}s, for: 10s}}"
        for at, name in enumerate(names, start=1)
    ]
    assert ONE_STEP in DOC
    return DOC.replace(ONE_STEP, "\n".join(lines))


THREE = steps("one", "two", "three")


class FailingJournal:
    """A ``RunJournal`` whose writes fail once ``broken`` is set (a disk that filled up)."""

    def __init__(self, inner: FaultJournal) -> None:
        self.inner = inner
        self.broken = False

    def _check(self, what: str) -> None:
        if self.broken:
            msg = f"{self.inner.path}: cannot journal {what}: No space left on device"
            raise JournalError(msg)

    def intent(self, handle: Handle, deadline: datetime) -> int:
        self._check("fault.intent")
        return self.inner.intent(handle, deadline)

    def applied(self, handle: Handle) -> int:
        self._check("fault.applied")
        return self.inner.applied(handle)

    def reverted(self, handle: Handle) -> int:
        self._check("fault.reverted")
        return self.inner.reverted(handle)

    def revert_failed(self, handle: Handle, error: str) -> int:
        self._check("fault.revert_failed")
        return self.inner.revert_failed(handle, error)

    def note(self, kind: str, **fields: Any) -> int:
        self._check(kind)
        return self.inner.note(kind, **fields)


def _context(tmp_path: Path, text: str, **options: Any) -> tuple[RunContext, FakeDriver]:
    clock = ManualClock()
    driver = FakeDriver(TargetKind.TOXIPROXY)
    ctx = RunContext(
        experiment=experiment(text),
        run_id="run-1",
        drivers={TargetKind.TOXIPROXY: driver},
        probes={"web": FakeProbe(lambda _t: True, clock)},
        journal=FaultJournal(tmp_path, "run-1", clock=clock.now),
        clock=clock,
        **options,
    )
    return ctx, driver


async def _advance_until(clock: ManualClock, task: asyncio.Task[Any], until: float) -> None:
    while clock.monotonic() < until and not task.done():
        await clock.advance(0.05)


@pytest.mark.parametrize("at", [0.5, 3.5, 4.02, 5.5, 6.5, 14.5, 15.5, 17.0, 18.5])
async def test_a_cancelled_run_reverts_everything_and_says_interrupted(
    tmp_path: Path, at: float
) -> None:
    ctx, driver = _context(tmp_path, THREE)
    runner = Runner(ctx)
    task = asyncio.create_task(runner.run())
    await _advance_until(ctx.clock, task, at)  # type: ignore[arg-type]
    assert not task.done(), "the run ended before the cancellation"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert driver.applied == {}
    assert runner.result is not None
    assert runner.result.status is RunStatus.INTERRUPTED
    records = [json.loads(line) for line in ctx.journal.path.read_text().splitlines()]  # type: ignore[attr-defined]
    intents = sorted(r["key"] for r in records if r["event"] == "fault.intent")
    reverted = sorted(r["key"] for r in records if r["event"] == "fault.reverted")
    assert intents == reverted
    assert records[-1]["event"] == "run.finished"
    assert records[-1]["result"]["status"] == "interrupted"
    # No task of the run outlives it.
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert leftovers == []


async def test_a_stop_requested_before_the_run_starts_touches_nothing(tmp_path: Path) -> None:
    ctx, driver = _context(tmp_path, THREE)
    ctx.stop.set()
    task = asyncio.create_task(Runner(ctx).run())
    await _advance_until(ctx.clock, task, 60.0)  # type: ignore[arg-type]
    result = task.result()
    assert result.status is RunStatus.INTERRUPTED
    assert "inject" not in driver.ops()


async def test_a_journal_failing_during_rollback_still_reverts_every_fault(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    driver = FakeDriver(TargetKind.TOXIPROXY)
    journal = FailingJournal(FaultJournal(tmp_path, "run-1", clock=clock.now))
    flag = {"on": False}
    with capture_events() as events:
        ctx = RunContext(
            experiment=experiment(THREE),
            run_id="run-1",
            drivers={TargetKind.TOXIPROXY: driver},
            probes={"web": FakeProbe(lambda _t: True, clock)},
            journal=journal,
            clock=clock,
            events=events,
            kill_switch=lambda: flag["on"],
        )
        runner = Runner(ctx)
        task = asyncio.create_task(runner.run())
        await _advance_until(clock, task, 7.5)
        assert len(driver.applied) == 3
        journal.broken = True  # the disk fills up just as the lever is engaged
        flag["on"] = True
        while not task.done():
            await clock.advance(0.05)
    result = task.result()
    assert driver.applied == {}  # every fault was reverted all the same
    assert [op for op, _ in driver.calls].count("revert") == 3
    assert result.status is RunStatus.ERRORED
    assert result.status.exit_code == 4
    for step in ("one", "two", "three"):  # each fault named with the journal's error
        assert f"{step}: reverted, but the journal could not record it" in result.reason
    assert "No space left on device" in result.reason
    assert [e.fields["record"] for e in events.of("journal.failed")][-1] == "run.finished"


async def test_a_failed_revert_is_named_per_fault_and_the_run_errors(tmp_path: Path) -> None:
    failing = {"two"}

    async def handler(op: str, payload: Any) -> None:
        if op == "revert" and isinstance(payload, Handle) and payload.step in failing:
            raise JournalError("cannot reach the backend")  # any error, not only a driver's

    ctx, _ = _context(tmp_path, THREE)
    driver = FakeDriver(TargetKind.TOXIPROXY, handler)
    ctx.drivers = {TargetKind.TOXIPROXY: driver}
    flag = {"on": False}
    ctx.kill_switch = lambda: flag["on"]
    task = asyncio.create_task(Runner(ctx).run())
    await _advance_until(ctx.clock, task, 7.5)  # type: ignore[arg-type]
    flag["on"] = True
    while not task.done():
        await ctx.clock.advance(0.05)  # type: ignore[attr-defined]
    result = task.result()
    assert result.status is RunStatus.ERRORED
    assert result.status.exit_code == 4
    assert "two: cannot reach the backend" in result.reason
    assert set(driver.applied) == {("run-1", "two")}  # the others were reverted all the same
    assert [f.step for f in result.faults if f.reverted_at is None] == ["two"]


def _seeds(driver: FakeDriver) -> dict[str, int | None]:
    return {
        request.step: request.seed
        for op, request in driver.calls
        if op == "prepare" and isinstance(request, FaultRequest)
    }


async def test_each_step_draws_from_its_own_seed(tmp_path: Path) -> None:
    two, driver_two = _context(tmp_path / "a", steps("one", "three"), seed=1234, dry_run=True)
    three, driver_three = _context(tmp_path / "b", THREE, seed=1234, dry_run=True)
    other, driver_other = _context(tmp_path / "c", THREE, seed=1235, dry_run=True)
    for ctx in (two, three, other):
        await Runner(ctx).run()
    seeds_two, seeds_three = _seeds(driver_two), _seeds(driver_three)
    assert len(set(seeds_three.values())) == 3  # every step its own generator
    # Adding the step "two" changed nothing for the others.
    assert seeds_two == {k: v for k, v in seeds_three.items() if k != "two"}
    assert seeds_three == {name: step_seed(1234, name) for name in ("one", "two", "three")}
    assert set(_seeds(driver_other).values()).isdisjoint(seeds_three.values())
