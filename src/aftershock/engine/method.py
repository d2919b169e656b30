"""The method: faults on their timeline, abort conditions watched, everything reverted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from aftershock.engine.context import RunContext
from aftershock.engine.plan import MethodOutcome, MethodResult
from aftershock.engine.timeline import fault_end, method_end
from aftershock.errors import AftershockError, DriverError
from aftershock.model.faults import FaultStepBase
from aftershock.model.results import FaultRecord
from aftershock.ports import Event, FaultRequest, Handle

__all__ = ["FaultBook", "MethodExecutor"]


class FaultBook:
    """Every fault of the run: what is applied now, and each fault's record."""

    def __init__(self) -> None:
        self.applied: dict[str, Handle] = {}
        self.records: dict[str, FaultRecord] = {}
        self.windows: dict[str, float] = {}

    def update(self, step: str, **changes: object) -> None:
        """Replace fields of a step's record."""
        self.records[step] = self.records[step].model_copy(update=changes)


class MethodExecutor:
    """Runs the fault steps concurrently and stops them all on abort, error or interrupt."""

    def __init__(
        self,
        ctx: RunContext,
        book: FaultBook,
        t0: float,
        abort_check: Callable[[float], str | None],
    ) -> None:
        self.ctx = ctx
        self.book = book
        self.t0 = t0
        self.abort_check = abort_check
        self.started: float | None = None
        self.ended: float | None = None

    def _t(self) -> float:
        return self.ctx.clock.monotonic() - self.t0

    def _emit(self, kind: str, **fields: object) -> None:
        self.ctx.events.emit(
            Event(kind=kind, at=self.ctx.clock.now(), run_id=self.ctx.run_id, fields=fields)
        )

    async def run(self) -> MethodResult:
        """Run every step; return how the method ended (faults are reverted by then)."""
        clock = self.ctx.clock
        steps = self.ctx.experiment.spec.method
        self.started = clock.monotonic()
        end = method_end(steps)
        tasks = [
            asyncio.create_task(self._fault(step, end), name=f"fault:{step.name}") for step in steps
        ]
        watcher = asyncio.create_task(self._watch(), name="abort-watch")
        try:
            pending: set[asyncio.Task[Any]] = {*tasks, watcher}
            while True:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if watcher in done:
                    reason = watcher.result()
                    decided = clock.monotonic()
                    await self._cancel(tasks)
                    errors = await self.rollback()
                    took = clock.monotonic() - decided
                    # How fast the abort was honoured is part of the record, not a guess.
                    self.ctx.journal.note(
                        "rollback.done",
                        t=self._t(),
                        after_abort_ms=round(took * 1000, 3),
                        errors=errors,
                    )
                    return MethodResult(MethodOutcome.ABORTED, str(reason))
                failed = [t for t in done if t.exception() is not None]
                if failed:
                    await self._cancel([*tasks, watcher])
                    error = failed[0].exception()
                    return MethodResult(MethodOutcome.ERRORED, str(error))
                if pending == {watcher}:
                    return MethodResult(MethodOutcome.COMPLETED)
        finally:
            self.ended = clock.monotonic()
            await self._cancel([*tasks, watcher])

    async def _cancel(self, tasks: Sequence[asyncio.Task[Any]]) -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _watch(self) -> str:
        while True:
            await self.ctx.clock.sleep(self.ctx.abort_poll)
            if self.ctx.kill_switch():
                self.ctx.journal.note("abort", reason="kill switch engaged", t=self._t())
                return "kill switch engaged"
            assert self.started is not None
            reason = self.abort_check(self.ctx.clock.monotonic() - self.started)
            if reason:
                self.ctx.journal.note("abort", reason=reason, t=self._t())
                self._emit("abort", reason=reason)
                return reason

    async def _sleep_until(self, offset: float) -> None:
        assert self.started is not None
        delay = self.started + offset - self.ctx.clock.monotonic()
        if delay > 0:
            await self.ctx.clock.sleep(delay)

    async def _fault(self, step: FaultStepBase, end: float) -> None:
        ctx = self.ctx
        await self._sleep_until(step.at.total_seconds())
        target = ctx.experiment.spec.targets[step.target]
        driver = ctx.drivers.get(target.kind)
        if driver is None:
            msg = f"{step.name}: no driver for {target.kind.value} targets"
            raise DriverError(msg, target=step.target)
        until = fault_end(step, end)
        request = FaultRequest(
            run_id=ctx.run_id,
            step=step.name,
            fault=str(getattr(step, "fault", "")),
            target_name=step.target,
            target=target,
            params=step.params,
            duration=timedelta(seconds=until - step.at.total_seconds()),
            seed=ctx.seed,
        )
        handle = await driver.prepare(request)
        lasts = timedelta(seconds=until - step.at.total_seconds())
        deadline: datetime = ctx.clock.now() + lasts + timedelta(seconds=ctx.revert_grace)
        self.book.records[step.name] = FaultRecord(
            step=step.name,
            fault=request.fault,
            target=step.target,
            resources=list(handle.resources),
        )
        ctx.journal.intent(handle, deadline)
        self.book.applied[step.name] = handle
        handle = await driver.inject(handle)
        self.book.applied[step.name] = handle
        ctx.journal.applied(handle)
        self.book.update(step.name, injected_at=ctx.clock.now())
        self.book.windows[step.name] = self._t()
        self._window(step.name, None)
        self._emit(
            "fault.injected",
            step=step.name,
            fault=request.fault,
            target=step.target,
            resources=list(handle.resources),
        )
        await self._sleep_until(until)
        await self.revert(step.name)

    async def revert(self, step: str) -> str | None:
        """Revert one applied fault; return the error text when it failed (it stays applied)."""
        handle = self.book.applied.get(step)
        if handle is None:
            return None
        target = self.ctx.experiment.spec.targets[handle.target]
        driver = self.ctx.drivers[target.kind]
        try:
            await driver.revert(handle)
        except AftershockError as exc:
            error = str(exc)
            self.ctx.journal.revert_failed(handle, error)
            self.book.update(step, error=error)
            self._emit("fault.revert_failed", step=step, error=error)
            return error
        del self.book.applied[step]
        self.ctx.journal.reverted(handle)
        now = self.ctx.clock.now()
        self.book.update(step, reverted_at=now, verified_at=now, error=None)
        self._window(step, self._t())
        self._emit("fault.reverted", step=step, fault=self.book.records[step].fault)
        return None

    def _window(self, step: str, end_t: float | None) -> None:
        # Written at injection (end_t null) and again at revert; readers keep the latest.
        record = self.book.records[step]
        self.ctx.journal.note(
            "window",
            step=step,
            fault=record.fault,
            target=record.target,
            start_t=self.book.windows.get(step),
            end_t=end_t,
        )

    async def rollback(self) -> list[str]:
        """Revert everything still applied, newest first; return the errors."""
        errors: list[str] = []
        for step in reversed(list(self.book.applied)):
            error = await self.revert(step)
            if error is not None:
                errors.append(f"{step}: {error}")
        return errors
