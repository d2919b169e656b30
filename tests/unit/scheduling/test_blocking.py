"""Store calls in worker threads (``blocking=in_thread``, the operator's): the event loop
goes on while the store answers, and a fire is still recorded whole."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from aftershock.clock import ManualClock
from aftershock.model.experiment import Experiment
from aftershock.scheduling import ChaosScheduler
from aftershock.scheduling.blocking import in_thread
from aftershock.scheduling.store import FireRow, ScheduleStore
from tests.unit.scheduling.helpers import experiment, settings

HOURLY = {"cron": "0 * * * *"}


class HeldStore(ScheduleStore):
    """The SQLite store, whose ``record`` waits for ``release`` (a slow API server)."""

    def __init__(self, path: Path, *, hold_after: bool = False) -> None:
        super().__init__(path)
        self.hold_after = hold_after  # hold once recorded: the answer is on its way
        self.entered = threading.Event()
        self.release = threading.Event()
        self.recorded = threading.Event()
        self.threads: list[threading.Thread] = []

    def record(
        self,
        key: str,
        fires: Sequence[FireRow],
        *,
        cron: str,
        timezone: str,
        expected_anchor: datetime | None,
        anchor: datetime,
        next_fire: datetime | None,
        now: datetime,
    ) -> list[int] | None:
        def record() -> list[int] | None:
            return super(HeldStore, self).record(
                key,
                fires,
                cron=cron,
                timezone=timezone,
                expected_anchor=expected_anchor,
                anchor=anchor,
                next_fire=next_fire,
                now=now,
            )

        self.threads.append(threading.current_thread())
        self.entered.set()
        if self.hold_after:
            ids = record()
            assert self.release.wait(10), "the test never released the store"
            self.recorded.set()
            return ids
        assert self.release.wait(10), "the test never released the store"
        try:
            return record()
        finally:
            self.recorded.set()


class Runs:
    """A run callable that notes which experiment each run was of."""

    def __init__(self) -> None:
        self.descriptions: list[str] = []

    async def __call__(self, _key: str, exp: Experiment) -> str:
        self.descriptions.append(exp.spec.description)
        return "passed"


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _scheduler(tmp_path: Path, clock: ManualClock, store: HeldStore, run: Runs) -> ChaosScheduler:
    return ChaosScheduler(
        settings=settings(tmp_path),
        run=run,
        clock=clock,
        store=store,
        recheck_every=86400.0,
        blocking=in_thread,
    )


def _described(text: str) -> Experiment:
    exp = experiment(HOURLY, name="hourly")
    return exp.model_copy(update={"spec": exp.spec.model_copy(update={"description": text})})


async def _due(
    tmp_path: Path, *, hold_after: bool = False
) -> tuple[ManualClock, HeldStore, Runs, ChaosScheduler]:
    """A scheduler whose first fire is being recorded, the store holding it."""
    clock = ManualClock()
    store = HeldStore(tmp_path / "schedule.sqlite3", hold_after=hold_after)
    runs = Runs()
    sched = _scheduler(tmp_path, clock, store, runs)
    sched.upsert("hourly", _described("as loaded"))
    await sched.start()
    await clock.advance(3600)
    await until(store.entered.is_set, "the fire's record")
    # This test runs on the scheduler's loop, now, while the store is still recording.
    assert not store.recorded.is_set()
    assert store.threads[0] is not threading.main_thread()
    return clock, store, runs, sched


def _statuses(sched: ChaosScheduler) -> list[tuple[str, str | None]]:
    return [(f.decision, f.status) for f in sched.history("hourly")]


async def test_the_loop_goes_on_while_the_store_records(tmp_path: Path) -> None:
    _, store, runs, sched = await _due(tmp_path)
    ticks = 0
    for _ in range(5):
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks == 5
    assert runs.descriptions == []  # nothing runs before the fire is recorded
    store.release.set()
    await until(lambda: _statuses(sched) == [("run", "passed")], "the run's status")
    assert runs.descriptions == ["as loaded"]
    await sched.stop()


async def test_stopped_while_recording_starts_no_run(tmp_path: Path) -> None:
    _, store, runs, sched = await _due(tmp_path)
    stopping = asyncio.create_task(sched.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # waits for the record: a fire is recorded whole
    store.release.set()
    await asyncio.wait_for(stopping, 10)
    assert runs.descriptions == []
    assert _statuses(sched) == [("run", "cancelled: the scheduler stopped")]


async def test_removed_while_recording_starts_no_run(tmp_path: Path) -> None:
    _, store, runs, sched = await _due(tmp_path)
    await sched.remove_async("hourly")  # deletes the job's row: the record finds none
    store.release.set()
    await until(store.recorded.is_set, "the record")
    await sched.stop()
    assert runs.descriptions == []
    assert _statuses(sched) == []
    assert store.job("hourly") is None  # not written back by the scheduler that removed it


async def test_removed_after_the_record_landed_starts_no_run(tmp_path: Path) -> None:
    _, store, runs, sched = await _due(tmp_path, hold_after=True)
    await sched.remove_async("hourly")  # the fire is in the store already
    store.release.set()
    expected = [("run", "cancelled: the schedule was removed while the fire was recorded")]
    await until(lambda: _statuses(sched) == expected, "the cancelled fire")
    await sched.stop()
    assert runs.descriptions == []


async def test_reloaded_while_recording_runs_the_reloaded_experiment(tmp_path: Path) -> None:
    _, store, runs, sched = await _due(tmp_path)
    before: datetime | None = sched.next_run("hourly")
    reload = asyncio.create_task(sched.upsert_async("hourly", _described("reloaded")))
    await asyncio.sleep(0.05)
    store.release.set()
    await asyncio.wait_for(reload, 10)
    await until(lambda: _statuses(sched) == [("run", "passed")], "the run's status")
    assert runs.descriptions == ["reloaded"]
    # The reloaded job took the anchor just recorded: its next run is an hour on.
    after = sched.next_run("hourly")
    assert before is not None
    assert after is not None
    assert after > before
    await sched.stop()
