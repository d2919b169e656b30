"""Two schedulers on one store file (two daemons with one ``$AFTERSHOCK_HOME``): every fire
runs once in total; the scheduler that lost the compare-and-set on the anchor emits
``schedule.taken`` and runs nothing; a reload never moves an anchor back."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aftershock.clock import ManualClock
from aftershock.model.experiment import Experiment
from aftershock.scheduling import ChaosScheduler, Fire, run_schedule
from aftershock.scheduling.store import ScheduleStore
from aftershock.testing import CapturedEvents
from tests.unit.scheduling.helpers import DAY, FakeRun, experiment, scheduler, settings

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)  # ManualClock's default epoch
HOURLY = {"cron": "0 * * * *"}
JITTERED = {"cron": "*/10 * * * *", "jitter": "7m"}


class Pair:
    """Two schedulers over one store file, each with its own run callable and event sink."""

    def __init__(self, tmp_path: Path, clock: ManualClock, **kwargs: Any) -> None:
        self.tmp_path, self.clock, self.kwargs = tmp_path, clock, kwargs
        self.runs = (FakeRun(clock), FakeRun(clock))
        self.events = (CapturedEvents(), CapturedEvents())
        self.schedulers: list[ChaosScheduler] = []

    async def start(
        self, jobs: dict[str, Experiment], *, seeds: tuple[str, str] = ("", "")
    ) -> None:
        self.schedulers = [
            scheduler(self.tmp_path, self.clock, run, events=sink, seed=seed, **self.kwargs)
            for run, sink, seed in zip(self.runs, self.events, seeds, strict=True)
        ]
        for sched in self.schedulers:
            for key, exp in jobs.items():
                sched.upsert(key, exp)
            await sched.start()

    async def stop(self) -> None:
        for sched in self.schedulers:
            await sched.stop()

    def starts(self, key: str) -> list[datetime]:
        return sorted(at for run in self.runs for k, at in run.starts if k == key)

    def history(self, key: str) -> list[Fire]:
        return self.schedulers[0].history(key)

    def kinds(self, kind: str, key: str) -> list[dict[str, object]]:
        return [
            dict(e.fields) for sink in self.events for e in sink.of(kind) if e.fields["key"] == key
        ]


def assert_once(pair: Pair, key: str) -> list[Fire]:
    """Each recorded fire once; each run fire run once; every fire the other scheduler saw taken."""
    history = pair.history(key)
    assert len({f.fire_time for f in history}) == len(history), "a fire recorded twice"
    ran = [f for f in history if f.decision == "run"]
    assert len(pair.starts(key)) == len(ran)
    assert [f.status for f in ran] == ["passed"] * len(ran)
    fired = Counter(e["fire_time"] for e in pair.kinds("schedule.fire", key))
    taken = Counter(e["fire_time"] for e in pair.kinds("schedule.taken", key))
    recorded = Counter(f.fire_time.isoformat() for f in history)
    assert fired == recorded
    assert taken == recorded  # the loser of each compare-and-set said so, once
    return history


async def test_two_schedulers_on_one_store_run_each_hourly_fire_once(tmp_path: Path) -> None:
    clock = ManualClock()
    pair = Pair(tmp_path, clock)
    await pair.start({"hourly": experiment(HOURLY, name="hourly")})
    await clock.advance(DAY - 1)
    await pair.stop()
    history = assert_once(pair, "hourly")
    assert [f.fire_time for f in history] == [MONDAY + timedelta(hours=h) for h in range(1, 24)]
    assert {(f.decision, f.reason) for f in history} == {("run", "")}
    assert pair.starts("hourly") == [f.due for f in history]
    taken = pair.kinds("schedule.taken", "hourly")
    assert taken[0]["next_run"] == (MONDAY + timedelta(hours=2)).isoformat()
    assert taken[0]["anchor"] == (MONDAY + timedelta(hours=1)).isoformat()


async def test_catch_up_after_both_were_down_runs_the_coalesced_fire_once(tmp_path: Path) -> None:
    clock = ManualClock()
    pair = Pair(tmp_path, clock, misfire_grace=timedelta(minutes=45))
    jobs = {"hourly": experiment(HOURLY, name="hourly")}
    await pair.start(jobs)
    await clock.advance(1800)
    await pair.stop()
    await clock.advance(5 * 3600)  # both down from 00:30 to 05:30: 01:00 .. 05:00 missed

    await pair.start(jobs)
    await clock.advance(0)
    history = assert_once(pair, "hourly")
    assert [(f.decision, f.reason, f.fire_time) for f in history] == [
        ("skip", "missed", MONDAY + timedelta(hours=1)),
        ("run", "late", MONDAY + timedelta(hours=5)),
    ]
    assert pair.starts("hourly") == [MONDAY + timedelta(hours=5.5)]
    await clock.advance(3 * 3600)  # and on schedule again afterwards
    await pair.stop()
    history = assert_once(pair, "hourly")
    assert [f.fire_time.hour for f in history if f.decision == "run"] == [5, 6, 7, 8]


@pytest.mark.parametrize(
    "seeds", [pytest.param(("", ""), id="same-seed"), pytest.param(("a", "b"), id="other-seeds")]
)
async def test_a_jittered_schedule_fires_once_even_with_different_jitter(
    tmp_path: Path, seeds: tuple[str, str]
) -> None:
    clock = ManualClock()
    pair = Pair(tmp_path, clock)
    await pair.start({"jittered": experiment(JITTERED, name="jittered")}, seeds=seeds)
    await clock.advance(4 * 3600)
    await pair.stop()
    history = assert_once(pair, "jittered")
    assert [f.fire_time for f in history] == [
        MONDAY + timedelta(minutes=m) for m in range(10, 4 * 60, 10)
    ]
    assert all(f.decision == "run" for f in history)
    assert len({f.due - f.fire_time for f in history}) > 1  # the jitter did move them
    if seeds[0] != seeds[1]:  # each scheduler's own due time came first now and then
        assert all(run.starts for run in pair.runs)


async def test_a_reload_in_the_standby_never_moves_the_anchor_back(tmp_path: Path) -> None:
    clock = ManualClock()
    store = ScheduleStore(tmp_path / "schedule.sqlite3")
    run_a, run_b = FakeRun(clock), FakeRun(clock)
    a, b = scheduler(tmp_path, clock, run_a), scheduler(tmp_path, clock, run_b)
    exp = experiment(HOURLY, name="hourly")
    a.upsert("hourly", exp)
    b.upsert("hourly", exp)  # B loaded the job but is not firing (a standby)
    await a.start()
    await clock.advance(3 * 3600 + 60)  # A ran 01:00, 02:00 and 03:00
    advanced = store.job("hourly")
    assert advanced is not None
    assert advanced.anchor == MONDAY + timedelta(hours=3)

    # B reloads the file (same cron, new jitter): the stored anchor stays where A moved it.
    due = b.upsert("hourly", experiment({**HOURLY, "jitter": "1m"}, name="hourly"))
    assert store.job("hourly") == advanced
    assert due is not None
    assert due > MONDAY + timedelta(hours=4)
    await b.start()
    await clock.advance(2 * 3600)
    await a.stop()
    await b.stop()
    history = a.history("hourly")
    assert [f.fire_time.hour for f in history] == [1, 2, 3, 4, 5]
    assert len(run_a.starts) + len(run_b.starts) == 5


async def test_a_job_removed_by_the_other_scheduler_starts_again_from_now(tmp_path: Path) -> None:
    clock = ManualClock()
    events = CapturedEvents()
    run_a, run_b = FakeRun(clock), FakeRun(clock)
    a = scheduler(tmp_path, clock, run_a, events=events)
    b = scheduler(tmp_path, clock, run_b)
    exp = experiment(HOURLY, name="hourly")
    a.upsert("hourly", exp)
    b.upsert("hourly", exp)
    await a.start()
    await clock.advance(1800)
    b.remove("hourly")  # B's file was deleted; A still has the job
    await clock.advance(1800)
    assert run_a.starts == []  # nobody dealt with 01:00: A does not run it behind B's back
    (taken,) = events.of("schedule.taken")
    assert taken.fields["next_run"] == (MONDAY + timedelta(hours=2)).isoformat()
    assert "removed the job" in str(taken.fields["detail"])
    await clock.advance(3600)
    await a.stop()
    assert run_a.times == [MONDAY + timedelta(hours=2)]


async def test_another_version_of_the_job_in_the_store_is_reported_not_run(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    events = CapturedEvents()
    run_a = FakeRun(clock)
    a = scheduler(tmp_path, clock, run_a, events=events)
    b = scheduler(tmp_path, clock, FakeRun(clock))
    a.upsert("job", experiment(HOURLY, name="job"))
    await a.start()
    await clock.advance(600)
    b.upsert("job", experiment({"cron": "30 * * * *"}, name="job"))  # B's file says otherwise
    await clock.advance(3 * 3600)
    assert run_a.starts == []
    taken = events.of("schedule.taken")
    assert [e.fields["fire_time"] for e in taken] == [
        (MONDAY + timedelta(hours=h)).isoformat() for h in (1, 2, 3)
    ]  # one report per fire of A's cron, no spinning on the record it cannot move
    assert "another version of the job (cron '30 * * * *')" in str(taken[0].fields["detail"])
    a.upsert("job", experiment(HOURLY, name="job"))  # A reloads: its cron starts from now
    await clock.advance(3600)
    await a.stop()
    assert run_a.times == [MONDAY + timedelta(hours=4)]


def test_a_store_and_a_store_path_are_one_too_many(tmp_path: Path) -> None:
    clock = ManualClock()
    store = ScheduleStore(tmp_path / "one.sqlite3")
    with pytest.raises(ValueError, match="not both"):
        ChaosScheduler(
            settings=settings(tmp_path),
            run=FakeRun(clock),
            clock=clock,
            store=store,
            store_path=tmp_path / "two.sqlite3",
        )


async def test_two_schedulers_can_share_one_store_object(tmp_path: Path) -> None:
    clock = ManualClock()
    store = ScheduleStore(tmp_path / "shared.sqlite3")
    run = FakeRun(clock)
    pair = [
        ChaosScheduler(settings=settings(tmp_path), run=run, clock=clock, store=store)
        for _ in range(2)
    ]
    for sched in pair:
        sched.upsert("hourly", experiment(HOURLY, name="hourly"))
        await sched.start()
    await clock.advance(6 * 3600)
    for sched in pair:
        await sched.stop()
    assert [(at - MONDAY) / timedelta(hours=1) for at in run.times] == [1, 2, 3, 4, 5, 6]
    assert len(store.history("hourly")) == 6
    assert not (tmp_path / "home" / "schedule" / "jobs.sqlite3").exists()


EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: minutely}}
spec:
  schedule: {{cron: "* * * * *"{extra}}}
  targets:
    db: {{toxiproxy: {{api: http://127.0.0.1:8474, proxy: pg}}}}
  method:
    - {{name: slow, fault: toxiproxy.latency, target: db, with: {{latency: 300ms}}, for: 10s}}
"""


