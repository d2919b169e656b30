"""Cron expressions mean what crontab says, not what APScheduler 3's defaults would say."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from aftershock.model.common import Schedule
from aftershock.scheduling.cron import build_trigger

START = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday


def fires(cron: str, count: int, start: datetime = START, **fields: Any) -> list[datetime]:
    trigger = build_trigger(Schedule.model_validate({"cron": cron, **fields}))
    out: list[datetime] = []
    moment = start
    for _ in range(count):
        nxt = trigger.next_after(moment)
        assert nxt is not None
        out.append(nxt)
        moment = nxt
    return out


def weekdays(cron: str, count: int = 7) -> list[str]:
    return [f.strftime("%a") for f in fires(cron, count)]


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 3 * * 0", ["Sun"]),
        ("0 3 * * 7", ["Sun"]),
        ("0 3 * * 1", ["Mon"]),
        ("0 3 * * MON", ["Mon"]),
        ("0 3 * * mon", ["Mon"]),
        ("0 3 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 3 * * MON-FRI", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 3 * * SAT-SUN", ["Sat", "Sun"]),
        ("0 3 * * 6,0", ["Sat", "Sun"]),
        ("0 3 * * */2", ["Sun", "Tue", "Thu", "Sat"]),
        ("0 3 * * 1/3", ["Mon", "Thu"]),
    ],
)
def test_day_of_week_is_crontab_numbering(cron: str, expected: list[str]) -> None:
    assert sorted(set(weekdays(cron, 14)), key=expected.index) == expected


def test_the_time_zone_applies() -> None:
    (first,) = fires("0 3 * * *", 1, timezone="Europe/Berlin")
    assert first == datetime(2026, 1, 1, 2, 0, tzinfo=UTC)


def test_day_of_month_or_day_of_week_as_in_cron() -> None:
    days = [f.day for f in fires("0 3 13 * FRI", 6)]
    # January 2026: Fridays 2, 9, 16, 23, 30 and the 13th (a Tuesday)
    assert days == [2, 9, 13, 16, 23, 30]


def test_last_day_of_the_month() -> None:
    assert [f.day for f in fires("0 0 L * *", 3)] == [31, 28, 31]


def test_every_minute() -> None:
    first, second = fires("* * * * *", 2)
    assert (second - first).total_seconds() == 60
    assert first == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


@pytest.mark.parametrize("cron", ["0 3 * * 1#2", "0 3 * * 5L", "0 3 15W * *", "0 3 L-2 * *"])
def test_quartz_extensions_are_refused(cron: str) -> None:
    with pytest.raises(ValueError, match="not supported"):
        build_trigger(Schedule.model_validate({"cron": cron}))


BERLIN_FALL_BACK = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # Sunday 00:00 CEST; 03:00 -> 02:00


def test_a_fixed_hour_job_runs_once_when_the_clocks_go_back() -> None:
    runs = fires("30 2 * * *", 3, BERLIN_FALL_BACK, timezone="Europe/Berlin")
    assert runs == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST; not again at 02:30 CET
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
        datetime(2026, 10, 27, 1, 30, tzinfo=UTC),
    ]


def test_an_hourly_job_follows_elapsed_time_when_the_clocks_go_back() -> None:
    runs = fires("0 * * * *", 30, BERLIN_FALL_BACK, timezone="Europe/Berlin")
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(runs))
    local = [r.astimezone(ZoneInfo("Europe/Berlin")) for r in runs]
    assert [t.hour for t in local[:5]] == [1, 2, 2, 3, 4]  # the repeated hour runs too


def test_a_fixed_hour_job_still_runs_when_the_clocks_go_forward() -> None:
    start = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
    runs = fires("30 2 * * *", 2, start, timezone="Europe/Berlin")
    assert runs[0].date() == datetime(2026, 3, 29).date()
    assert runs[1] == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)
