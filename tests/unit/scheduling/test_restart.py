"""A restart in the middle: a new ChaosScheduler over the same store file neither loses nor
doubles a run, and fires that came due while it was down follow the misfire policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from aftershock.clock import ManualClock
from aftershock.scheduling import ChaosScheduler
from tests.unit.scheduling.helpers import DAY, WEEK, FakeRun, experiment, scheduler

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
WEEKLY = {"cron": "0 3 * * MON", "timezone": "Europe/Berlin", "jitter": "10m"}


async def started(tmp_path: Path, clock: ManualClock, run: FakeRun, **kw: object) -> ChaosScheduler:
    sched = scheduler(tmp_path, clock, run, **kw)  # type: ignore[arg-type]
    sched.upsert("weekly", experiment(WEEKLY))
    await sched.start()
    return sched


async def test_a_restart_after_the_run_does_not_run_it_again(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock)
    first = await started(tmp_path, clock, run)
    await clock.advance(4 * 3600)  # Monday 04:00 UTC: this week's run is done
    await first.stop()
    assert len(run.starts) == 1

    second = await started(tmp_path, clock, run)
    nxt = second.next_run("weekly")
    assert nxt is not None
    assert nxt > MONDAY + timedelta(days=7)
    await clock.advance(WEEK)
    await second.stop()
    assert len(run.starts) == 2
    assert (run.times[1] - run.times[0]) > timedelta(days=6)
    history = second.history("weekly")  # also the fires recorded before the restart
    assert [f.decision for f in history] == ["run", "run"]


async def test_a_restart_before_the_due_time_keeps_the_same_jittered_time(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock)
    first = await started(tmp_path, clock, run)
    due = first.next_run("weekly")
    assert due is not None
    await clock.advance((due - clock.now()).total_seconds() - 1)
    await first.stop()
    assert run.starts == []

    second = await started(tmp_path, clock, run)
    assert second.next_run("weekly") == due
    await clock.advance(DAY)
    await second.stop()
    assert run.times == [due]


async def test_a_fire_missed_while_down_runs_once_within_the_grace(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock)
    first = await started(tmp_path, clock, run)
    due = first.next_run("weekly")
    assert due is not None
    await first.stop()
    await clock.advance((due - clock.now()).total_seconds() + 5 * 60)  # down; back 5 min late

    second = await started(tmp_path, clock, run)
    await clock.advance(0)
    assert run.times == [due + timedelta(minutes=5)]
    (fire,) = second.history("weekly")
    assert (fire.decision, fire.reason, fire.due) == ("run", "late", due)
    assert "300s after it was due" in fire.detail
    await clock.advance(WEEK)  # and not again until next week
    await second.stop()
    assert len(run.starts) == 2
    assert run.times[1] > due + timedelta(days=6)


async def test_a_fire_missed_beyond_the_grace_is_skipped_and_recorded(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock)
    first = await started(tmp_path, clock, run)
    due = first.next_run("weekly")
    assert due is not None
    await first.stop()
    await clock.advance((due - clock.now()).total_seconds() + 2 * 3600)  # back 2 h late

    second = await started(tmp_path, clock, run)
    await clock.advance(0)
    assert run.starts == []
    (fire,) = second.history("weekly")
    assert (fire.decision, fire.reason, fire.due) == ("skip", "missed", due)
    assert "beyond the 10m misfire grace" in fire.detail
    await clock.advance(WEEK)
    await second.stop()
    assert len(run.starts) == 1  # next week's fire runs normally
    assert [f.decision for f in second.history("weekly")] == ["skip", "run"]


async def test_the_misfire_grace_is_configurable(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock)
    first = await started(tmp_path, clock, run)
    due = first.next_run("weekly")
    assert due is not None
    await first.stop()
    await clock.advance((due - clock.now()).total_seconds() + 2 * 3600)

    second = await started(tmp_path, clock, run, misfire_grace=timedelta(hours=3))
    await clock.advance(0)
    await second.stop()
    assert len(run.starts) == 1


async def test_many_missed_fires_coalesce_into_one_run_never_a_burst(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock)
    first = scheduler(tmp_path, clock, run)
    first.upsert("hourly", experiment({"cron": "0 * * * *"}))
    await first.start()
    await clock.advance(1800)
    await first.stop()
    await clock.advance(5 * 3600)  # down from 00:30 to 05:30: 01:00 .. 05:00 missed

    second = scheduler(tmp_path, clock, run, misfire_grace=timedelta(minutes=45))
    second.upsert("hourly", experiment({"cron": "0 * * * *"}))
    await second.start()
    await clock.advance(0)
    assert [(at - MONDAY).total_seconds() / 3600 for at in run.times] == [5.5]
    skip, ran = second.history("hourly")
    assert (skip.decision, skip.reason) == ("skip", "missed")
    assert skip.fire_time == MONDAY + timedelta(hours=1)
    assert "coalesced" in skip.detail
    assert (ran.decision, ran.fire_time) == ("run", MONDAY + timedelta(hours=5))
    await clock.advance(3600)
    await second.stop()
    assert len(run.starts) == 2


async def test_a_long_downtime_of_a_minutely_job_is_one_record(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock)
    first = scheduler(tmp_path, clock, run)
    first.upsert("minutely", experiment({"cron": "* * * * *"}))
    await first.stop()
    await clock.advance(30 * DAY + 20)  # down for a month; back 20 s after a fire

    second = scheduler(tmp_path, clock, run)
    second.upsert("minutely", experiment({"cron": "* * * * *"}))
    await second.start()
    await clock.advance(0)
    await second.stop()
    history = second.history("minutely")
    assert [(f.decision, f.reason) for f in history] == [("skip", "missed"), ("run", "")]
    assert history[0].fire_time == MONDAY + timedelta(minutes=1)
    assert len(run.starts) == 1


async def test_a_run_cut_short_by_a_stop_is_not_repeated_after_the_restart(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock, duration=3600)
    first = await started(tmp_path, clock, run)
    due = first.next_run("weekly")
    assert due is not None
    await clock.advance((due - clock.now()).total_seconds() + 60)
    assert first.running("weekly")
    await first.stop()  # the daemon goes down mid-run: the run is cancelled (and rolled back)

    second = await started(tmp_path, clock, run)
    assert not second.running("weekly")
    await clock.advance(DAY)
    await second.stop()
    assert run.times == [due]
    (fire,) = second.history("weekly")
    assert (fire.decision, fire.status) == ("run", "cancelled")


async def test_a_changed_cron_after_a_restart_starts_from_now(tmp_path: Path) -> None:
    clock = ManualClock()
    run = FakeRun(clock)
    first = scheduler(tmp_path, clock, run)
    first.upsert("job", experiment({"cron": "0 3 * * *"}))
    await first.stop()
    await clock.advance(5 * 3600)  # 03:00 passed while down

    second = scheduler(tmp_path, clock, run)
    nxt = second.upsert("job", experiment({"cron": "0 4 * * *"}))  # and the file changed
    assert nxt == MONDAY + timedelta(days=1, hours=4)
    await second.start()
    await clock.advance(0)
    await second.stop()
    assert run.starts == []
    assert second.history("job") == []