async def test_two_daemons_on_one_home_run_each_fire_once_across_reloads(tmp_path: Path) -> None:
    clock = ManualClock()
    source = tmp_path / "exps" / "minutely.yaml"
    source.parent.mkdir()
    source.write_text(EXPERIMENT.format(extra=""))
    runs = (FakeRun(clock), FakeRun(clock))
    lines: tuple[list[str], list[str]] = ([], [])
    stop = asyncio.Event()
    daemons = [
        asyncio.create_task(
            run_schedule(
                source.parent,
                settings=settings(tmp_path),
                stop=stop,
                clock=clock,
                reload_every=1.0,
                run=run,
                echo=echo.append,
            )
        )
        for run, echo in zip(runs, lines, strict=True)
    ]
    await clock.advance(10 * 60 + 30)
    source.write_text(EXPERIMENT.format(extra=", jitter: 20s"))  # both reload: same cron
    await clock.advance(10 * 60)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*daemons), timeout=10)
    store = ScheduleStore(settings(tmp_path).home / "schedule" / "jobs.sqlite3")
    history = store.history("minutely")
    assert [f.fire_time for f in history] == [MONDAY + timedelta(minutes=m) for m in range(1, 21)]
    assert all(f.decision == "run" for f in history)
    assert sum(len(run.starts) for run in runs) == 20
    said = [
        line
        for echo in lines
        for line in echo
        if "not run here: another scheduler on the same store dealt with" in line
    ]
    assert len(said) == 20


