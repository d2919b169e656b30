"""The plan of a run: a generator with no I/O that yields steps and receives their results.

The runner drives it::

    flow = plan(options)
    step = next(flow)
    while True:
        result = await execute(step)          # I/O happens here, not in the plan
        step = flow.send(result)              # StopIteration.value is the Verdict

and throws ``Interrupted`` or ``StepError`` into it when a step is cut short.
Whatever happens, the plan yields ``Rollback`` before it returns, so the
ordering rules ("rollback always runs", "an abort skips to rollback", "a
failing steady state before skips the method") are unit-tested without I/O.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from aftershock.model.results import RunStatus

__all__ = [
    "AwaitRecovery",
    "CheckExpectations",
    "Interrupted",
    "Method",
    "MethodOutcome",
    "MethodResult",
    "PlanOptions",
    "Rollback",
    "SteadyState",
    "Step",
    "StepError",
    "Verdict",
    "plan",
]


class Interrupted(Exception):
    """Thrown into the plan when the run is interrupted (SIGINT/SIGTERM)."""


class StepError(Exception):
    """Thrown into the plan when a step failed unexpectedly (a driver or probe error)."""


@dataclass(frozen=True, slots=True)
class SteadyState:
    """Sample the steady-state probes over their windows; result: ``bool``."""

    phase: Literal["before", "after"]


@dataclass(frozen=True, slots=True)
class Method:
    """Run the faults on their timeline, watching abort conditions; result: ``MethodResult``."""


@dataclass(frozen=True, slots=True)
class AwaitRecovery:
    """Wait until steady state holds again; result: seconds to recover, or ``None``."""

    within: float | None


@dataclass(frozen=True, slots=True)
class CheckExpectations:
    """Check budget spend and healing; result: ``list[str]`` of unmet expectations."""


@dataclass(frozen=True, slots=True)
class Rollback:
    """Revert everything still applied; result: ``list[str]`` of revert errors."""


Step = SteadyState | Method | AwaitRecovery | CheckExpectations | Rollback


class MethodOutcome(StrEnum):
    """How the method ended."""

    COMPLETED = "completed"
    ABORTED = "aborted"
    ERRORED = "errored"


@dataclass(frozen=True, slots=True)
class MethodResult:
    """The method's outcome, with the reason when it did not complete."""

    outcome: MethodOutcome
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanOptions:
    """What shapes the plan of one experiment."""

    steady_state: bool
    recover_within: float | None = None
    measure_recovery: bool = True


@dataclass(frozen=True, slots=True)
class Verdict:
    """The status of a run and why."""

    status: RunStatus
    reason: str = ""
    notes: list[str] = field(default_factory=list)


def plan(options: PlanOptions) -> Generator[Step, object, Verdict]:
    """Yield the steps of one run; return its verdict."""
    try:
        verdict = yield from _body(options)
    except Interrupted:
        errors = yield Rollback()
        return _after_rollback(Verdict(RunStatus.INTERRUPTED, "interrupted"), errors)
    except StepError as exc:
        errors = yield Rollback()
        return _after_rollback(Verdict(RunStatus.ERRORED, str(exc)), errors)
    errors = yield Rollback()
    return _after_rollback(verdict, errors)


def _after_rollback(verdict: Verdict, errors: object) -> Verdict:
    """A fault that could not be reverted makes the run errored, whatever it was before."""
    if isinstance(errors, list) and errors:
        reason = f"{len(errors)} fault(s) could not be reverted: {'; '.join(map(str, errors))}"
        if verdict.status not in (RunStatus.PASSED, RunStatus.FAILED):
            reason = f"{verdict.reason}; {reason}"
        return Verdict(RunStatus.ERRORED, reason, verdict.notes)
    return verdict


def _body(options: PlanOptions) -> Generator[Step, object, Verdict]:
    if options.steady_state:
        held = yield SteadyState("before")
        if not held:
            return Verdict(
                RunStatus.FAILED, "steady state did not hold before the method; no fault injected"
            )
    result = yield Method()
    assert isinstance(result, MethodResult)
    if result.outcome is MethodOutcome.ABORTED:
        return Verdict(RunStatus.ABORTED, result.reason)
    if result.outcome is MethodOutcome.ERRORED:
        return Verdict(RunStatus.ERRORED, result.reason)
    unmet: list[str] = []
    if options.measure_recovery:
        seconds = yield AwaitRecovery(options.recover_within)
        if seconds is None and options.recover_within is not None:
            unmet.append(f"did not recover within {options.recover_within:g}s")
    if options.steady_state:
        held_after = yield SteadyState("after")
        if not held_after:
            unmet.append("steady state did not hold after the method")
    expectations = yield CheckExpectations()
    assert isinstance(expectations, list)
    unmet.extend(str(e) for e in expectations)
    if unmet:
        return Verdict(RunStatus.FAILED, "; ".join(unmet), unmet)
    return Verdict(RunStatus.PASSED, "steady state held and every expectation was met")
