"""The ordering rules of a run, checked on the plan alone: no I/O, no clock."""

from collections.abc import Callable

import pytest

from aftershock.engine.plan import (
    AwaitRecovery,
    CheckExpectations,
    Interrupted,
    Method,
    MethodOutcome,
    MethodResult,
    PlanOptions,
    Rollback,
    SteadyState,
    Step,
    StepError,
    Verdict,
    plan,
)
from aftershock.model.results import RunStatus

Answer = Callable[[Step], object]


def drive(options: PlanOptions, answer: Answer) -> tuple[list[Step], Verdict]:
    flow = plan(options)
    steps: list[Step] = []
    step = next(flow)
    try:
        while True:
            steps.append(step)
            result = answer(step)
            if isinstance(result, BaseException):
                step = flow.throw(result)
            else:
                step = flow.send(result)
    except StopIteration as stop:
        return steps, stop.value


def healthy(step: Step) -> object:
    if isinstance(step, SteadyState):
        return True
    if isinstance(step, Method):
        return MethodResult(MethodOutcome.COMPLETED)
    if isinstance(step, AwaitRecovery):
        return 1.5
    return []


OPTS = PlanOptions(steady_state=True, recover_within=30.0)


def test_a_healthy_run_passes_in_order() -> None:
    steps, verdict = drive(OPTS, healthy)
    assert steps == [
        SteadyState("before"),
        Method(),
        AwaitRecovery(30.0),
        SteadyState("after"),
        CheckExpectations(),
        Rollback(),
    ]
    assert verdict.status is RunStatus.PASSED


def test_failing_steady_state_before_skips_the_method_but_still_rolls_back() -> None:
    steps, verdict = drive(OPTS, lambda s: False if isinstance(s, SteadyState) else healthy(s))
    assert steps == [SteadyState("before"), Rollback()]
    assert verdict.status is RunStatus.FAILED
    assert "no fault injected" in verdict.reason


def test_abort_jumps_to_rollback() -> None:
    def answer(step: Step) -> object:
        if isinstance(step, Method):
            return MethodResult(MethodOutcome.ABORTED, "probe web collapsed")
        return healthy(step)

    steps, verdict = drive(OPTS, answer)
    assert steps[-2:] == [Method(), Rollback()]
    assert verdict == Verdict(RunStatus.ABORTED, "probe web collapsed")


@pytest.mark.parametrize(
    "at", [SteadyState("before"), Method(), AwaitRecovery(30.0), SteadyState("after")]
)
def test_rollback_runs_after_an_interrupt_anywhere(at: Step) -> None:
    steps, verdict = drive(OPTS, lambda s: Interrupted() if s == at else healthy(s))
    assert steps[-1] == Rollback()
    assert steps.count(Rollback()) == 1
    assert verdict.status is RunStatus.INTERRUPTED


def test_rollback_runs_after_an_error_and_reports_it() -> None:
    steps, verdict = drive(
        OPTS, lambda s: StepError("docker daemon gone") if isinstance(s, Method) else healthy(s)
    )
    assert steps[-1] == Rollback()
    assert verdict == Verdict(RunStatus.ERRORED, "docker daemon gone")


def test_unrecovered_and_unmet_expectations_fail_the_run() -> None:
    def answer(step: Step) -> object:
        if isinstance(step, AwaitRecovery):
            return None
        if isinstance(step, CheckExpectations):
            return ["spent 3% of the budget, more than maxSpend 2%"]
        return healthy(step)

    _, verdict = drive(OPTS, answer)
    assert verdict.status is RunStatus.FAILED
    assert verdict.notes == [
        "did not recover within 30s",
        "spent 3% of the budget, more than maxSpend 2%",
    ]


def test_a_failed_revert_turns_a_pass_into_an_error() -> None:
    _, verdict = drive(
        OPTS, lambda s: ["db: toxic still present"] if isinstance(s, Rollback) else healthy(s)
    )
    assert verdict.status is RunStatus.ERRORED
    assert "could not be reverted" in verdict.reason


def test_without_steady_state_there_is_nothing_to_compare() -> None:
    steps, verdict = drive(PlanOptions(steady_state=False, measure_recovery=False), healthy)
    assert steps == [Method(), CheckExpectations(), Rollback()]
    assert verdict.status is RunStatus.PASSED


@pytest.mark.parametrize("thrown", [Interrupted(), StepError("driver exploded")])
def test_a_failed_revert_after_an_interruption_or_error_is_an_error(thrown: Exception) -> None:
    flow = plan(OPTS)
    step = next(flow)
    assert step == SteadyState("before")
    step = flow.send(True)
    assert step == Method()
    step = flow.throw(thrown)
    assert step == Rollback()
    with pytest.raises(StopIteration) as stop:
        flow.send(["db: toxic still present"])
    verdict = stop.value.value
    assert verdict.status is RunStatus.ERRORED
    assert verdict.reason.endswith("1 fault(s) could not be reverted: db: toxic still present")