class ThreadNoting(ScheduleStore):
    """The SQLite store, noting which thread each job write comes from."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.threads: list[str] = []

    def save_job(self, *args: Any, **kwargs: Any) -> Any:
        self.threads.append(threading.current_thread().name)
        return super().save_job(*args, **kwargs)

    def delete_job(self, key: str) -> None:
        self.threads.append(threading.current_thread().name)
        super().delete_job(key)


async def test_the_async_reload_writes_from_a_worker_thread_and_keeps_the_anchor(
    tmp_path: Path,
) -> None:
    """``upsert_async``/``remove_async`` (the operator's: its store is the API) keep the
    event loop free and behave as ``upsert``/``remove`` do."""
    clock = ManualClock()
    store = ThreadNoting(tmp_path / "schedule.sqlite3")
    sched = ChaosScheduler(
        settings=settings(tmp_path), run=FakeRun(clock), clock=clock, store=store, recheck_every=DAY
    )
    exp = experiment(HOURLY, name="hourly")
    due = await sched.upsert_async("hourly", exp)
    assert due == MONDAY + timedelta(hours=1)
    await sched.start()
    await clock.advance(2 * 3600 + 60)
    moved = store.job("hourly")
    assert moved is not None
    assert moved.anchor == MONDAY + timedelta(hours=2)
    # a reload of the same cron keeps the anchor the fires moved
    assert await sched.upsert_async("hourly", exp) == MONDAY + timedelta(hours=3)
    assert store.job("hourly") == moved
    await sched.remove_async("hourly")
    assert sched.keys() == []
    assert store.job("hourly") is None
    await sched.stop()
    main = threading.main_thread().name
    assert len(store.threads) == 3
    assert main not in store.threads
