"""Attempts in flight: one task per attempt, one attempt at a time per target, and verdicts.

An attempt's outcome feeds the gates: a restored target resets backoff and
closes the breaker; a failure starts the next backoff delay and counts for the
breaker (which, when it opens, escalates once). An attempt whose steps all ran
without a ``wait.healthy`` is *pending*: a success if the watch turns healthy
before its backoff runs out, else a failure.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aftershock.healer.decisions import DecisionLog
from aftershock.healer.escalation import Escalator
from aftershock.healer.events import OUTCOME, Emitter
from aftershock.healer.incidents import Incident
from aftershock.healer.matching import Match
from aftershock.healer.remediate import AttemptResult, Outcome, PlaybookRunner
from aftershock.healer.state import BreakerPhase
from aftershock.healer.throttling import SLACK, Decision, Permit, Throttler
from aftershock.healer.watch import Phase, Watch

__all__ = ["Attempts"]


@dataclass(frozen=True, slots=True)
class _Pending:
    """An attempt whose steps all ran, waiting to see health back before ``deadline``."""

    match: Match
    incident: Incident | None
    deadline: float


class Attempts:
    """Starts attempts as tasks and turns their results into verdicts for the gates."""

    def __init__(
        self,
        *,
        runner: PlaybookRunner,
        throttler: Throttler,
        escalator: Escalator,
        watches: Mapping[str, Watch],
        log: DecisionLog,
        emit: Emitter,
        wakeup: asyncio.Event,
    ) -> None:
        self.runner = runner
        self.throttler = throttler
        self.escalator = escalator
        self.watches = watches
        self.log = log
        self.emit = emit
        self.wakeup = wakeup
        self.busy: dict[str, asyncio.Task[None]] = {}
        """The attempt in flight on each target it touches."""
        self.pending: dict[str, _Pending] = {}
        """Attempts awaiting health, by watch name."""
        self.acted: deque[tuple[float, str]] = deque(maxlen=10_000)
        """(monotonic time, playbook) of recent attempts."""
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, match: Match, incident: Incident | None, permit: Permit, now: float) -> None:
        """Count the attempt and run it in its own task."""
        attempt = len(self.throttler.attempts(match.playbook, now)) + 1
        self.throttler.started(match.playbook, match.target, now)
        if self.runner.dry_run:
            permit = Permit(decision=Decision.DRY_RUN, trial=permit.trial)
        self.log.say(match, permit, incident=incident, attempt=attempt)
        clock = self.emit.clock
        mono = clock.monotonic()
        # A dry run decides but touches nothing: it must not count as the healer having acted.
        if not self.runner.dry_run:
            self.acted.append((mono, match.playbook.name))
            if incident is not None:
                incident.acted(match.playbook.name, clock.now(), mono)
        self.watches[match.probe].enter(Phase.REMEDIATING, f"playbook {match.playbook.name}")
        task = asyncio.get_running_loop().create_task(
            self._run(match, incident, attempt), name=f"heal:{self.emit.policy}/{match.target}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        for target in match.targets:
            self.busy[target] = task

    def judge(self, now: float) -> list[float]:
        """Fail pending attempts whose time is up; return the seconds until the others' is."""
        dues: list[float] = []
        for name, pending in list(self.pending.items()):
            if now + SLACK >= pending.deadline:
                del self.pending[name]
                self.outcome(pending.match, pending.incident, Outcome.FAILED, verified=False)
                self.count_failure(pending.match, pending.incident, now)
            else:
                dues.append(pending.deadline - now)
        return dues

    def restored(self, probe: str) -> None:
        """The watch turned healthy: a pending attempt on it succeeded."""
        pending = self.pending.pop(probe, None)
        if pending is not None:
            self.throttler.succeeded(pending.match.playbook, pending.match.target)
            self.outcome(pending.match, pending.incident, Outcome.RESTORED, verified=True)

    async def cancel(self) -> None:
        """Cancel every attempt in flight and wait for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, match: Match, incident: Incident | None, attempt: int) -> None:
        watch = self.watches[match.probe]
        try:
            result = await self.runner.run(
                match, attempt=attempt, incident=incident.id if incident else None
            )
        except asyncio.CancelledError:
            self._release(match)
            watch.leave("attempt cancelled")
            self.outcome(match, incident, "cancelled", verified=False)
            raise
        except Exception as exc:  # noqa: BLE001 - a bug here must not stop the healing
            result = AttemptResult(outcome=Outcome.FAILED, error=f"{type(exc).__name__}: {exc}")
        self._release(match)
        self._settle(match, incident, result)
        if watch.phase is Phase.REMEDIATING:
            watch.leave(f"attempt {result.outcome.value}")

    def _release(self, match: Match) -> None:
        for target in match.targets:
            self.busy.pop(target, None)
        self.wakeup.set()

    def _settle(self, match: Match, incident: Incident | None, result: AttemptResult) -> None:
        now = self.emit.clock.now().timestamp()
        watch = self.watches[match.probe]
        outcome = result.outcome
        if outcome is Outcome.RESTORED or (outcome is Outcome.DONE and watch.healthy):
            self.throttler.succeeded(match.playbook, match.target)
            self.outcome(match, incident, Outcome.RESTORED, verified=True)
            return
        delay = self.throttler.backoff(match.playbook, now, result.delay)
        self.outcome(match, incident, outcome, verified=False, delay=delay, error=result.error)
        if outcome is Outcome.DONE:
            self.pending[match.probe] = _Pending(match, incident, now + delay)
            watch.enter(Phase.RECOVERING, "steps done; waiting for health")
            return
        self.count_failure(match, incident, now)
        if outcome is Outcome.PERMANENT:
            if incident is not None:
                incident.given_up.add(match.playbook.name)
            self.escalate(match, incident, "permanent-error", result.error)

    def count_failure(self, match: Match, incident: Incident | None, now: float) -> None:
        """A remediation failed or did not restore health: feed the breaker."""
        if self.throttler.failed(match.target, now) is BreakerPhase.OPEN:
            self.escalate(match, incident, "breaker-open", "remediations keep failing")

    def escalate(self, match: Match, incident: Incident | None, reason: str, detail: str) -> None:
        """Give up on the target for this incident; tell a human once per episode.

        The episode ends when a remediation restores the target (the breaker
        closes) or on a manual reset; until then a new reason to escalate only
        makes the healer stand back, and the flag survives restarts.
        """
        if self.throttler.mark_escalated(match.target):
            self.escalator.escalate(match, incident, reason, detail)
        elif incident is not None and not incident.escalated:
            incident.escalated, incident.escalation_reason = True, f"{reason} (already escalated)"
        self.watches[match.probe].enter(Phase.ESCALATED, reason)

    def outcome(self, match: Match, incident: Incident | None, outcome: str, **fields: Any) -> None:
        """Emit ``healer.outcome``."""
        self.emit(
            OUTCOME,
            probe=match.probe,
            target=match.target,
            playbook=match.playbook.name,
            incident=incident.id if incident else None,
            outcome=str(outcome),
            **fields,
        )
