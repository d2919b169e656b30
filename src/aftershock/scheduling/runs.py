"""The runs a ``ChaosScheduler`` starts: one task per fire, per key, owned here.

``concurrencyPolicy`` ``Replace`` cancels the key's running runs and starts the
new one only after they have finished (the run callable rolls back on
cancellation, as ``runtime.run_experiment`` does); ``stop()`` cancels every run
the same way and waits for them. Every run ends with one call of ``finished``
(key, fire id, status), whatever it ended with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeAlias

import structlog

from aftershock.errors import BudgetExhausted
from aftershock.model.experiment import Experiment
from aftershock.model.results import RunResult, RunStatus

__all__ = ["HasRunResult", "RunCallable", "RunStatusLike", "ScheduledRuns"]

_log = structlog.get_logger("aftershock.schedule")


class HasRunResult(Protocol):
    """Anything carrying a run's result, such as ``runtime.RunOutcome``."""

    @property
    def result(self) -> RunResult:
        """The finished run."""
        ...


RunStatusLike: TypeAlias = RunStatus | str | HasRunResult | None
"""What a run callable returns: an outcome, a status, or nothing (recorded as ``done``)."""

RunCallable: TypeAlias = Callable[[str, Experiment], Awaitable[RunStatusLike]]
"""``run(key, experiment)``: performs one scheduled run."""


def _status_of(value: RunStatusLike) -> str:
    if value is None:
        return "done"
    if isinstance(value, str):
        return str(value)
    return value.result.status.value


class ScheduledRuns:
    """The running runs of every key, and how each one's end is recorded."""

    def __init__(
        self, run: RunCallable, *, finished: Callable[[str, int, str], Awaitable[None]]
    ) -> None:
        self._run = run
        self._finished = finished
        self._running: dict[str, set[asyncio.Task[None]]] = {}

    def running(self, key: str) -> bool:
        """Whether a run of ``key`` is going."""
        return any(not t.done() for t in self._running.get(key, ()))

    def start(self, key: str, experiment: Experiment, fire_id: int, *, replace: bool) -> None:
        """Start the run of one fire; with ``replace``, after the key's running runs end."""
        group = self._running.setdefault(key, set())
        previous = [t for t in group if not t.done()] if replace else []
        for task in previous:
            task.cancel()
        task = asyncio.create_task(
            self._execute(key, experiment, fire_id, previous),
            name=f"aftershock-schedule:{key}:{fire_id}",
        )
        group.add(task)
        task.add_done_callback(group.discard)

    async def stop(self) -> None:
        """Cancel every running run (they roll back) and wait for them."""
        tasks = [t for group in self._running.values() for t in group if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _execute(
        self,
        key: str,
        experiment: Experiment,
        fire_id: int,
        previous: list[asyncio.Task[None]],
    ) -> None:
        try:
            if previous:
                await asyncio.wait(previous)
            status = _status_of(await self._run(key, experiment))
        except asyncio.CancelledError:
            # Recorded even when cancelled again meanwhile: the record is a store call.
            await asyncio.shield(self._finished(key, fire_id, "cancelled"))
            raise
        except BudgetExhausted as exc:
            status = f"refused: {exc}"
        except Exception as exc:  # noqa: BLE001 - a failed run must not stop the scheduler
            _log.warning("schedule.run_failed", key=key, error=repr(exc))
            status = f"error: {exc}"
        await self._finished(key, fire_id, status)
