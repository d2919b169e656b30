"""Running one attempt of a playbook: its steps in order, with kopf's error vocabulary.

Driver actions go to the ``ActionDriver`` of their target's kind; ``http.call``
and ``command`` go to injected callables; ``wait.healthy`` waits on the watch.
Each step is raced against ``clock.sleep(timeout)``, never real time.

What a failed step means:

- ``TemporaryRemediationError(delay)``: the attempt failed; retry later with
  backoff (or after ``delay``);
- ``PermanentRemediationError``: give up and escalate;
- any other ``Exception`` (a timeout and an unrestored ``wait.healthy``
  included): as the step's ``errors`` says: temporary, permanent, or ignore
  (carry on with the next step). ``BaseException`` always propagates.

In a dry run nothing is called (not even ``wait.healthy`` blocks): each step
is only reported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aftershock.errors import PermanentRemediationError, TemporaryRemediationError
from aftershock.healer.events import STEP
from aftershock.healer.matching import Match
from aftershock.healer.timing import ClockTimeout, race
from aftershock.healer.watch import Watch
from aftershock.model.actions import (
    ACTIONS,
    WAIT_HEALTHY,
    ActionStepBase,
    ErrorsMode,
    WaitHealthyParams,
)
from aftershock.model.policy import HealingPolicySpec
from aftershock.model.targets import TargetKind
from aftershock.ports import ActionDriver, ActionRequest, Clock

__all__ = [
    "AttemptResult",
    "HealthNotRestored",
    "Outcome",
    "PlaybookRunner",
    "StandaloneAction",
    "classify",
]

StandaloneAction = Callable[[ActionStepBase], Awaitable[str]]
"""Carries out ``http.call`` or ``command``; returns a short description of what it did."""


class HealthNotRestored(Exception):
    """``wait.healthy`` saw no recovery in time."""


class Outcome(StrEnum):
    """How one attempt ended."""

    RESTORED = "restored"
    """Every step succeeded and a ``wait.healthy`` saw health back."""
    DONE = "done"
    """Every step succeeded; whether health comes back is judged later."""
    FAILED = "failed"
    """A step failed temporarily: retry after backoff."""
    PERMANENT = "permanent"
    """A step failed for good: escalate, no retry."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptResult:
    """The result of one attempt."""

    outcome: Outcome
    error: str = ""
    delay: float | None = None
    """The backoff a ``TemporaryRemediationError`` asked for."""
    step: int | None = None
    """The step that failed."""


def classify(step: ActionStepBase, exc: Exception) -> tuple[ErrorsMode, float | None]:
    """What a step's failure means: the mode, and the delay the action asked for.

    A ``PermanentRemediationError`` (the step cannot work as written: no
    handler, a target of the wrong kind) is permanent whatever the step says.
    Any other failure means what the step's ``errors`` says; a temporary one
    keeps the delay the action asked for.
    """
    if isinstance(exc, PermanentRemediationError):
        return ErrorsMode.PERMANENT, None
    if step.errors is ErrorsMode.TEMPORARY and isinstance(exc, TemporaryRemediationError):
        return ErrorsMode.TEMPORARY, exc.delay
    return step.errors, None


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class PlaybookRunner:
    """Runs attempts of playbooks of one policy."""

    def __init__(
        self,
        spec: HealingPolicySpec,
        *,
        actions: Mapping[TargetKind, ActionDriver],
        standalone: Mapping[str, StandaloneAction],
        clock: Clock,
        watches: Mapping[str, Watch],
        emit: Callable[..., None],
        dry_run: bool = False,
    ) -> None:
        self.spec = spec
        self.actions = actions
        self.standalone = standalone
        self.clock = clock
        self.watches = watches
        self.emit = emit
        self.dry_run = dry_run

    async def run(self, match: Match, *, attempt: int, incident: str | None) -> AttemptResult:
        """Run every step of ``match.playbook`` in order; stop at the first that counts."""
        restored = False
        for index, step in enumerate(match.playbook.steps):
            started = self.clock.monotonic()
            base: dict[str, Any] = {
                "probe": match.probe,
                "target": step.target or match.target,
                "subject": match.target,
                "playbook": match.playbook.name,
                "attempt": attempt,
                "incident": incident,
                "step": index,
                "action": step.action,
            }
            if self.dry_run:
                self.emit(STEP, **base, outcome="dry-run", duration=0.0, resources=[])
                continue
            try:
                resources = await race(
                    self.clock, self._perform(step), step.timeout.total_seconds()
                )
            except Exception as exc:  # noqa: BLE001 - the step's errors mode decides, below
                mode, delay = classify(step, exc)
                outcome = "timeout" if isinstance(exc, ClockTimeout) else "failed"
                if mode is ErrorsMode.IGNORE:
                    outcome = "ignored"
                self.emit(
                    STEP,
                    **base,
                    outcome=outcome,
                    duration=round(self.clock.monotonic() - started, 6),
                    resources=[],
                    error=_describe(exc),
                    errors=mode.value,
                )
                if mode is ErrorsMode.IGNORE:
                    continue
                failed = Outcome.PERMANENT if mode is ErrorsMode.PERMANENT else Outcome.FAILED
                return AttemptResult(outcome=failed, error=_describe(exc), delay=delay, step=index)
            restored = restored or step.action_type is WAIT_HEALTHY
            self.emit(
                STEP,
                **base,
                outcome="ok",
                duration=round(self.clock.monotonic() - started, 6),
                resources=resources,
            )
        return AttemptResult(outcome=Outcome.RESTORED if restored else Outcome.DONE)

    async def _perform(self, step: ActionStepBase) -> list[str]:
        action = step.action
        if step.action_type is WAIT_HEALTHY:
            return await self._wait_healthy(step)
        kind, _ = ACTIONS.get(action, (None, None))
        if kind is None:
            handler = self.standalone.get(action)
            if handler is None:
                msg = f"no handler for the standalone action {action!r}"
                raise PermanentRemediationError(msg)
            return [await handler(step)]
        name = step.target
        target = self.spec.targets.get(name) if name is not None else None
        if name is None or target is None:
            msg = f"{action}: unknown target {name!r}"
            raise PermanentRemediationError(msg)
        driver = self.actions.get(kind)
        if driver is None:
            msg = f"{action}: no {kind.value} driver is configured"
            raise PermanentRemediationError(msg)
        request = ActionRequest(action=action, target_name=name, target=target, params=step.params)
        return list(await driver.act(request))

    async def _wait_healthy(self, step: ActionStepBase) -> list[str]:
        params = step.params
        assert isinstance(params, WaitHealthyParams)
        watch = self.watches.get(params.probe)
        if watch is None:
            msg = f"wait.healthy: {params.probe!r} is not watched by this policy"
            raise PermanentRemediationError(msg)
        within = params.within.total_seconds()
        if not await watch.wait_healthy(within):
            msg = f"{params.probe} not healthy within {within:g}s"
            raise HealthNotRestored(msg)
        return [params.probe]
