"""ChaosScheduler on a manual clock: weeks of schedule in milliseconds, fake run callables."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aftershock.clock import ManualClock
from aftershock.errors import ExperimentInvalid
from aftershock.journal.ledger import Ledger
from aftershock.model.results import BudgetResult, RunResult, RunStatus
from aftershock.runtime import set_lever
from tests.unit.scheduling.helpers import DAY, WEEK, FakeRun, experiment, scheduler, settings

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = datetime(2026, 1, 5, tzinfo=UTC)  # ManualClock's default epoch


@pytest.mark.parametrize(
    "epoch",
    [
        pytest.param(datetime(2026, 3, 2, tzinfo=UTC), id="spring-forward-2026-03-29"),
        pytest.param(datetime(2026, 10, 5, tzinfo=UTC), id="fall-back-2026-10-25"),
    ],
)
async def test_weekly_cron_with_jitter_fires_once_a_week_across_dst(
    tmp_path: Path, epoch: datetime
) -> None:
    clock = ManualClock(epoch=epoch)
    run = FakeRun(clock, duration=120)
    sched = scheduler(tmp_path, clock, run)
    weekly = experiment({"cron": "0 3 * * MON", "timezone": "Europe/Berlin", "jitter": "10m"})
    first = sched.upsert("weekly", weekly)
    assert first is not None
    await sched.start()
    await clock.advance(8 * WEEK)
    await sched.stop()

    local = [at.astimezone(BERLIN) for at in run.times]
    assert len(local) == 8
    assert local[0] == first.astimezone(BERLIN)
    assert len({at.date() for at in local}) == 8
    for at in local:
        assert at.weekday() == 0
        assert time(3, 0) <= at.time() < time(3, 10), at
    assert len({at.time() for at in local}) > 1  # jittered, not a constant offset
    assert {at.utcoffset() for at in local} == {timedelta(hours=1), timedelta(hours=2)}
    history = sched.history("weekly")
    assert [f.decision for f in history] == ["run"] * 8
    assert all(f.status == "passed" for f in history)
    assert [f.due for f in history] == run.times


async def test_a_daily_run_in_the_repeated_hour_runs_once_when_the_clocks_go_back(
    tmp_path: Path,
) -> None:
    clock = ManualClock(epoch=datetime(2026, 10, 22, tzinfo=UTC))
    run = FakeRun(clock)
    sched = scheduler(tmp_path, clock, run)
    sched.upsert("daily", experiment({"cron": "30 2 * * *", "timezone": "Europe/Berlin"}))
    await sched.start()
    await clock.advance(7 * DAY)
    await sched.stop()
    local = [at.astimezone(BERLIN) for at in run.times]
    assert len(local) == 7
    assert len({at.date() for at in local}) == 7
    assert all((at.hour, at.minute) == (2, 30) for at in local)


async def test_jitter_is_the_same_for_a_new_scheduler(tmp_path: Path) -> None:
    clock = ManualClock()
    weekly = experiment({"cron": "0 3 * * MON", "jitter": "10m"})
    a = scheduler(tmp_path / "a", clock, FakeRun(clock)).upsert("weekly", weekly)
    b = scheduler(tmp_path / "b", clock, FakeRun(clock)).upsert("weekly", weekly)
    c = scheduler(tmp_path / "c", clock, FakeRun(clock)).upsert("other", weekly)
    assert a == b
    assert a != c


async def test_blackout_windows_skip_and_say_why(tmp_path: Path) -> None:
    clock = ManualClock()  # Monday 00:00 UTC
    run = FakeRun(clock)
    sched = scheduler(tmp_path, clock, run)
    hourly = experiment(
        {
            "cron": "0 * * * *",
            "blackout": [
                {"days": ["MON"], "from": "02:00", "to": "04:00", "reason": "batch window"},
                {"days": ["MON"], "from": "22:00", "to": "00:59", "reason": "overnight"},
            ],
        }
    )
    sched.upsert("hourly", hourly)
    await sched.start()
    await clock.advance(DAY + 2 * 3600)  # until Tuesday 02:00
    await sched.stop()

    history = sched.history("hourly")
    skipped = {f.fire_time.hour: f for f in history if f.decision == "skip"}
    # 02:00, 03:00, 04:00 (the end minute is inclusive), 22:00, 23:00, and Tuesday 00:00
    assert sorted(skipped) == [0, 2, 3, 4, 22, 23]
    assert {f.reason for f in skipped.values()} == {"blackout"}
    assert "batch window" in skipped[3].detail
    assert "MON 02:00-04:00 UTC" in skipped[3].detail
    assert "overnight" in skipped[0].detail
    assert [at.hour for at in run.times] == [1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
                                              19, 20, 21, 1, 2]  # fmt: skip


async def test_forbid_prevents_overlap_and_records_the_skips(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock, duration=150)  # longer than the one-minute interval
    sched = scheduler(tmp_path, clock, run)
    sched.upsert("minutely", experiment({"cron": "* * * * *"}))
    await sched.start()
    await clock.advance(61)
    assert sched.running("minutely")
    await clock.advance(600 - 61)
    await sched.stop()

    assert run.max_active == 1
    assert [(at - MONDAY).total_seconds() for at in run.times] == [60, 240, 420, 600]
    history = sched.history("minutely")
    skips = [f for f in history if f.decision == "skip"]
    assert len(skips) == 6
    assert {f.reason for f in skips} == {"running"}
    assert "Forbid" in skips[0].detail
    # the run still going at stop() was cancelled (and rolled back by the real run callable)
    assert [f.status for f in history if f.decision == "run"] == [
        "passed",
        "passed",
        "passed",
        "cancelled",
    ]


async def test_allow_overlaps(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock, duration=150)
    sched = scheduler(tmp_path, clock, run)
    sched.upsert("minutely", experiment({"cron": "* * * * *", "concurrencyPolicy": "Allow"}))
    await sched.start()
    await clock.advance(600)
    await sched.stop()

    assert len(run.starts) == 10
    assert run.max_active == 3
    assert all(f.decision == "run" for f in sched.history("minutely"))


async def test_replace_rolls_back_the_previous_run_before_starting(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock, duration=150, rollback=2)
    sched = scheduler(tmp_path, clock, run)
    sched.upsert("minutely", experiment({"cron": "* * * * *", "concurrencyPolicy": "Replace"}))
    await sched.start()
    await clock.advance(200)
    stopping = asyncio.create_task(sched.stop())  # the last run rolls back on the manual clock
    await clock.advance(5)
    await stopping

    seconds = [(kind, (at - MONDAY).total_seconds()) for kind, _, at in run.log]
    # fire at 120 interrupts the run of 60, which rolls back for 2 s before the new one starts
    assert seconds[:4] == [("start", 60), ("end", 122), ("start", 122), ("end", 182)]
    assert run.max_active == 1
    history = sched.history("minutely")
    assert [f.reason for f in history] == ["", "replaced", "replaced"]
    assert [f.status for f in history] == ["cancelled", "cancelled", "cancelled"]


async def test_the_budget_gate_skips_and_records_why(tmp_path: Path) -> None:
    clock = ManualClock()
    ledger = Ledger(settings(tmp_path).home / "ledger.sqlite3")
    yesterday = clock.now() - timedelta(days=1)
    ledger.record_run(
        RunResult(
            run_id="expensive",
            experiment="weekly",
            status=RunStatus.FAILED,
            started_at=yesterday,
            finished_at=yesterday + timedelta(minutes=5),
            budgets=[
                BudgetResult(
                    slo="avail",
                    objective=0.99,
                    window_seconds=7 * DAY,
                    spent=0.97,
                    burn_rate=40.0,
                    baseline_bad_ratio=0.0,
                )
            ],
        )
    )
    run = FakeRun(clock)
    sched = scheduler(tmp_path, clock, run)
    gated = experiment({"cron": "0 3 * * *"}, budget={"slo": "avail", "maxSpend": "5%"})
    sched.upsert("gated", gated)
    await sched.start()
    await clock.advance(DAY)
    assert run.starts == []
    (fire,) = sched.history("gated")
    assert (fire.decision, fire.reason) == ("skip", "budget")
    assert "budget gate refused" in fire.detail
    assert "'avail' has 3% left" in fire.detail
    assert "may spend 5%" in fire.detail
    # a week later the expensive run has left the 7-day window: the gate lets it run
    await clock.advance(7 * DAY)
    await sched.stop()
    assert len(run.starts) >= 1
    assert sched.history("gated")[-1].decision == "run"


async def test_the_kill_switch_skips_fires_until_released(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock)
    sched = scheduler(tmp_path, clock, run)
    sched.upsert("hourly", experiment({"cron": "0 * * * *"}))
    set_lever(settings(tmp_path), engaged=True, reason="incident")
    await sched.start()
    await clock.advance(3 * 3600)
    assert run.starts == []
    history = sched.history("hourly")
    assert [f.reason for f in history] == ["kill-switch"] * 3
    assert "lever release" in history[0].detail
    set_lever(settings(tmp_path), engaged=False)
    await clock.advance(3600)
    await sched.stop()
    assert [(at - MONDAY).total_seconds() for at in run.times] == [4 * 3600]


async def test_suspended_schedules_skip(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock)
    sched = scheduler(tmp_path, clock, run)
    sched.upsert("hourly", experiment({"cron": "0 * * * *", "suspend": True}))
    await sched.start()
    await clock.advance(2 * 3600)
    await sched.stop()
    assert run.starts == []
    assert [f.reason for f in sched.history("hourly")] == ["suspended", "suspended"]


async def test_upsert_replaces_the_trigger_and_keeps_the_last_run(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock)
    sched = scheduler(tmp_path, clock, run)
    sched.upsert("job", experiment({"cron": "0 3 * * *"}))
    await sched.start()
    await clock.advance(4 * 3600)  # ran at 03:00
    # same cron, new jitter: the 03:00 run is not repeated, tomorrow's moves
    due = sched.upsert("job", experiment({"cron": "0 3 * * *", "jitter": "30m"}))
    assert due is not None
    assert MONDAY + timedelta(days=1, hours=3) <= due < MONDAY + timedelta(days=1, hours=3.5)
    # a new cron starts from now: 05:00 today is next, nothing is "missed"
    assert sched.upsert("job", experiment({"cron": "0 5 * * *"})) == MONDAY + timedelta(hours=5)
    await clock.advance(2 * 3600)
    await sched.stop()
    assert [(at - MONDAY).total_seconds() / 3600 for at in run.times] == [3, 5]
    assert [f.decision for f in sched.history("job")] == ["run", "run"]


async def test_remove_stops_the_schedule_and_keeps_history(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock)
    sched = scheduler(tmp_path, clock, run)
    sched.upsert("hourly", experiment({"cron": "0 * * * *"}))
    await sched.start()
    await clock.advance(3600)
    sched.remove("hourly")
    assert sched.next_run("hourly") is None
    assert sched.keys() == []
    await clock.advance(5 * 3600)
    await sched.stop()
    assert len(run.starts) == 1
    assert len(sched.history("hourly")) == 1


async def test_a_failing_run_is_recorded_and_the_schedule_goes_on(tmp_path: Path) -> None:
    clock = ManualClock()
    calls: list[str] = []

    async def broken(key: str, _experiment: object) -> None:
        calls.append(key)
        raise RuntimeError("driver exploded")

    sched = scheduler(tmp_path, clock, broken)  # type: ignore[arg-type]
    sched.upsert("hourly", experiment({"cron": "0 * * * *"}))
    await sched.start()
    await clock.advance(2 * 3600)
    await sched.stop()
    assert calls == ["hourly", "hourly"]
    assert [f.status for f in sched.history("hourly")] == ["error: driver exploded"] * 2


async def test_the_default_recheck_interval_keeps_firing_on_time(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock)
    sched = scheduler(tmp_path, clock, run, recheck_every=60.0)
    sched.upsert("hourly", experiment({"cron": "0 * * * *", "jitter": "5m"}))
    await sched.start()
    await clock.advance(3 * 3600 + 300)
    await sched.stop()
    assert [f.due for f in sched.history("hourly")] == run.times
    assert len(run.times) == 3


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 3 * * 1#2", "'#'"),
        ("0 3 15W * *", "'W'"),
        ("61 3 * * *", "invalid cron expression"),
        ("0 3 * * FUNDAY", "invalid day of week"),
    ],
)
def test_a_cron_apscheduler_cannot_run_is_invalid(tmp_path: Path, cron: str, message: str) -> None:
    clock = ManualClock()
    sched = scheduler(tmp_path, clock, FakeRun(clock))
    with pytest.raises(ExperimentInvalid) as caught:
        sched.upsert("bad", experiment({"cron": cron}))
    (problem,) = caught.value.problems
    assert problem.path == "spec.schedule.cron"
    assert message in problem.message


def test_an_experiment_without_schedule_is_refused(tmp_path: Path) -> None:
    clock = ManualClock()
    sched = scheduler(tmp_path, clock, FakeRun(clock))
    plain = experiment({"cron": "0 3 * * *"}).model_copy(deep=True)
    unscheduled = plain.model_copy(
        update={"spec": plain.spec.model_copy(update={"schedule": None})}
    )
    with pytest.raises(ExperimentInvalid):
        sched.upsert("plain", unscheduled)
