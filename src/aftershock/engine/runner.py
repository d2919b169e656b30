"""The runner: executes the plan with the drivers and probes it is given.

It samples every probe for the whole run (the SLI series), evaluates abort
conditions during the method, measures recovery, books the error budget, and
writes everything to the run journal as it goes.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Generator
from datetime import datetime, timedelta

from aftershock.engine.context import RunContext
from aftershock.engine.dryrun import dry_run
from aftershock.engine.healingcheck import judge_healing
from aftershock.engine.method import FaultBook, MethodExecutor
from aftershock.engine.plan import (
    AwaitRecovery,
    CheckExpectations,
    Interrupted,
    Method,
    PlanOptions,
    Rollback,
    SteadyState,
    Step,
    StepError,
    Verdict,
    plan,
)
from aftershock.engine.timeline import recovered_since
from aftershock.errors import AftershockError
from aftershock.model.experiment import BudgetAbort, ProbeAbort
from aftershock.model.probes import Tolerance
from aftershock.model.results import BudgetResult, CheckResult, HealingResult, RunResult, RunStatus
from aftershock.ports import JSON, Event, ProbeResult
from aftershock.sampling import Sampler
from aftershock.slo.budget import budget_for
from aftershock.slo.stats import summarize
from aftershock.slo.tolerance import evaluate, sample_is_good
from aftershock.tasks import first_of, shielded

__all__ = ["Runner"]


def _goodness(tolerances: list[Tolerance]) -> Callable[[ProbeResult], bool]:
    """Per-sample health: meets every steady-state tolerance of its probe (or just ok)."""

    def good(sample: ProbeResult) -> bool:
        if not tolerances:
            return sample.ok
        return all(sample_is_good(t, sample) for t in tolerances)

    return good


class Runner:
    """Runs one experiment; call ``run()`` once, ``interrupt()`` from a signal handler."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.book = FaultBook()
        self.checks: list[CheckResult] = []
        self.samplers: dict[str, Sampler] = {}
        self.recovery: float | None = None
        self.budgets: list[BudgetResult] = []
        self.healing: HealingResult | None = None
        self.t0 = ctx.clock.monotonic()
        self.executor = MethodExecutor(ctx, self.book, self.t0, self._abort_reason)
        self.phase = "starting"
        self.result: RunResult | None = None
        """The result, once known; also after a cancellation (status interrupted)."""

    def interrupt(self) -> None:
        """Ask the run to stop: the current step is cut short, then everything is reverted.

        The same as setting ``ctx.stop``, which a caller can do before the
        runner exists. Cancelling ``run()`` also reverts everything, and then
        re-raises the cancellation.
        """
        self.ctx.stop.set()

    # ------------------------------------------------------------------ helpers
    def _t(self) -> float:
        return self.ctx.clock.monotonic() - self.t0

    def _emit(self, kind: str, **fields: object) -> None:
        self.ctx.events.emit(
            Event(kind=kind, at=self.ctx.clock.now(), run_id=self.ctx.run_id, fields=fields)
        )

    def _phase(self, phase: str) -> None:
        self.phase = phase
        self._note("phase", phase=phase, t=self._t())
        self._emit("phase", phase=phase)

    def _on_sample(self, probe: str, result: ProbeResult) -> None:
        fields = {
            "probe": probe,
            "t": result.started - self.t0,
            "ok": result.ok,
            "latency": result.latency,
            "status": result.status,
            "detail": result.detail,
        }
        self._note("sample", **fields)
        self._emit("sample", **fields)

    # ------------------------------------------------------------------ the run
    async def run(self) -> RunResult:
        """Run the experiment to its verdict; faults are reverted in every case."""
        ctx = self.ctx
        spec = ctx.experiment.spec
        started_at = ctx.clock.now()
        ctx.journal.note(
            "run.started",
            experiment=ctx.experiment.metadata.name,
            description=spec.description,
            seed=ctx.seed,
            dry_run=ctx.dry_run,
            forced=ctx.forced,
            started_at=started_at.isoformat(),
            probes=sorted(spec.probes),
            slo={
                name: {
                    "probe": s.probe,
                    "objective": s.objective,
                    "latency_seconds": s.latency.total_seconds() if s.latency else None,
                    "window_seconds": s.window.total_seconds(),
                }
                for name, s in spec.slo.items()
            },
        )
        try:
            verdict = await (dry_run(ctx, self._emit) if ctx.dry_run else self._drive())
        except asyncio.CancelledError:
            self.result = await shielded(self._cancelled(started_at))
            raise
        return self._finish(verdict, started_at)

    def _note(self, kind: str, **fields: JSON) -> bool:
        """Journal a note; a journal that fails is reported, and the run goes on.

        Only fault records must be durable before their effect (a failing
        ``intent`` stops its fault); a lost phase or sample does not.
        """
        try:
            self.ctx.journal.note(kind, **fields)
        except AftershockError as exc:
            self._emit("journal.failed", record=kind, error=str(exc))
            return False
        return True

    def _finish(self, verdict: Verdict, started_at: datetime) -> RunResult:
        self._phase("done")
        result = self._result(verdict, started_at)
        if not self._note("run.finished", result=result.model_dump(mode="json")):
            reason = f"{result.reason}; the journal could not record the verdict"
            result = result.model_copy(update={"status": RunStatus.ERRORED, "reason": reason})
        self._emit("run.finished", status=result.status.value, reason=result.reason)
        self.result = result
        return result

    async def _cancelled(self, started_at: datetime) -> RunResult:
        """The run's task was cancelled: revert everything, then record the run as interrupted."""
        self._phase("rollback")
        errors = await self.executor.rollback()
        verdict = Verdict(RunStatus.INTERRUPTED, "cancelled")
        if errors:
            failed = "; ".join(errors)
            verdict = Verdict(
                RunStatus.ERRORED,
                f"cancelled; {len(errors)} fault(s) could not be reverted: {failed}",
            )
        return self._finish(verdict, started_at)

    async def _drive(self) -> Verdict:
        spec = self.ctx.experiment.spec
        for name, probe in self.ctx.probes.items():
            self.samplers[name] = Sampler(
                probe,
                spec.probes[name].every,
                clock=self.ctx.clock,
                name=name,
                on_sample=functools.partial(self._on_sample, name),
            )
        measure = bool(spec.steady_state) or spec.expect.recover_within is not None
        within = spec.expect.recover_within.total_seconds() if spec.expect.recover_within else None
        flow = plan(
            PlanOptions(
                steady_state=bool(spec.steady_state),
                recover_within=within,
                measure_recovery=measure,
            )
        )
        # The samplers run for as long as the plan does, in the same task group.
        _, verdict = await first_of(
            self._loop(flow), *(sampler.run() for sampler in self.samplers.values())
        )
        assert isinstance(verdict, Verdict)  # samplers never return
        return verdict

    async def _loop(self, flow: Generator[Step, object, Verdict]) -> Verdict:
        step = next(flow)
        while True:
            try:
                outcome: object = await self._execute(step)
            except AftershockError as exc:
                outcome = StepError(str(exc))
            except Exception as exc:  # noqa: BLE001 - a broken step still gets its rollback
                outcome = StepError(f"{type(exc).__name__}: {exc}")
            try:
                step = flow.throw(outcome) if isinstance(outcome, Exception) else flow.send(outcome)
            except StopIteration as stop:
                verdict: Verdict = stop.value
                return verdict

    async def _execute(self, step: Step) -> object:
        if isinstance(step, Rollback):
            self._phase("rollback")
            return await shielded(self.executor.rollback())  # never cut short: faults must go
        which, outcome = await first_of(self._dispatch(step), self._stopped())
        return Interrupted() if which == 1 else outcome

    async def _stopped(self) -> object:
        await self.ctx.stop.wait()
        return None

    async def _dispatch(self, step: Step) -> object:
        if isinstance(step, SteadyState):
            return await self._steady_state(step.phase)
        if isinstance(step, Method):
            self._phase("method")
            return await self.executor.run()
        if isinstance(step, AwaitRecovery):
            self._phase("recovery")
            return await self._await_recovery(step.within)
        assert isinstance(step, CheckExpectations)
        return self._expectations()

    # ------------------------------------------------------------------ steps
    async def _steady_state(self, phase: str) -> bool:
        self._phase(f"steady-{phase}")
        checks = self.ctx.experiment.spec.steady_state
        start = self.ctx.clock.monotonic()
        await self.ctx.clock.sleep(max(c.over.total_seconds() for c in checks))
        held = True
        for check in checks:
            end = start + check.over.total_seconds()
            samples = [
                s for s in self.samplers[check.probe].samples(since=start) if s.started <= end
            ]
            result = evaluate(check.expect, samples, phase=phase, probe=check.probe)
            self.checks.append(result)
            held = held and result.ok
        self._emit("steady-state", phase=phase, held=held)
        return held

    async def _await_recovery(self, within: float | None) -> float | None:
        spec = self.ctx.experiment.spec
        assert self.executor.ended is not None
        ended = self.executor.ended
        confirm = self.ctx.recovery_confirm
        slack = confirm * max((p.every.total_seconds() for p in spec.probes.values()), default=1.0)
        deadline = ended + (within if within is not None else self.ctx.recovery_cap) + slack
        while True:
            moments: list[float] = []
            for name, sampler in self.samplers.items():
                tolerances = [c.expect for c in spec.steady_state if c.probe == name]
                if spec.steady_state and not tolerances:
                    continue
                samples = sampler.samples(since=ended)
                at = recovered_since(samples, _goodness(tolerances), confirm=confirm)
                if at is None:
                    break
                moments.append(at)
            else:
                seconds = max(0.0, max(moments, default=ended) - ended)
                if within is None or seconds <= within:
                    self.recovery = seconds
                    self._note("recovered", t=self._t(), seconds=seconds)
                    self._emit("recovered", seconds=seconds)
                    return seconds
                return None
            if self.ctx.clock.monotonic() >= deadline:
                return None
            await self.ctx.clock.sleep(self.ctx.abort_poll)

    def _budget(self, slo_name: str) -> BudgetResult:
        spec = self.ctx.experiment.spec
        slo = spec.slo[slo_name]
        sampler = self.samplers.get(slo.probe)
        samples = sampler.samples() if sampler else []
        window = None
        if self.executor.started is not None:
            window = (self.executor.started, self.executor.ended or self.ctx.clock.monotonic())
        max_spend = spec.budget.max_spend if spec.budget and spec.budget.slo == slo_name else None
        return budget_for(
            slo_name,
            slo,
            samples,
            every=spec.probes[slo.probe].every.total_seconds(),
            fault_window=window,
            baseline_until=self.executor.started,
            max_spend=max_spend,
            remaining_before=self.ctx.remaining_budget.get(slo_name),
        )

    def _abort_reason(self, elapsed: float) -> str | None:
        spec = self.ctx.experiment.spec
        for cond in spec.abort:
            if isinstance(cond, BudgetAbort):
                spent = self._budget(cond.budget).spent
                if spent > cond.spent_above:
                    return f"budget {cond.budget}: spent {spent:.2%}, above {cond.spent_above:.2%}"
            elif isinstance(cond, ProbeAbort) and elapsed >= cond.over.total_seconds():
                since = self.ctx.clock.monotonic() - cond.over.total_seconds()
                samples = self.samplers[cond.probe].samples(since=since)
                if samples and evaluate(cond.expect, samples, phase="abort", probe=cond.probe).ok:
                    over = cond.over.total_seconds()
                    return f"probe {cond.probe} met its abort condition over {over:g}s"
        return None

    def _expectations(self) -> list[str]:
        spec = self.ctx.experiment.spec
        unmet: list[str] = []
        self.budgets = [self._budget(name) for name in spec.slo]
        if spec.budget is not None:
            spent = next(b.spent for b in self.budgets if b.slo == spec.budget.slo)
            limit = spec.budget.max_spend
            if spent > limit:
                unmet.append(
                    f"spent {spent:.2%} of the {spec.budget.slo} budget, above maxSpend {limit:.2%}"
                )
        if self.ctx.healing is not None and self.executor.started is not None:
            self.healing, unmet_healing = judge_healing(
                self.ctx.healing,
                spec.expect,
                method_started=self.executor.started,
                t0=self.t0,
                injected_at=self.book.windows.values(),
            )
            unmet.extend(unmet_healing)
        return unmet

    def _result(self, verdict: Verdict, started_at: datetime) -> RunResult:
        spec = self.ctx.experiment.spec
        summaries = [summarize(name, s.samples()) for name, s in self.samplers.items()]
        started = self.executor.started
        ended = self.executor.ended

        def wall(mono: float | None) -> datetime | None:
            if mono is None:
                return None
            return self.ctx.clock.now() - timedelta(seconds=self.ctx.clock.monotonic() - mono)

        return RunResult(
            run_id=self.ctx.run_id,
            experiment=self.ctx.experiment.metadata.name,
            status=verdict.status,
            reason=verdict.reason,
            started_at=started_at,
            finished_at=self.ctx.clock.now(),
            method_started_at=wall(started),
            method_ended_at=wall(ended),
            forced=self.ctx.forced,
            dry_run=self.ctx.dry_run,
            seed=self.ctx.seed,
            checks=self.checks,
            faults=list(self.book.records.values()),
            probes=summaries,
            budgets=self.budgets,
            recovery_seconds=self.recovery,
            recover_within=spec.expect.recover_within.total_seconds()
            if spec.expect.recover_within
            else None,
            healing=self.healing,
            aborted_by=verdict.reason if verdict.status is RunStatus.ABORTED else None,
            notes=verdict.notes,
        )
