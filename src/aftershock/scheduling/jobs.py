"""One scheduled job: its cron, its anchor, when it is next due, which fires are due now.

No I/O: the scheduler persists the anchor (``store.py``) and decides about the
fires (``policy.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, NamedTuple

from aftershock.model.common import Schedule
from aftershock.model.experiment import Experiment
from aftershock.scheduling.cron import CronTimes
from aftershock.scheduling.policy import jitter_for

__all__ = ["DueFires", "Job"]

_MAX_CATCH_UP: Final = 10_000


class DueFires(NamedTuple):
    """What ``Job.due_fires`` found."""

    fires: list[tuple[datetime, datetime]]
    """``(fire_time, due)`` of the fires due by now that may still be within the grace."""
    earlier: tuple[datetime, datetime] | None
    """The first missed fire before those, if any (too late to run whatever happens)."""
    anchor: datetime
    """The anchor once these are dealt with."""


@dataclass(slots=True, eq=False)
class Job:
    """A key's experiment, schedule and cron, and where it stands."""

    key: str
    experiment: Experiment
    schedule: Schedule
    trigger: CronTimes
    anchor: datetime
    """Every fire time up to here has been dealt with."""
    seed: str = ""
    fire_time: datetime | None = None
    """The next cron time after the anchor."""
    due: datetime | None = None
    """``fire_time`` plus its jitter."""

    def __post_init__(self) -> None:
        self.plan()

    def jitter(self, fire_time: datetime) -> timedelta:
        """This job's deterministic delay for one fire."""
        return jitter_for(self.key, fire_time, self.schedule.jitter, seed=self.seed)

    def plan(self) -> None:
        """Compute the next fire and due time from the anchor."""
        self.fire_time = self.trigger.next_after(self.anchor)
        self.due = self.fire_time + self.jitter(self.fire_time) if self.fire_time else None

    def moved_to(self, anchor: datetime) -> Job:
        """A copy whose anchor is ``anchor``, planned."""
        return Job(self.key, self.experiment, self.schedule, self.trigger, anchor, self.seed)

    def due_fires(self, now: datetime, grace: timedelta) -> DueFires:
        """The fires due by ``now``; fires far older than ``grace`` are only noted, not listed.

        Enumerating is bounded, so a minutely job that was down for a month
        costs a handful of cron computations, not forty thousand.
        """
        if self.fire_time is None or self.due is None or self.due > now:
            return DueFires([], None, self.anchor)
        # Fires before this cannot be within the grace whatever their jitter.
        window = now - grace - self.schedule.jitter
        scan_from = self.anchor
        earlier: tuple[datetime, datetime] | None = None
        if self.fire_time < window:
            earlier = (self.fire_time, self.due)
            scan_from = max(self.anchor, window - timedelta(microseconds=1))
        fires: list[tuple[datetime, datetime]] = []
        fire = self.trigger.next_after(scan_from)
        while fire is not None and fire <= now and len(fires) < _MAX_CATCH_UP:
            due = fire + self.jitter(fire)
            if due > now:
                break
            fires.append((fire, due))
            fire = self.trigger.next_after(fire)
        return DueFires(fires, earlier, fires[-1][0] if fires else scan_from)
