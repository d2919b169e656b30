"""Playbook steps and kopf's error vocabulary, through the healer on a manual clock."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from aftershock.errors import (
    DriverUnavailable,
    PermanentRemediationError,
    TemporaryRemediationError,
)
from aftershock.healer import Phase
from aftershock.healer.remediate import classify
from aftershock.model.actions import ActionStep, ActionStepBase, ErrorsMode
from aftershock.testing import ManualClock

from .helpers import RESTART, Harness, playbook, policy, wait_healthy

COMMAND = {"action": "command", "with": {"command": ["systemctl", "restart", "api"]}}


class Restarts:
    """A driver handler that fails as told, and a service that is up 2 s after a good restart."""

    def __init__(self, clock: ManualClock, *failures: BaseException | None) -> None:
        self.clock = clock
        self.failures = list(failures)
        self.fixed_at: float | None = None

    def handler(self, op: str, request: Any) -> None:
        if op != "act":
            return
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure
        self.fixed_at = self.clock.monotonic()

    def health(self, t: float) -> bool:
        return t < 10 or (self.fixed_at is not None and t >= self.fixed_at + 2)


def harness(
    steps: list[dict[str, Any]], *failures: BaseException | None, **limits: Any
) -> tuple[Harness, Restarts]:
    clock = ManualClock()
    service = Restarts(clock, *failures)
    doc = policy(playbook(steps=steps, **limits))
    h = Harness(doc, service.health, handler=service.handler, clock=clock)
    return h, service


async def test_temporary_error_is_retried_after_backoff() -> None:
    h, _ = harness([RESTART, wait_healthy()], TemporaryRemediationError("busy"))
    async with h.healer:
        await h.run_for(60)
    assert h.act_times() == [12, 17]  # detected at 12, backoff 5 s
    assert [f["outcome"] for f in h.fields("healer.outcome")] == ["failed", "restored"]
    assert h.escalations == []
    assert h.healer.watches["web"].phase is Phase.HEALTHY


async def test_temporary_error_may_ask_for_its_own_delay() -> None:
    h, _ = harness([RESTART], TemporaryRemediationError("rate limited", delay=30))
    async with h.healer:
        await h.run_for(60)
    assert h.act_times() == [12, 42]


async def test_permanent_error_escalates_once_and_never_retries() -> None:
    h, _ = harness([RESTART, wait_healthy()], *[PermanentRemediationError("no such unit")] * 5)
    async with h.healer:
        await h.run_for(1800)
    assert h.act_times() == [12]
    assert [(e.reason, e.playbook, e.target) for e in h.escalations] == [
        ("permanent-error", "restart-api", "api")
    ]
    assert h.escalations[0].detail == "PermanentRemediationError: no such unit"
    assert h.healer.watches["web"].phase is Phase.ESCALATED
    steps = h.fields("healer.action")
    assert [(f["action"], f["outcome"]) for f in steps] == [("process.restart", "failed")]
    assert h.decisions() == ["act", "escalated"]


@pytest.mark.parametrize(
    ("mode", "acts", "escalated"),
    [("temporary", [12, 17], []), ("permanent", [12], ["permanent-error"]), ("ignore", [12], [])],
)
async def test_other_errors_follow_the_steps_errors_mode(
    mode: str, acts: list[float], escalated: list[str]
) -> None:
    commands: list[list[str]] = []

    async def command(step: ActionStepBase) -> str:
        commands.append(list(step.params.command))  # type: ignore[attr-defined]
        return "exit 0"

    clock = ManualClock()
    service = Restarts(clock, DriverUnavailable("daemon down", target="api"))
    steps: list[dict[str, Any]] = [{**RESTART, "errors": mode}, COMMAND, wait_healthy("10s")]
    doc = policy(playbook(steps=steps))
    h = Harness(
        doc,
        lambda t: t < 10 or (bool(commands) and t >= 14),
        handler=service.handler,
        clock=clock,
        standalone={"command": command},
    )
    async with h.healer:
        await h.run_for(60)
    assert h.act_times() == acts
    assert [e.reason for e in h.escalations] == escalated
    first = h.fields("healer.action")[0]
    assert (first["outcome"], first["errors"]) == (
        "ignored" if mode == "ignore" else "failed",
        mode,
    )
    assert first["error"] == "DriverUnavailable: api: daemon down"
    if mode == "ignore":  # the next steps ran
        assert commands == [["systemctl", "restart", "api"]]
        assert [f["outcome"] for f in h.fields("healer.outcome")] == ["restored"]


async def test_step_timeout_runs_on_the_manual_clock() -> None:
    clock = ManualClock()
    calls: list[float] = []

    async def slow(op: str, request: Any) -> None:
        if op == "act":
            calls.append(clock.monotonic())
            if len(calls) == 1:
                await clock.sleep(3600)  # hangs: only the step's timeout ends it

    doc = policy(playbook(steps=[{**RESTART, "timeout": "10s"}]))
    h = Harness(doc, lambda t: t < 10 or len(calls) > 1, handler=slow, clock=clock)
    async with h.healer:
        await h.run_for(60)
    assert calls == [12, 27]  # timed out at 22, then backoff 5 s
    timeout = h.fields("healer.action")[0]
    assert (timeout["outcome"], timeout["duration"]) == ("timeout", 10.0)
    assert timeout["error"] == "ClockTimeout: timed out after 10s"
    assert clock.sleepers <= 1  # the hung call was cancelled, not left behind


async def test_wait_healthy_succeeds_when_the_probe_recovers() -> None:
    h, _ = harness([RESTART, wait_healthy("5s")])
    async with h.healer:
        await h.run_for(60)
    wait = h.fields("healer.action", action="wait.healthy")
    assert [(f["outcome"], f["duration"]) for f in wait] == [("ok", 3.0)]  # 2 s up + 2 samples
    assert [f["outcome"] for f in h.fields("healer.outcome")] == ["restored"]
    assert h.healer.throttler.breaker("api").failures == 0


async def test_wait_healthy_failing_counts_as_a_failed_remediation() -> None:
    clock = ManualClock()
    doc = policy(playbook(steps=[RESTART, wait_healthy("5s")]), breaker=(2, "1h"))
    h = Harness(doc, lambda t: t < 10, clock=clock)  # restarts never help
    async with h.healer:
        await h.run_for(60)
    wait = h.fields("healer.action", action="wait.healthy")
    assert [(f["outcome"], f["duration"]) for f in wait] == [("failed", 5.0)] * 2
    assert h.act_times() == [12, 22]
    assert [e.reason for e in h.escalations] == ["breaker-open"]


async def test_without_wait_healthy_the_verdict_waits_for_the_backoff() -> None:
    clock = ManualClock()
    doc = policy(playbook(steps=[RESTART], initial="10s"), breaker=(2, "1h"))
    h = Harness(doc, lambda t: t < 10 or t >= 30, clock=clock)  # the first restart "fails"
    async with h.healer:
        await h.run_for(60)
    outcomes = [f["outcome"] for f in h.fields("healer.outcome")]
    assert outcomes == ["done", "failed", "done", "restored"]  # 22: not healthy; 31: healthy
    assert h.act_times() == [12, 22]
    assert h.healer.throttler.breaker("api").failures == 0


async def test_missing_handlers_and_drivers_are_permanent() -> None:
    doc = policy(playbook(steps=[{"action": "http.call", "with": {"url": "http://127.0.0.1:9/"}}]))
    h = Harness(doc, lambda t: False)
    async with h.healer:
        await h.run_for(30)
    assert [e.reason for e in h.escalations] == ["permanent-error"]
    assert "no handler" in h.escalations[0].detail


def _step(errors: str) -> ActionStepBase:
    return TypeAdapter(ActionStep).validate_python(
        {"action": "docker.start", "target": "box", "errors": errors}
    )


@pytest.mark.parametrize("errors", ["temporary", "permanent", "ignore"])
def test_the_steps_errors_decides_what_a_failure_means(errors: str) -> None:
    step = _step(errors)
    mode = ErrorsMode(errors)
    delay = 3 if mode is ErrorsMode.TEMPORARY else None
    assert classify(step, TemporaryRemediationError("exit 1", delay=3)) == (mode, delay)
    assert classify(step, RuntimeError("x")) == (mode, None)
    # A step that cannot work as written is permanent whatever it says.
    assert classify(step, PermanentRemediationError("no handler")) == (ErrorsMode.PERMANENT, None)
