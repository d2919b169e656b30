"""Escalation: the healer gives up on a target and tells a human, once.

The escalate callable (a webhook or a command, built by the adapters) runs in
its own task, so a slow receiver never holds up healing; if it raises, a
``healer.escalation-failed`` event says so. In a dry run only the event is
emitted.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from aftershock.healer.events import ESCALATED, ESCALATION_FAILED, Emitter
from aftershock.healer.incidents import Incident
from aftershock.healer.matching import Match

__all__ = ["SENT_KEPT", "EscalateFn", "Escalation", "Escalator"]

SENT_KEPT: Final = 1000
"""Escalations an ``Escalator`` remembers: a daemon escalating for months stays bounded."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Escalation:
    """What the escalate callable receives when the healer gives up on a target."""

    policy: str
    target: str
    probe: str
    playbook: str | None
    reason: str
    """``breaker-open``, ``permanent-error`` or ``attempts-exhausted``."""
    detail: str
    at: datetime
    incident: str | None = None


EscalateFn = Callable[[Escalation], Awaitable[None]]
"""Sends an escalation (webhook, command); the adapters implement it."""


class Escalator:
    """Emits ``healer.escalated`` and hands the record to the escalate callable."""

    def __init__(self, emit: Emitter, send: EscalateFn | None, *, dry_run: bool) -> None:
        self.emit = emit
        self.send = send
        self.dry_run = dry_run
        self.sent: deque[Escalation] = deque(maxlen=SENT_KEPT)
        """The last ``SENT_KEPT`` escalations decided (also in a dry run), oldest first."""
        self._tasks: set[asyncio.Task[None]] = set()

    def escalate(
        self, match: Match, incident: Incident | None, reason: str, detail: str
    ) -> Escalation:
        """Escalate ``match.target`` now; marks the incident escalated."""
        if incident is not None:
            incident.escalated, incident.escalation_reason = True, reason
        record = Escalation(
            policy=self.emit.policy,
            target=match.target,
            probe=match.probe,
            playbook=match.playbook.name,
            reason=reason,
            detail=detail,
            at=self.emit.clock.now(),
            incident=incident.id if incident else None,
        )
        self.sent.append(record)
        self.emit(
            ESCALATED,
            probe=match.probe,
            target=match.target,
            playbook=match.playbook.name,
            incident=record.incident,
            reason=reason,
            detail=detail,
            dry_run=self.dry_run,
        )
        if self.send is not None and not self.dry_run:
            task = asyncio.get_running_loop().create_task(self._deliver(self.send, record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return record

    async def _deliver(self, send: EscalateFn, record: Escalation) -> None:
        try:
            await send(record)
        except Exception as exc:  # noqa: BLE001 - reported; the healer goes on
            self.emit(
                ESCALATION_FAILED, target=record.target, reason=record.reason, error=repr(exc)
            )

    async def drain(self) -> None:
        """Wait for escalations still being delivered."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
