"""What the healer tells the world: the kinds of events it emits, and their fields.

Every decision and action is an ``aftershock.ports.Event``; the audit log and
the Prometheus sink subscribe to them (the healer writes no files and no
metrics). Every event carries ``policy``; the others add, as they apply,
``probe``, ``target``, ``playbook`` and ``incident``.
"""

from __future__ import annotations

from typing import Any, Final

from aftershock.ports import Clock, Event, EventSink

__all__ = [
    "BREAKER",
    "DECISION",
    "ESCALATED",
    "ESCALATION_FAILED",
    "EVENT_KINDS",
    "INCIDENT_CLOSED",
    "INCIDENT_OPENED",
    "OUTCOME",
    "PAUSED",
    "RESUMED",
    "STATE_ERROR",
    "STEP",
    "TRANSITION",
    "Emitter",
]

TRANSITION: Final = "watch.transition"
"""A watch changed phase: probe, target, from, to, healthy, failures, successes, reason."""
DECISION: Final = "healer.decision"
"""A playbook applies: decision (act, dry-run, paused, backoff, throttled, breaker-open,
given-up, escalated), reason, until, attempt, trial, incident. Repeats are not re-emitted."""
STEP: Final = "healer.action"
"""One step ran: playbook, attempt, step (index), action, target, outcome (ok, failed,
ignored, timeout, dry-run), duration (seconds on the clock), resources, error."""
OUTCOME: Final = "healer.outcome"
"""An attempt ended: outcome (restored, done, failed, permanent, cancelled), error, delay
(backoff before the next attempt), verified (health seen back)."""
BREAKER: Final = "healer.breaker"
"""A target's breaker changed: target, from, to, failures."""
ESCALATED: Final = "healer.escalated"
"""The healer gave up on a target: reason (breaker-open, permanent-error,
attempts-exhausted), detail, dry_run."""
ESCALATION_FAILED: Final = "healer.escalation-failed"
"""The escalate callable raised: target, reason, error."""
PAUSED: Final = "healer.paused"
"""Experiments asked the healer to stand back: targets."""
RESUMED: Final = "healer.resumed"
"""The pause ended: targets."""
STATE_ERROR: Final = "healer.state-error"
"""Throttling state could not be persisted (healing goes on in memory): error."""
INCIDENT_OPENED: Final = "incident.opened"
"""A watch turned unhealthy: incident, probe, target, detected_at, first_failure_at, fault."""
INCIDENT_CLOSED: Final = "incident.closed"
"""A watch is healthy again: the incident's times and durations (detect_seconds,
first_action_seconds, mttr_seconds, outage_seconds), attempts, playbooks, escalated, fault."""

EVENT_KINDS: Final = (
    TRANSITION,
    DECISION,
    STEP,
    OUTCOME,
    BREAKER,
    ESCALATED,
    ESCALATION_FAILED,
    PAUSED,
    RESUMED,
    STATE_ERROR,
    INCIDENT_OPENED,
    INCIDENT_CLOSED,
)
"""Every kind of event the healer emits."""


class Emitter:
    """Stamps events with the clock's time and the policy, and hands them to the sink."""

    def __init__(self, sink: EventSink, clock: Clock, policy: str) -> None:
        self.sink = sink
        self.clock = clock
        self.policy = policy

    def __call__(self, kind: str, **fields: Any) -> None:
        """Emit one event of ``kind``."""
        self.sink.emit(
            Event(kind=kind, at=self.clock.now(), fields={"policy": self.policy, **fields})
        )
