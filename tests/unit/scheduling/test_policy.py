"""The pure scheduling rules: blackout windows, jitter, the decision order, the misfire policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aftershock.model.common import Schedule
from aftershock.model.experiment import BudgetSpec
from aftershock.scheduling import Reason, active_blackout, catch_up, decide, jitter_for
from aftershock.slo.budget import gate

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)


def schedule(**fields: Any) -> Schedule:
    return Schedule.model_validate({"cron": "0 3 * * *", **fields})


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """``day`` 0 = Monday 2026-01-05, in UTC."""
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute, seconds=second)


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (at(0, 9), True),
        (at(0, 17, 0, 59), True),  # the end minute is inclusive
        (at(0, 17, 1), False),
        (at(0, 8, 59, 59), False),
        (at(1, 12), False),  # Tuesday is not listed
        (at(2, 12), True),
    ],
)
def test_a_daytime_window(moment: datetime, inside: bool) -> None:
    sched = schedule(blackout=[{"days": ["MON", "WED"], "from": "09:00", "to": "17:00"}])
    assert (active_blackout(sched, moment) is not None) is inside


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (at(4, 21, 59), False),  # Friday before 22:00
        (at(4, 22), True),
        (at(4, 23, 59), True),
        (at(5, 0, 0), True),  # Saturday morning belongs to Friday's window
        (at(5, 6, 0), True),
        (at(5, 6, 1), False),
        (at(5, 22, 30), False),  # Saturday evening: not listed
        (at(0, 3), False),  # Monday morning: Sunday is not listed
    ],
)
def test_a_window_crossing_midnight_belongs_to_the_day_it_starts(
    moment: datetime, inside: bool
) -> None:
    sched = schedule(blackout=[{"days": ["FRI"], "from": "22:00", "to": "06:00"}])
    assert (active_blackout(sched, moment) is not None) is inside


def test_blackout_is_evaluated_in_the_schedule_time_zone() -> None:
    sched = schedule(
        timezone="America/New_York", blackout=[{"days": ["MON"], "from": "00:00", "to": "01:00"}]
    )
    assert active_blackout(sched, at(0, 0, 30)) is None  # Sunday 19:30 in New York
    assert active_blackout(sched, at(0, 5, 30)) is not None  # Monday 00:30 in New York


def test_a_whole_day_window_by_default() -> None:
    sched = schedule(blackout=[{"days": ["SUN"]}])
    assert active_blackout(sched, at(6, 0, 0)) is not None
    assert active_blackout(sched, at(6, 23, 59, 59)) is not None
    assert active_blackout(sched, at(7, 0, 0)) is None


def test_jitter_is_deterministic_bounded_and_spread() -> None:
    maximum = timedelta(minutes=10)
    draws = [jitter_for("job", at(d, 3), maximum) for d in range(200)]
    assert draws == [jitter_for("job", at(d, 3), maximum) for d in range(200)]
    assert all(timedelta(0) <= j < maximum for j in draws)
    assert min(draws) < timedelta(minutes=2)
    assert max(draws) > timedelta(minutes=8)
    assert jitter_for("job", at(0, 3), maximum, seed="x") != jitter_for("job", at(0, 3), maximum)
    assert jitter_for("job", at(0, 3), timedelta(0)) == timedelta(0)


def test_jitter_does_not_depend_on_the_time_zone_of_the_fire_time() -> None:
    from zoneinfo import ZoneInfo

    berlin = at(0, 3).astimezone(ZoneInfo("Europe/Berlin"))
    assert jitter_for("job", berlin, timedelta(minutes=10)) == jitter_for(
        "job", at(0, 3), timedelta(minutes=10)
    )


def refused() -> Any:
    return gate(0.01, BudgetSpec.model_validate({"slo": "avail", "maxSpend": "5%"}))


def test_decision_order() -> None:
    blackout = [{"days": ["MON"], "reason": "freeze"}]
    everything = schedule(suspend=True, blackout=blackout)
    args: dict[str, Any] = {
        "moment": at(0, 3),
        "kill_switch": True,
        "running": True,
        "budget": refused(),
    }
    assert decide(everything, **args).reason is Reason.SUSPENDED
    assert decide(schedule(blackout=blackout), **args).reason is Reason.KILL_SWITCH
    args["kill_switch"] = False
    decision = decide(schedule(blackout=blackout), **args)
    assert decision.reason is Reason.BLACKOUT
    assert "freeze" in decision.detail
    assert decide(schedule(), **args).reason is Reason.RUNNING
    args["running"] = False
    decision = decide(schedule(), **args)
    assert (decision.run, decision.reason) == (False, Reason.BUDGET)
    assert decision.detail.startswith("budget gate refused: budget of SLO 'avail' has 1% left")
    args["budget"] = None
    assert decide(schedule(), **args).run


def test_concurrency_policies() -> None:
    args: dict[str, Any] = {"moment": at(0, 3), "kill_switch": False, "budget": None}
    assert not decide(schedule(), running=True, **args).run
    allow = decide(schedule(concurrencyPolicy="Allow"), running=True, **args)
    assert (allow.run, allow.reason) == (True, None)
    replace = decide(schedule(concurrencyPolicy="Replace"), running=True, **args)
    assert (replace.run, replace.reason) == (True, Reason.REPLACED)
    assert decide(schedule(concurrencyPolicy="Replace"), running=False, **args).reason is None


def test_catch_up_on_time() -> None:
    fire = at(0, 3)
    plan = catch_up([(fire, fire + timedelta(seconds=30))], now=fire + timedelta(seconds=30))
    assert plan.run == (fire, fire + timedelta(seconds=30))
    assert plan.late_by == timedelta(0)
    assert plan.missed == ()


def test_catch_up_runs_the_latest_within_grace_once() -> None:
    fires = [(at(0, h), at(0, h)) for h in range(1, 6)]
    plan = catch_up(fires, now=at(0, 5, 9))
    assert plan.run == (at(0, 5), at(0, 5))
    assert plan.late_by == timedelta(minutes=9)
    ((fire_time, _, detail),) = plan.missed
    assert fire_time == at(0, 1)
    assert "coalesced" in detail


def test_catch_up_skips_beyond_grace() -> None:
    plan = catch_up([(at(0, 3), at(0, 3))], now=at(0, 3, 11))
    assert plan.run is None
    ((fire_time, _, detail),) = plan.missed
    assert fire_time == at(0, 3)
    assert "11m late is beyond the 10m misfire grace" in detail
    assert catch_up([(at(0, 3), at(0, 3))], now=at(0, 3, 11), grace=timedelta(hours=1)).run


def test_catch_up_with_only_older_fires() -> None:
    plan = catch_up([], now=at(3, 0), earlier=(at(0, 3), at(0, 3, 5)))
    assert plan.run is None
    ((fire_time, due, detail),) = plan.missed
    assert (fire_time, due) == (at(0, 3), at(0, 3, 5))
    assert "beyond the 10m misfire grace" in detail
    assert catch_up([], now=at(3, 0)).missed == ()
