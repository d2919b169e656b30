"""``aftershock schedule DIR``: every scheduled experiment in a directory, reloaded on change.

Files are polled (their modification times and sizes, every ``reload_every``
seconds on the injected clock), so no inotify dependency is needed. A file that
stops loading is reported and its experiments keep their previous, valid
version; an experiment that disappears from a valid file, or whose file is
deleted, is unscheduled. Each fire runs ``runtime.run_experiment`` with the
experiment's ``healingPolicy`` read fresh from disk (relative to its file).
Decisions and outcomes go to structlog and to the JSON-lines schedule log
``$AFTERSHOCK_HOME/schedule/log.jsonl``.

Several daemons on one host may share one ``$AFTERSHOCK_HOME`` (a standby next
to the active one; the SQLite store in WAL mode needs one host): each fire runs
in one of them, and the others log ``schedule.taken`` for it (see
``scheduler.py``). A reload keeps the stored anchor of an unchanged schedule,
so it never moves back a fire another daemon has already dealt with.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import structlog

from aftershock import runtime
from aftershock.clock import SystemClock
from aftershock.errors import ExperimentInvalid, Problem
from aftershock.loading import load_file, load_paths
from aftershock.loading.loader import policy_path
from aftershock.model.experiment import Experiment
from aftershock.model.policy import HealingPolicy
from aftershock.ports import Clock, Event
from aftershock.scheduling.policy import DEFAULT_MISFIRE_GRACE
from aftershock.scheduling.runs import RunCallable, RunStatusLike
from aftershock.scheduling.scheduler import ChaosScheduler
from aftershock.settings import Settings

__all__ = [
    "SCHEDULE_LOG",
    "ScheduleLog",
    "experiment_key",
    "load_policy",
    "run_schedule",
]

SCHEDULE_LOG: Final = Path("schedule") / "log.jsonl"
"""The schedule log, relative to ``$AFTERSHOCK_HOME``."""

_SUFFIXES: Final = (".yaml", ".yml")
_log = structlog.get_logger("aftershock.schedule")


class ScheduleLog:
    """An ``EventSink`` appending one JSON object per line; also logs through structlog."""

    def __init__(
        self,
        path: Path,
        echo: Callable[[str], None] | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.path = path
        self.echo = echo
        self.clock: Clock = clock or SystemClock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def emit(self, event: Event) -> None:
        """Append the event (``schedule.fire``, ``schedule.taken``, ``schedule.finished``, ...)."""
        self.write(event.kind, at=event.at.isoformat(), **event.fields)
        if self.echo is None:
            return
        f = event.fields
        if event.kind == "schedule.fire":
            why = f" ({f.get('reason')}: {f.get('detail')})" if f.get("reason") else ""
            self.echo(
                f"{f.get('key')}: {f.get('decision')} fire of {f.get('fire_time')}{why};"
                f" next run {f.get('next_run') or 'never'}"
            )
        elif event.kind == "schedule.taken":
            self.echo(
                f"{f.get('key')}: fire of {f.get('fire_time')} not run here: {f.get('detail')};"
                f" next run {f.get('next_run') or 'never'}"
            )
        elif event.kind == "schedule.finished":
            self.echo(f"{f.get('key')}: run finished: {f.get('status')}")

    def write(self, kind: str, **fields: Any) -> None:
        """Append one record; a write error is logged, never raised."""
        record = {"event": kind, "at": self.clock.now().isoformat(), **fields}
        try:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, default=str) + "\n")
        except OSError as exc:
            _log.error("schedule.log_failed", path=str(self.path), error=str(exc))


def experiment_key(experiment: Experiment) -> str:
    """The job key of an experiment: ``name``, or ``namespace/name``."""
    meta = experiment.metadata
    return f"{meta.namespace}/{meta.name}" if meta.namespace else meta.name


def load_policy(experiment: Experiment, source: Path, settings: Settings) -> HealingPolicy | None:
    """The experiment's ``healingPolicy`` (relative to ``source``); ``ExperimentInvalid`` if bad."""
    if experiment.spec.healing_policy is None:
        return None
    path = policy_path(source, experiment.spec.healing_policy)
    documents = load_file(path, allowlist=settings.allow)
    policies = [d.document for d in documents if isinstance(d.document, HealingPolicy)]
    if len(policies) != 1:
        message = f"expected one HealingPolicy, found {len(policies)}"
        raise ExperimentInvalid(
            [Problem(file=str(path), line=0, column=0, path="", message=message)]
        )
    return policies[0]


@dataclass(frozen=True, slots=True)
class _Source:
    path: Path
    experiment: Experiment


def _snapshot(directory: Path) -> dict[Path, tuple[int, int]]:
    found: dict[Path, tuple[int, int]] = {}
    if not directory.is_dir():
        return found
    for path in directory.rglob("*"):
        if path.suffix in _SUFFIXES:
            with contextlib.suppress(OSError):
                stat = path.stat()
                found[path] = (stat.st_mtime_ns, stat.st_size)
    return found


