"""``ChaosScheduler``: experiments on cron schedules, over APScheduler 3.11's cron arithmetic.

Why not ``AsyncIOScheduler`` with a ``SQLAlchemyJobStore``:

- its timing is ``loop.call_later`` on real time, so a weekly schedule cannot be
  tested on ``aftershock.clock.ManualClock`` in milliseconds, and its misfire
  handling is decided by the wall clock of the process, not by our policy;
- its job store pickles jobs (a callable reference plus arguments), while our
  jobs are documents re-read from files or custom resources on every start:
  what must survive a restart is only *which fires were dealt with*;
- SQLAlchemy is not installed, and adding it for two small tables is heavy.

So the fire loop is ours, driven by the injected clock; APScheduler's
``CronTrigger`` (``scheduling/cron.py``) does the cron and time-zone arithmetic
(DST included); ``scheduling/store.py`` keeps a per-job anchor and the fire
history (``ScheduleStorage``; by default in SQLite,
``$AFTERSHOCK_HOME/schedule/jobs.sqlite3``); ``jobs.py``
says which fires of a job are due; and the pure rules (blackout, jitter, the
decision, the misfire policy) are in ``scheduling/policy.py``. The kill
switch and the budget gate are ``runtime.Admission``'s, the step every run
takes: the scheduler asks it at each fire, to record why a fire is skipped,
and the run asks it again when it starts.

Misfire policy: a fire missed while the scheduler was not running is run once
if it is at most ``misfire_grace`` late (10 minutes by default), otherwise it
is skipped and recorded as ``missed``; several missed fires coalesce into one
run, never a burst.

Concurrency: ``Forbid`` (default) skips a fire while the previous run of the
same key is going and records why; ``Allow`` runs both; ``Replace`` cancels the
previous run's task and starts the new run only after the old one has finished.
The run callable must therefore roll back on cancellation, as
``runtime.run_experiment`` does: the old run's faults are reverted before the
new run injects anything. ``stop()`` cancels running runs the same way.

Several schedulers on one store (two daemons with one ``$AFTERSHOCK_HOME``, or
any ``ScheduleStorage`` shared between hosts) fire each fire once: a fire is
recorded by compare-and-set on the job's stored anchor (``store.py``) before
it runs. The scheduler whose write lands first runs it; the others run
nothing, adopt the stored anchor and emit ``schedule.taken`` (key, fire time,
due time, adopted anchor, next run, detail) instead of ``schedule.fire``, so
the fire appears once in the history. A reload (``upsert``) of an unchanged
cron keeps the stored anchor, whoever advanced it. ``concurrencyPolicy``
applies to the runs of one scheduler: a run started by another scheduler is
not seen as running.

Blocking calls (the store's reads and writes, the admission's ledger and
lever) are made through ``blocking``: in the calling thread by default (a
local SQLite file answers in milliseconds), or in worker threads
(``in_thread``) for a store over the network, as the operator's is, so the
event loop (and the leader's lease renewal on it) goes on while the API
answers. A fire is recorded whole either way: a scheduler stopped while its
fire is being recorded waits for the record, starts no run, and records that
run as cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Final

import structlog

from aftershock.clock import SystemClock
from aftershock.errors import AftershockError, ExperimentInvalid, Problem
from aftershock.model.experiment import Experiment
from aftershock.ports import Clock, Event, EventSink
from aftershock.runtime import Admission
from aftershock.scheduling.blocking import Blocking, inline
from aftershock.scheduling.cron import build_trigger
from aftershock.scheduling.jobs import Job
from aftershock.scheduling.policy import (
    DEFAULT_MISFIRE_GRACE,
    Decision,
    Fire,
    Reason,
    catch_up,
    decide,
)
from aftershock.scheduling.runs import RunCallable, ScheduledRuns
from aftershock.scheduling.store import FireRow, JobRow, ScheduleStorage, ScheduleStore
from aftershock.settings import Settings

__all__ = ["ChaosScheduler"]

_log = structlog.get_logger("aftershock.schedule")

_LATE_AFTER: Final = timedelta(seconds=30)
"""A fire started later than this after its due time is recorded as ``late``."""
_RETRY_AFTER: Final = timedelta(minutes=1)


def _invalid(key: str, path: str, message: str) -> ExperimentInvalid:
    return ExperimentInvalid([Problem(file=key, line=0, column=0, path=path, message=message)])


class ChaosScheduler:
    """Runs experiments on their ``spec.schedule``; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        settings: Settings,
        run: RunCallable,
        clock: Clock | None = None,
        store_path: Path | None = None,
        store: ScheduleStorage | None = None,
        misfire_grace: timedelta = DEFAULT_MISFIRE_GRACE,
        events: EventSink | None = None,
        seed: str = "",
        recheck_every: float = 60.0,
        admission: Admission | None = None,
        blocking: Blocking = inline,
    ) -> None:
        """Open (or create) the store; nothing fires before ``start()``.

        The store is ``store``, or the SQLite file ``store_path`` (by default
        ``$AFTERSHOCK_HOME/schedule/jobs.sqlite3``); give at most one of them.

        ``seed`` feeds the deterministic jitter. ``recheck_every`` bounds each
        sleep, so a wall-clock jump (NTP, a suspended host) is noticed soon.
        ``admission`` (by default over ``settings``' lever and ledger) is asked
        about the kill switch and the budget gate at every fire; give the run
        callable the same one. ``blocking`` makes the store's and the
        admission's calls at fires (``inline`` or ``in_thread``).
        """
        self._admission = admission or Admission(settings)
        self._blocking = blocking
        self._stopping = False
        self._clock: Clock = clock or SystemClock()
        if store is not None and store_path is not None:
            msg = "give the scheduler a store or a store_path, not both"
            raise ValueError(msg)
        self._store: ScheduleStorage = store or ScheduleStore(
            store_path or settings.home / "schedule" / "jobs.sqlite3"
        )
        self._grace = misfire_grace
        self._events = events
        self._seed = seed
        self._recheck = recheck_every
        self._jobs: dict[str, Job] = {}
        self._runs = ScheduledRuns(run, finished=self._finish)
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ public API
    async def start(self) -> None:
        """Start firing (idempotent)."""
        self._stopping = False
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.create_task(self._loop(), name="aftershock-scheduler")

    async def stop(self) -> None:
        """Stop firing; cancel running runs (they roll back) and wait for them."""
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        await self._runs.stop()

    def upsert(self, key: str, experiment: Experiment) -> datetime | None:
        """Add or replace a job; return its next due time (UTC, jitter included).

        A job whose cron and time zone are unchanged keeps its stored anchor
        (however far this or another scheduler on the store has moved it), so
        replacing it (or re-adding it after a restart) neither repeats nor drops
        a fire; a changed cron starts from now. Raises ``ExperimentInvalid`` for
        an experiment without a schedule or with a cron APScheduler cannot run.
        """
        fresh, save = self._fresh(key, experiment)
        return self._adopt(fresh, save())

    async def upsert_async(self, key: str, experiment: Experiment) -> datetime | None:
        """:meth:`upsert`, with the store's read and write in a worker thread.

        For a store that does network I/O (the operator's, in the Kubernetes API):
        the event loop goes on while it answers.
        """
        fresh, save = self._fresh(key, experiment)
        return self._adopt(fresh, await asyncio.to_thread(save))

    def _fresh(self, key: str, experiment: Experiment) -> tuple[Job, Callable[[], JobRow]]:
        """The job as if new, and the store call that keeps its anchor or records it."""
        schedule = experiment.spec.schedule
        if schedule is None:
            raise _invalid(key, "spec.schedule", "the experiment has no schedule")
        try:
            trigger = build_trigger(schedule)
        except ValueError as exc:
            raise _invalid(key, "spec.schedule.cron", str(exc)) from exc
        now = self._clock.now()
        fresh = Job(key, experiment, schedule, trigger, now, self._seed)
        save = partial(
            self._store.save_job,
            key,
            cron=schedule.cron,
            timezone=schedule.timezone,
            anchor=now,
            next_fire=fresh.fire_time,
            now=now,
        )
        return fresh, save

    def _adopt(self, fresh: Job, stored: JobRow) -> datetime | None:
        # The stored anchor wins over ours when the schedule is unchanged: another scheduler
        # on the same store may have advanced it since this one last looked.
        job = fresh if stored.anchor == fresh.anchor else fresh.moved_to(stored.anchor)
        self._jobs[fresh.key] = job
        self._wake.set()
        return job.due

    def remove(self, key: str) -> None:
        """Stop scheduling ``key``; a run in progress finishes; the history is kept."""
        self._jobs.pop(key, None)
        self._store.delete_job(key)
        self._wake.set()

    async def remove_async(self, key: str) -> None:
        """:meth:`remove`, with the store's write in a worker thread."""
        self._jobs.pop(key, None)
        await asyncio.to_thread(self._store.delete_job, key)
        self._wake.set()

    def next_run(self, key: str) -> datetime | None:
        """When ``key`` is next due (UTC, jitter included); ``None`` if unknown or never."""
        job = self._jobs.get(key)
        return job.due if job is not None else None

    def history(self, key: str) -> list[Fire]:
        """Every recorded fire of ``key`` (also from before a restart), oldest first."""
        return self._store.history(key)

    def running(self, key: str) -> bool:
        """Whether a run of ``key`` is going."""
        return self._runs.running(key)

    def keys(self) -> list[str]:
        """The scheduled keys."""
        return sorted(self._jobs)

    # ------------------------------------------------------------ the loop
    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            now = self._clock.now()
            for job in list(self._jobs.values()):
                if job.due is not None and job.due <= now:
                    try:
                        await self._fire(job, now)
                    except Exception as exc:  # noqa: BLE001 - one job must not stop the others
                        # The anchor did not move: the fire is still due; try again soon.
                        _log.error("schedule.fire_failed", key=job.key, error=repr(exc))
                        job.due = now + _RETRY_AFTER
            await self._wait(self._delay(self._clock.now()))

    def _delay(self, now: datetime) -> float:
        delay = self._recheck
        for job in self._jobs.values():
            if job.due is not None:
                delay = min(delay, (job.due - now).total_seconds())
        return max(delay, 0.0)

    async def _wait(self, delay: float) -> None:
        sleeper = asyncio.ensure_future(self._clock.sleep(delay))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    async def _fire(self, job: Job, now: datetime) -> None:
        fires, earlier, anchor = job.due_fires(now, self._grace)
        plan = catch_up(fires, now=now, grace=self._grace, earlier=earlier)
        rows = [
            FireRow(
                fire_time=fire_time,
                due=due,
                decided_at=now,
                decision="skip",
                reason=Reason.MISSED.value,
                detail=detail,
            )
            for fire_time, due, detail in plan.missed
        ]
        decision: Decision | None = None
        if plan.run is not None:
            decision = await self._decide(job, now)
            if decision.run and decision.reason is None and plan.late_by > _LATE_AFTER:
                decision = Decision(
                    run=True,
                    reason=Reason.LATE,
                    detail=f"started {int(plan.late_by.total_seconds())}s after it was due"
                    f" (within the {int(self._grace.total_seconds())}s misfire grace)",
                )
            rows.append(
                FireRow(
                    fire_time=plan.run[0],
                    due=plan.run[1],
                    decided_at=now,
                    decision="run" if decision.run else "skip",
                    reason=decision.reason.value if decision.reason else "",
                    detail=decision.detail,
                )
            )
        planned = job.moved_to(anchor)
        recording = asyncio.ensure_future(
            self._blocking(
                partial(
                    self._store.record,
                    job.key,
                    rows,
                    cron=job.schedule.cron,
                    timezone=job.schedule.timezone,
                    expected_anchor=job.anchor,
                    anchor=anchor,
                    next_fire=planned.fire_time,
                    now=now,
                )
            )
        )
        try:
            ids = await asyncio.shield(recording)
        except asyncio.CancelledError:
            # Stopped while the store records: the record lands anyway; no run starts.
            ids = await recording
            if ids is not None and decision is not None and decision.run:
                await self._finish(job.key, ids[-1], "cancelled: the scheduler stopped")
            raise
        if ids is None:
            await self._taken(job, rows, anchor, now)
            return
        job.anchor, job.fire_time, job.due = anchor, planned.fire_time, planned.due
        current = self._current(job, planned)
        for fire_id, row in zip(ids, rows, strict=True):
            self._emit(
                "schedule.fire",
                now,
                key=job.key,
                fire_id=fire_id,
                next_run=job.due.isoformat() if job.due else None,
                **_row_fields(row),
            )
            _log.info("schedule.fire", key=job.key, **_row_fields(row))
        if decision is None or not decision.run:
            return
        if current is None or self._stopping:
            why = "the scheduler stopped" if self._stopping else "the schedule was removed"
            await self._finish(job.key, ids[-1], f"cancelled: {why} while the fire was recorded")
            return
        self._runs.start(
            job.key, current.experiment, ids[-1], replace=decision.reason is Reason.REPLACED
        )

    def _current(self, job: Job, planned: Job) -> Job | None:
        """The job of ``job.key`` now: replaced or removed while its fire was being recorded?

        A job replaced meanwhile (a reload) by one of the same cron takes the
        anchor just recorded; its run is of the experiment as reloaded.
        """
        current = self._jobs.get(job.key)
        if current is None or current is job:
            return current
        same = (current.schedule.cron, current.schedule.timezone) == (
            job.schedule.cron,
            job.schedule.timezone,
        )
        if same and current.anchor < planned.anchor:
            moved = current.moved_to(planned.anchor)
            current.anchor, current.fire_time, current.due = (
                moved.anchor,
                moved.fire_time,
                moved.due,
            )
        return current

    async def _taken(
        self, job: Job, rows: list[FireRow], attempted: datetime, now: datetime
    ) -> None:
        """The compare-and-set on the anchor failed: run nothing, adopt the stored anchor."""
        stored = await self._blocking(partial(self._store.job, job.key))
        if self._jobs.get(job.key) is not job:
            # Removed or reloaded here while the fire was being recorded: nothing to adopt
            # (and a removed job's row is not written back).
            return
        detail = "another scheduler on the same store dealt with this fire"
        if stored is None:
            detail = "another scheduler removed the job; it starts again from now"
            stored = await self._blocking(
                partial(
                    self._store.save_job,
                    job.key,
                    cron=job.schedule.cron,
                    timezone=job.schedule.timezone,
                    anchor=now,
                    next_fire=job.moved_to(now).fire_time,
                    now=now,
                )
            )
        anchor = stored.anchor
        if (stored.cron, stored.timezone) != (job.schedule.cron, job.schedule.timezone):
            # Not ours to adopt; this job's fires up to now are passed over until a reload.
            detail = f"the store holds another version of the job (cron {stored.cron!r})"
            anchor = attempted
        adopted = job.moved_to(anchor)
        progressed = anchor > job.anchor
        job.anchor, job.fire_time, job.due = adopted.anchor, adopted.fire_time, adopted.due
        if not progressed and job.due is not None and job.due <= now:
            job.due = now + _RETRY_AFTER  # no spinning on a record this job cannot move
        for row in rows:
            fields = {
                "key": job.key,
                "fire_time": row.fire_time.isoformat(),
                "due": row.due.isoformat(),
                "anchor": anchor.isoformat(),
                "next_run": job.due.isoformat() if job.due else None,
                "detail": detail,
            }
            self._emit("schedule.taken", now, **fields)
            _log.info("schedule.taken", **fields)

    async def _decide(self, job: Job, now: datetime) -> Decision:
        admission = await self._blocking(partial(self._admission.check, job.experiment, now))
        return decide(
            job.schedule,
            moment=now,
            kill_switch=admission.kill_switch,
            running=self.running(job.key),
            budget=admission.budget,
        )

    # ------------------------------------------------------------ runs
    async def _finish(self, key: str, fire_id: int, status: str) -> None:
        try:
            await self._blocking(partial(self._store.finish, key, fire_id, status))
        except AftershockError as exc:
            _log.error("schedule.record_failed", key=key, fire_id=fire_id, error=str(exc))
        now = self._clock.now()
        self._emit("schedule.finished", now, key=key, fire_id=fire_id, status=status)
        _log.info("schedule.finished", key=key, fire_id=fire_id, status=status)

    def _emit(self, kind: str, at: datetime, **fields: object) -> None:
        if self._events is not None:
            self._events.emit(Event(kind=kind, at=at, fields=fields))


def _row_fields(row: FireRow) -> dict[str, object]:
    return {
        "fire_time": row.fire_time.isoformat(),
        "due": row.due.isoformat(),
        "decision": row.decision,
        "reason": row.reason,
        "detail": row.detail,
    }
