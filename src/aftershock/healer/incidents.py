"""Incidents: one per spell of unhealthiness of a watch, with its recovery times.

An incident opens when a watch turns unhealthy (``detected``) and closes when
it is healthy again. In between the healer notes its first action, each
attempt and any escalation, so the incident yields the durations that MTTR
dashboards and the experiment report want: first failure → detected →
first action → healthy again.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aftershock.healer.events import INCIDENT_CLOSED, INCIDENT_OPENED, Emitter
from aftershock.model.results import HealingResult

__all__ = ["Incident", "IncidentBook", "healing_result"]

FirstFailure = tuple[float, datetime] | None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _span(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(end - start, 6)


@dataclass(slots=True, kw_only=True)
class Incident:
    """One spell of unhealthiness of one watch. Monotonic seconds are the ``*_mono`` twins."""

    id: str
    policy: str
    probe: str
    target: str | None
    detected_at: datetime
    detected_mono: float
    first_failure_at: datetime | None = None
    first_failure_mono: float | None = None
    first_action_at: datetime | None = None
    first_action_mono: float | None = None
    first_playbook: str | None = None
    healthy_at: datetime | None = None
    healthy_mono: float | None = None
    attempts: int = 0
    playbooks: list[str] = field(default_factory=list)
    """Playbooks that acted, in order (repeats included)."""
    escalated: bool = False
    escalation_reason: str | None = None
    given_up: set[str] = field(default_factory=set)
    """Playbooks that will not act again during this incident."""
    fault: str | None = None
    """The fault class behind it, when an experiment says so (e.g. ``docker.kill``)."""

    @property
    def open(self) -> bool:
        """Whether the watch is still unhealthy."""
        return self.healthy_at is None

    @property
    def detect_seconds(self) -> float | None:
        """First failed sample → detected (the hysteresis delay)."""
        return _span(self.first_failure_mono, self.detected_mono)

    @property
    def first_action_seconds(self) -> float | None:
        """Detected → first remediation step."""
        return _span(self.detected_mono, self.first_action_mono)

    @property
    def mttr_seconds(self) -> float | None:
        """Detected → healthy again: the time to recover."""
        return _span(self.detected_mono, self.healthy_mono)

    @property
    def outage_seconds(self) -> float | None:
        """First failed sample → healthy again."""
        start = self.detected_mono if self.first_failure_mono is None else self.first_failure_mono
        return _span(start, self.healthy_mono)

    def acted(self, playbook: str, at: datetime, mono: float) -> None:
        """Note one attempt of ``playbook``."""
        self.attempts += 1
        self.playbooks.append(playbook)
        if self.first_action_mono is None:
            self.first_action_at, self.first_action_mono = at, mono
            self.first_playbook = playbook

    def close(self, at: datetime, mono: float) -> None:
        """The watch is healthy again."""
        self.healthy_at, self.healthy_mono = at, mono

    def fields(self) -> dict[str, Any]:
        """The incident as event fields (JSON-ready)."""
        return {
            "incident": self.id,
            "probe": self.probe,
            "target": self.target,
            "fault": self.fault,
            "first_failure_at": _iso(self.first_failure_at),
            "detected_at": _iso(self.detected_at),
            "first_action_at": _iso(self.first_action_at),
            "healthy_at": _iso(self.healthy_at),
            "detect_seconds": self.detect_seconds,
            "first_action_seconds": self.first_action_seconds,
            "mttr_seconds": self.mttr_seconds,
            "outage_seconds": self.outage_seconds,
            "first_playbook": self.first_playbook,
            "attempts": self.attempts,
            "playbooks": list(self.playbooks),
            "escalated": self.escalated,
            "escalation_reason": self.escalation_reason,
        }


class IncidentBook:
    """Open and recent incidents of one policy (bounded), emitting ``incident.*`` events."""

    def __init__(
        self,
        emit: Emitter,
        *,
        fault_of: Callable[[str], str | None] | None = None,
        capacity: int = 1000,
    ) -> None:
        self.emit = emit
        self.fault_of = fault_of
        self.recent: deque[Incident] = deque(maxlen=capacity)
        self.open: dict[str, Incident] = {}
        """Open incidents by watch name."""
        self._ids = itertools.count(1)

    def opened(self, probe: str, target: str | None, first_failure: FirstFailure) -> Incident:
        """A watch turned unhealthy now."""
        now, mono = self.emit.clock.now(), self.emit.clock.monotonic()
        incident = Incident(
            id=f"{self.emit.policy}/{probe}/{now:%Y%m%dT%H%M%S.%f}-{next(self._ids)}",
            policy=self.emit.policy,
            probe=probe,
            target=target,
            detected_at=now,
            detected_mono=mono,
            first_failure_mono=first_failure[0] if first_failure else None,
            first_failure_at=first_failure[1] if first_failure else None,
            fault=self.fault_of(target or probe) if self.fault_of else None,
        )
        self.open[probe] = incident
        self.recent.append(incident)
        self.emit(INCIDENT_OPENED, **incident.fields())
        return incident

    def closed(self, probe: str) -> Incident | None:
        """A watch is healthy again now."""
        incident = self.open.pop(probe, None)
        if incident is None:
            return None
        incident.close(self.emit.clock.now(), self.emit.clock.monotonic())
        if incident.fault is None and self.fault_of is not None:
            incident.fault = self.fault_of(incident.target or probe)
        self.emit(INCIDENT_CLOSED, **incident.fields())
        return incident


def healing_result(
    acted: Iterable[tuple[float, str]],
    incidents: Iterable[Incident],
    since: float,
    expected: str | None,
) -> HealingResult:
    """Whether ``expected`` (any playbook if None) acted at or after ``since``, and how fast.

    ``acted`` holds (monotonic time, playbook) of attempts; ``healthy_after`` is
    when the first incident that closed after that action closed.
    """
    fired = [(t, p) for t, p in acted if t >= since and expected in {None, p}]
    if not fired:
        return HealingResult(expected_playbook=expected)
    first, playbook = fired[0]
    healed = [
        i.healthy_mono for i in incidents if i.healthy_mono is not None and i.healthy_mono >= first
    ]
    return HealingResult(
        expected_playbook=expected,
        fired=True,
        playbook=playbook,
        first_action_after=first - since,
        healthy_after=min(healed) - since if healed else None,
    )