class _Watcher:
    """Keeps the scheduler's jobs in line with the directory."""

    def __init__(
        self,
        directory: Path,
        scheduler: ChaosScheduler,
        settings: Settings,
        log: ScheduleLog,
        echo: Callable[[str], None],
        *,
        admission: runtime.Admission,
    ) -> None:
        self.directory = directory
        self.scheduler = scheduler
        self.settings = settings
        self.admission = admission
        self.log = log
        self.echo = echo
        self.sources: dict[str, _Source] = {}

    def _problem(self, problem: Problem) -> None:
        self.log.write("schedule.problem", problem=str(problem))
        _log.warning("schedule.problem", problem=str(problem))
        self.echo(f"problem: {problem}")

    def reload(self) -> None:
        documents, problems = load_paths([self.directory], allowlist=self.settings.allow)
        for problem in problems:
            self._problem(problem)
        failing = {p.file for p in problems}
        found: dict[str, _Source] = {}
        for loaded in documents:
            doc = loaded.document
            if not isinstance(doc, Experiment) or doc.spec.schedule is None:
                continue
            key = experiment_key(doc)
            if key in found:
                message = f"experiment {key!r} is also in {found[key].path}; this one is ignored"
                where = Problem(
                    file=loaded.source,
                    line=loaded.line,
                    column=1,
                    path="metadata.name",
                    message=message,
                )
                self._problem(where)
                continue
            found[key] = _Source(Path(loaded.source), doc)
        for key in sorted(self.sources.keys() - found.keys()):
            if str(self.sources[key].path) in failing:
                continue  # its file does not load right now: keep the last valid version
            self.scheduler.remove(key)
            del self.sources[key]
            self.log.write("schedule.removed", key=key)
            self.echo(f"unscheduled {key}")
        for key, source in found.items():
            if self.sources.get(key) == source:
                continue
            self._upsert(key, source)

    def _upsert(self, key: str, source: _Source) -> None:
        try:
            due = self.scheduler.upsert(key, source.experiment)
        except ExperimentInvalid as exc:
            for problem in exc.problems:
                self._problem(replace(problem, file=str(source.path)))
            return
        self.sources[key] = source
        schedule = source.experiment.spec.schedule
        assert schedule is not None
        when = due.isoformat() if due is not None else "never"
        local = (
            f"{due.astimezone(ZoneInfo(schedule.timezone)):%Y-%m-%d %H:%M:%S %Z}"
            if due is not None
            else "never"
        )
        self.log.write(
            "schedule.loaded",
            key=key,
            file=str(source.path),
            cron=schedule.cron,
            timezone=schedule.timezone,
            next_run=when,
        )
        _log.info("schedule.loaded", key=key, file=str(source.path), next_run=when)
        self.echo(
            f"scheduled {key} ({source.path}): cron {schedule.cron!r} {schedule.timezone},"
            f" next run {local} ({when})"
        )

    async def run(self, key: str, experiment: Experiment, clock: Clock) -> RunStatusLike:
        source = self.sources.get(key)
        policy = load_policy(experiment, source.path, self.settings) if source else None
        # A cancellation (Replace, stop) reverts the run's faults before it propagates.
        outcome = await runtime.run_experiment(
            experiment, settings=self.settings, policy=policy, clock=clock, admission=self.admission
        )
        self.log.write(
            "schedule.run",
            key=key,
            run_id=outcome.result.run_id,
            status=outcome.result.status.value,
            reason=outcome.result.reason,
            journal=str(outcome.journal),
        )
        return outcome


async def run_schedule(
    directory: Path,
    *,
    settings: Settings,
    stop: asyncio.Event,
    clock: Clock | None = None,
    reload_every: float = 2.0,
    run: RunCallable | None = None,
    echo: Callable[[str], None] | None = None,
    misfire_grace: timedelta = DEFAULT_MISFIRE_GRACE,
) -> None:
    """Schedule every experiment with ``spec.schedule`` under ``directory`` until ``stop`` is set.

    ``run`` replaces the real run (tests); ``echo`` receives one human line per
    loaded or removed job and per problem (the CLI prints them).
    """
    clock = clock or SystemClock()
    echo = echo or (lambda _line: None)
    log = ScheduleLog(settings.home / SCHEDULE_LOG, echo, clock=clock)
    holder: list[_Watcher] = []

    async def real_run(key: str, experiment: Experiment) -> RunStatusLike:
        return await holder[0].run(key, experiment, clock)

    admission = runtime.Admission(settings)  # one gate for the scheduler's fires and its runs
    scheduler = ChaosScheduler(
        settings=settings,
        run=run or real_run,
        clock=clock,
        misfire_grace=misfire_grace,
        events=log,
        admission=admission,
    )
    watcher = _Watcher(directory, scheduler, settings, log, echo, admission=admission)
    holder.append(watcher)
    snapshot = _snapshot(directory)
    watcher.reload()
    log.write("schedule.started", directory=str(directory), jobs=scheduler.keys())
    await scheduler.start()
    try:
        while not stop.is_set():
            await _sleep_or_stop(clock, reload_every, stop)
            current = _snapshot(directory)
            if current != snapshot and not stop.is_set():
                snapshot = current
                watcher.reload()
    finally:
        await scheduler.stop()
        log.write("schedule.stopped", directory=str(directory))


async def _sleep_or_stop(clock: Clock, seconds: float, stop: asyncio.Event) -> None:
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        stopper.cancel()
