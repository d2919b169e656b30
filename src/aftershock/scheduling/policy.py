"""What the scheduler decides about one fire, as pure functions (no I/O, no APScheduler).

- **Blackout**: a moment, seen in the schedule's time zone, falls in a window
  ``{days, from, to}``. Both ends are inclusive at minute resolution (``to:
  "17:00"`` covers 17:00:59; the default ``23:59`` reaches the end of the day).
  A window whose ``from`` is later than its ``to`` crosses midnight and belongs
  to the day it starts on: ``{days: [FRI], from: "22:00", to: "06:00"}`` covers
  Friday 22:00 to Saturday 06:00.
- **Jitter**: a fire's delay is derived from a hash of the seed, the job key and
  the cron fire time, so a restarted daemon computes the same due time and never
  runs a fire twice because a new random draw moved it.
- **Decision** for a fire that is due, in this order: ``suspended``,
  ``kill-switch``, ``blackout``, ``running`` (concurrencyPolicy Forbid), ``budget``
  (the gate of ``slo.budget`` on what the ledger says is left). The first that
  applies skips the fire; otherwise it runs.
- **Misfire policy** (:func:`catch_up`): fires that came due while nothing was
  looking (the daemon was down, the host slept) are *coalesced*: at most one run,
  never a burst. The latest missed fire runs once if it is at most ``grace``
  late (10 minutes by default); older missed fires, and a latest one that is
  later than that, are recorded as skipped with the reason ``missed``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

from aftershock.errors import KILL_SWITCH_ENGAGED
from aftershock.model.common import Blackout, Schedule
from aftershock.slo.budget import GateDecision

__all__ = [
    "DEFAULT_MISFIRE_GRACE",
    "CatchUp",
    "Decision",
    "Fire",
    "Reason",
    "active_blackout",
    "catch_up",
    "decide",
    "jitter_for",
]

DEFAULT_MISFIRE_GRACE: Final = timedelta(minutes=10)
"""How late a missed fire may still run (once) after the scheduler comes back."""

_WEEKDAYS: Final = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


class Reason(StrEnum):
    """Why a fire was skipped (or, for ``late``/``replaced``, how it ran)."""

    SUSPENDED = "suspended"
    KILL_SWITCH = "kill-switch"
    BLACKOUT = "blackout"
    RUNNING = "running"
    BUDGET = "budget"
    MISSED = "missed"
    LATE = "late"
    REPLACED = "replaced"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """Run or skip one fire; ``reason`` is empty for a plain run."""

    run: bool
    reason: Reason | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fire:
    """One fire of a job as recorded: when it was due, what was decided, how the run ended."""

    id: int
    key: str
    fire_time: datetime
    """The cron time (aware, UTC)."""
    due: datetime
    """``fire_time`` plus this fire's jitter: when it was meant to start."""
    decided_at: datetime
    decision: str
    """``run`` or ``skip``."""
    reason: str
    """A :class:`Reason` value, or empty for a plain run on time."""
    detail: str
    """The human explanation (the budget gate's message, the blackout's reason, ...)."""
    status: str | None
    """How the run ended (``passed``, ``aborted``, ``cancelled``, ``error: ...``);
    ``None`` while it runs and for skipped fires."""


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _in_window(window: Blackout, local: datetime) -> bool:
    start, end = _minutes(window.from_), _minutes(window.to)
    now = local.hour * 60 + local.minute
    today = _WEEKDAYS[local.weekday()]
    yesterday = _WEEKDAYS[(local.weekday() - 1) % 7]
    days = {d.value for d in window.days}
    if start <= end:
        return today in days and start <= now <= end
    # Crosses midnight: the evening part is today's window, the morning part yesterday's.
    return (today in days and now >= start) or (yesterday in days and now <= end)


def active_blackout(schedule: Schedule, moment: datetime) -> Blackout | None:
    """The first blackout window of ``schedule`` that ``moment`` falls in, or ``None``."""
    local = moment.astimezone(ZoneInfo(schedule.timezone))
    for window in schedule.blackout:
        if _in_window(window, local):
            return window
    return None


def _describe(window: Blackout, timezone: str) -> str:
    days = ",".join(d.value for d in window.days)
    span = f"{days} {window.from_}-{window.to} {timezone}"
    return f"blackout {span}: {window.reason}" if window.reason else f"blackout {span}"


