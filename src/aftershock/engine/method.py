"""The method: faults on their timeline, abort conditions watched, everything reverted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from aftershock.engine.context import RunContext
from aftershock.engine.plan import MethodOutcome, MethodResult
from aftershock.engine.timeline import fault_end, method_end
from aftershock.errors import AftershockError, DriverError
from aftershock.model.faults import FaultStepBase
from aftershock.model.results import FaultRecord
from aftershock.ports import JSON, Event, Handle
from aftershock.tasks import first_of, shielded

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
        self.errors: dict[str, str] = {}
        """What is still wrong with each step's revert (kept until a later revert succeeds)."""

    def _t(self) -> float:
        return self.ctx.clock.monotonic() - self.t0

    def _emit(self, kind: str, **fields: object) -> None:
        self.ctx.events.emit(
            Event(kind=kind, at=self.ctx.clock.now(), run_id=self.ctx.run_id, fields=fields)
        )

    async def run(self) -> MethodResult:
        """Run every step; return how the method ended (faults are reverted by then).

        The steps and the abort watch run in one task group: the first to end
        the method (every step done, an abort, a failed step) cancels the rest.
        A cancellation of the caller cancels them all; what they applied stays
        in the book for the runner's rollback.
        """
        clock = self.ctx.clock
        self.started = clock.monotonic()
        try:
            which, reason = await first_of(self._steps(), self._watch())
        except Exception as exc:  # noqa: BLE001 - a failed step ends the method, errored
            return MethodResult(MethodOutcome.ERRORED, str(exc) or type(exc).__name__)
        finally:
            self.ended = clock.monotonic()
        if which == 0:
            return MethodResult(MethodOutcome.COMPLETED)
        decided = clock.monotonic()
        errors = await shielded(self.rollback())
        took = clock.monotonic() - decided
        # How fast the abort was honoured is part of the record, not a guess.
        self._note(
            "rollback.done", t=self._t(), after_abort_ms=round(took * 1000, 3), errors=errors
        )
        return MethodResult(MethodOutcome.ABORTED, str(reason))

    async def _steps(self) -> str:
        steps = self.ctx.experiment.spec.method
        end = method_end(steps)
        async with asyncio.TaskGroup() as group:
            for step in steps:
                group.create_task(self._fault(step, end), name=f"fault:{step.name}")
        return ""

    def _note(self, kind: str, **fields: JSON) -> None:
        """A journal note that must not end the run when the journal fails."""
        try:
            self.ctx.journal.note(kind, **fields)
        except AftershockError as exc:
            self._emit("journal.failed", record=kind, error=str(exc))

    async def _watch(self) -> str:
        while True:
            await self.ctx.clock.sleep(self.ctx.abort_poll)
            if self.ctx.kill_switch():
                self._note("abort", reason="kill switch engaged", t=self._t())
                return "kill switch engaged"
            assert self.started is not None
            reason = self.abort_check(self.ctx.clock.monotonic() - self.started)
            if reason:
                self._note("abort", reason=reason, t=self._t())
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
        request = ctx.fault_request(
            step, duration=timedelta(seconds=until - step.at.total_seconds())
        )
        handle = await driver.prepare(request)
        lasts = timedelta(seconds=until - step.at.total_seconds())
        deadline: datetime = ctx.clock.now() + lasts + timedelta(seconds=ctx.revert_grace)
        self.book.records[step.name] = FaultRecord(
            step=step.name,
            fault=step.fault,
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
            fault=step.fault,
            target=step.target,
            resources=list(handle.resources),
        )
        await self._sleep_until(until)
        await self.revert(step.name)

    async def revert(self, step: str) -> str | None:
        """Revert one applied fault; return the error text when it failed (it stays applied).

        A journal that cannot record the outcome does not stop anything: the
        fault is reverted (or not) all the same, and the journal's error is
        part of the returned text.
        """
        handle = self.book.applied.get(step)
        if handle is None:
            return None
        target = self.ctx.experiment.spec.targets[handle.target]
        driver = self.ctx.drivers[target.kind]
        try:
            await driver.revert(handle)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded per fault
            error = str(exc) or type(exc).__name__
            try:
                self.ctx.journal.revert_failed(handle, error)
            except AftershockError as journal_error:
                error = f"{error}; and the journal failed: {journal_error}"
            self.book.update(step, error=error)
            self.errors[step] = error
            self._emit("fault.revert_failed", step=step, error=error)
            return error
        del self.book.applied[step]
        now = self.ctx.clock.now()
        self.book.update(step, reverted_at=now, verified_at=now, error=None)
        self._emit("fault.reverted", step=step, fault=self.book.records[step].fault)
        try:
            self.ctx.journal.reverted(handle)
            self._window(step, self._t())
        except AftershockError as exc:
            error = f"reverted, but the journal could not record it: {exc}"
            self.book.update(step, error=error)
            self.errors[step] = error
            return error
        self.errors.pop(step, None)
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
        """Revert everything still applied, newest first, whatever fails; return the errors.

        Each error names its step, and covers the whole run: a step reverted
        earlier whose journal record failed is no longer applied but is still
        reported, so the run ends errored.
        """
        for step in reversed(list(self.book.applied)):
            await self.revert(step)
        return [f"{step}: {error}" for step, error in self.errors.items()]
