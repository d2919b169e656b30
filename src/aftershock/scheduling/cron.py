"""Cron arithmetic: a ``spec.schedule`` as an APScheduler 3.11 trigger, with crontab semantics.

APScheduler 3 differs from crontab in two places, and users write crontab:

- it numbers weekdays from Monday = 0 (crontab: Sunday = 0 or 7), so numeric
  day-of-week fields are translated to explicit day names here;
- it ANDs day-of-month with day-of-week, while cron runs when *either* matches
  if both are restricted (``0 3 1 * MON`` = the 1st and every Monday), so that
  case becomes an ``OrTrigger`` of two cron triggers.

``L`` in day-of-month means the last day (APScheduler's ``last``); ``?`` means
``*``; ``W`` and ``#`` are refused with a clear message.

Daylight saving time, as in Vixie cron: a job at fixed hours (``30 2 * * *``)
runs once when the clocks go back, although 02:30 happens twice; a job whose
hour field is a wildcard (``*/30 * * * *``, ``0 * * * *``) follows elapsed time
and also runs in the repeated hour. When the clocks go forward, APScheduler
moves a fire in the skipped hour past the gap, so it still runs once that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol, cast
from zoneinfo import ZoneInfo

from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from aftershock.model.common import Schedule

__all__ = ["CronTimes", "FireTimes", "build_trigger"]

_DAYS: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class FireTimes(Protocol):
    """The one trigger method the scheduler uses."""

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The first fire time at or after ``now``."""
        ...


def _day(text: str) -> int:
    lowered = text.lower()
    if lowered in _DAYS:
        return _DAYS.index(lowered)
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text)
    msg = f"invalid day of week {text!r}; use 0-7 (0 and 7 are Sunday) or MON..SUN"
    raise ValueError(msg)


def _weekdays(field: str) -> str:
    """A crontab day-of-week field as APScheduler day names (``1-5`` -> ``mon,...,fri``)."""
    days: set[int] = set()
    for part in field.split(","):
        base, slash, step_text = part.partition("/")
        step = int(step_text) if slash and step_text.isdigit() else 1
        if slash and (not step_text.isdigit() or step < 1):
            msg = f"invalid step in day of week {part!r}"
            raise ValueError(msg)
        if base in {"*", "?"}:
            low, high = 0, 6
        elif "-" in base:
            first, last = base.split("-", 1)
            low, high = _day(first), _day(last)
            if high < low:  # SAT-MON wraps over the weekend
                high += 7
        else:
            low = _day(base)
            high = 6 if slash else low
        days.update(d % 7 for d in range(low, high + 1, step))
    return ",".join(_DAYS[d] for d in sorted(days))


def _refuse_extensions(dom: str, dow: str) -> None:
    """Quartz-style extensions that APScheduler 3 cannot express: say so instead of misfiring."""
    refused = (
        ("#" in dow, "day of week", dow, "'#' (nth weekday of the month)"),
        (dow[:1].isdigit() and dow.upper().endswith("L"), "day of week", dow, "'L' (last weekday)"),
        ("W" in dom.upper(), "day of month", dom, "'W' (nearest weekday)"),
        ("L" in dom.upper() and dom.upper() != "L", "day of month", dom, "'L' with an offset"),
    )
    for hit, what, field, feature in refused:
        if hit:
            msg = f"{what} {field!r}: {feature} is not supported"
            raise ValueError(msg)


def _restricted(field: str) -> bool:
    # As in Vixie cron: a field starting with '*' does not restrict the day.
    return not field.startswith(("*", "?"))


@dataclass(frozen=True, slots=True)
class CronTimes:
    """The fire times of one schedule."""

    trigger: FireTimes
    zone: ZoneInfo
    wall_clock: bool
    """Fixed-hour job: a wall-clock time repeated when the clocks go back fires once."""

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after``, in UTC (``None``: never again)."""
        found = self._first_after(after)
        if found is not None and self.wall_clock and self._wall(found) == self._wall(after):
            found = self._first_after(found)
        return found

    def _first_after(self, moment: datetime) -> datetime | None:
        # In UTC: local arithmetic would drop the fold and land in the first 02:30 again.
        start = moment.astimezone(UTC) + timedelta(microseconds=1)
        found = self.trigger.get_next_fire_time(None, start)
        return found.astimezone(UTC) if found is not None else None

    def _wall(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone).replace(tzinfo=None)


def build_trigger(schedule: Schedule) -> CronTimes:
    """The fire times of ``schedule.cron`` in ``schedule.timezone``; ``ValueError`` if unusable."""
    minute, hour, dom, month, dow = schedule.cron.split()
    _refuse_extensions(dom, dow)
    zone = ZoneInfo(schedule.timezone)
    day = "last" if dom.upper() == "L" else ("*" if dom == "?" else dom)
    weekdays = "*" if dow in {"*", "?"} else _weekdays(dow)

    def cron(day_field: str, weekday_field: str) -> CronTrigger:
        try:
            return CronTrigger(
                minute=minute,
                hour=hour,
                day=day_field,
                month=month,
                day_of_week=weekday_field,
                timezone=zone,
            )
        except ValueError as exc:
            msg = f"invalid cron expression {schedule.cron!r}: {exc}"
            raise ValueError(msg) from exc

    trigger: object = (
        OrTrigger([cron(day, "*"), cron("*", weekdays)])
        if _restricted(dom) and _restricted(dow)
        else cron(day, weekdays)
    )
    return CronTimes(cast("FireTimes", trigger), zone, wall_clock=_restricted(hour))