def jitter_for(key: str, fire_time: datetime, maximum: timedelta, *, seed: str = "") -> timedelta:
    """A delay in ``[0, maximum)`` that depends only on ``seed``, ``key`` and ``fire_time``."""
    if maximum <= timedelta(0):
        return timedelta(0)
    stamp = fire_time.astimezone(ZoneInfo("UTC")).isoformat()
    digest = hashlib.sha256(f"{seed}\x00{key}\x00{stamp}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    micros = int(fraction * (maximum // timedelta(microseconds=1)))
    return timedelta(microseconds=micros)


def decide(
    schedule: Schedule,
    *,
    moment: datetime,
    kill_switch: bool,
    running: bool,
    budget: GateDecision | None,
) -> Decision:
    """Run or skip a fire that is due at ``moment``.

    ``running`` is whether a previous run of the same job is still going; it
    skips only under ``Forbid`` (``Allow`` overlaps, ``Replace`` interrupts the
    old run). ``budget`` is the gate's answer for the experiment's budget SLO,
    ``None`` when the experiment has no budget.
    """
    window = active_blackout(schedule, moment)
    skips = (
        (schedule.suspend, Reason.SUSPENDED, "the schedule is suspended"),
        (
            kill_switch,
            Reason.KILL_SWITCH,
            KILL_SWITCH_ENGAGED,
        ),
        (
            window is not None,
            Reason.BLACKOUT,
            _describe(window, schedule.timezone) if window is not None else "",
        ),
        (
            running and schedule.concurrency_policy == "Forbid",
            Reason.RUNNING,
            "the previous run is still going (concurrencyPolicy: Forbid)",
        ),
        (
            budget is not None and not budget.allowed,
            Reason.BUDGET,
            f"budget gate refused: {budget.message}" if budget is not None else "",
        ),
    )
    for applies, reason, detail in skips:
        if applies:
            return Decision(run=False, reason=reason, detail=detail)
    if running and schedule.concurrency_policy == "Replace":
        return Decision(
            run=True,
            reason=Reason.REPLACED,
            detail="the previous run is interrupted and rolled back first"
            " (concurrencyPolicy: Replace)",
        )
    return Decision(run=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class CatchUp:
    """What to do with the fires that are due now (see the misfire policy above)."""

    run: tuple[datetime, datetime] | None
    """``(fire_time, due)`` of the one fire to decide about now, if any."""
    late_by: timedelta
    """How late that fire is (zero or a few milliseconds in normal operation)."""
    missed: tuple[tuple[datetime, datetime, str], ...]
    """``(fire_time, due, detail)`` of fires recorded as skipped (``missed``)."""


def _stamp(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M UTC")


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def catch_up(
    due: Sequence[tuple[datetime, datetime]],
    *,
    now: datetime,
    grace: timedelta = DEFAULT_MISFIRE_GRACE,
    earlier: tuple[datetime, datetime] | None = None,
) -> CatchUp:
    """Coalesce the fires that are due at ``now`` into at most one run.

    ``due`` lists ``(fire_time, due)`` oldest first, every ``due <= now``.
    ``earlier`` is the first missed fire before those, when the caller did not
    enumerate that far back (fires far older than ``grace`` never run).
    """
    first = earlier if earlier is not None else (due[0] if len(due) > 1 else None)
    if not due:
        if earlier is None:
            return CatchUp(run=None, late_by=timedelta(0), missed=())
        fire_time, due_at = earlier
        detail = (
            f"missed: due {_stamp(due_at)}, {_duration(now - due_at)} late is beyond the"
            f" {_duration(grace)} misfire grace (so are any later missed fires)"
        )
        return CatchUp(run=None, late_by=now - due_at, missed=((fire_time, due_at, detail),))
    fire_time, due_at = due[-1]
    late = now - due_at
    if late <= grace:
        missed: tuple[tuple[datetime, datetime, str], ...] = ()
        if first is not None:
            detail = (
                f"missed fires from {_stamp(first[1])} coalesced into the run due at"
                f" {_stamp(due_at)} (one run, never a burst)"
            )
            missed = ((first[0], first[1], detail),)
        return CatchUp(run=(fire_time, due_at), late_by=max(late, timedelta(0)), missed=missed)
    detail = (
        f"missed: due {_stamp(due_at)}, {_duration(late)} late is beyond the"
        f" {_duration(grace)} misfire grace"
    )
    if first is not None:
        detail += f" (coalesced with missed fires since {_stamp(first[1])})"
    return CatchUp(run=None, late_by=late, missed=((fire_time, due_at, detail),))
