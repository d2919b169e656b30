"""Snapshots of the healer for ``/healthz``, metrics and the CLI."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from aftershock.healer.incidents import IncidentBook
from aftershock.healer.matching import subject_of
from aftershock.healer.throttling import Throttler
from aftershock.healer.watch import Watch
from aftershock.model.policy import HealingPolicySpec

__all__ = ["BreakerStatus", "HealerStatus", "PlaybookStatus", "WatchStatus", "build_status"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchStatus:
    """One watch: its verdict, phase and last transition."""

    name: str
    target: str | None
    phase: str
    healthy: bool
    failures: int
    successes: int
    samples: int
    last_transition_at: str | None
    last_transition: str | None
    """``old→new``."""
    incident: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybookStatus:
    """One playbook: attempts in its cooldown window and its backoff."""

    name: str
    probe: str
    target: str
    attempts_in_window: int
    max_attempts: int
    failures: int
    next_at: float | None
    """No attempt before this (epoch seconds), if backing off."""
    remediating: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerStatus:
    """One target's circuit breaker."""

    target: str
    phase: str
    failures: int
    opened_at: float | None
    escalated: bool
    paused: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class HealerStatus:
    """Everything ``/healthz`` and the metrics exporter want to know."""

    policy: str
    running: bool
    dry_run: bool
    paused: list[str]
    disruptions_in_window: int
    disruption_budget: int
    open_incidents: int
    incidents: int
    watches: list[WatchStatus] = field(default_factory=list)
    playbooks: list[PlaybookStatus] = field(default_factory=list)
    breakers: list[BreakerStatus] = field(default_factory=list)
    standing_back: dict[str, str] = field(default_factory=dict)
    """Why the healer stands back on each paused target (a run leases it, ...)."""

    def to_json(self) -> dict[str, Any]:
        """The snapshot as JSON-ready data."""
        return asdict(self)


def build_status(
    *,
    policy: str,
    spec: HealingPolicySpec,
    running: bool,
    dry_run: bool,
    watches: Mapping[str, Watch],
    throttler: Throttler,
    incidents: IncidentBook,
    busy: Collection[str],
    paused: Collection[str],
    now: float,
    standing_back: Mapping[str, str] | None = None,
) -> HealerStatus:
    """Assemble a ``HealerStatus`` at ``now`` (epoch seconds)."""
    watch_rows = []
    for name, watch in watches.items():
        change = watch.last_transition
        incident = incidents.open.get(name)
        watch_rows.append(
            WatchStatus(
                name=name,
                target=watch.target,
                phase=watch.phase.value,
                healthy=watch.healthy,
                failures=watch.failures,
                successes=watch.successes,
                samples=watch.samples,
                last_transition_at=change.at.isoformat() if change else None,
                last_transition=f"{change.old.value}→{change.new.value}" if change else None,
                incident=incident.id if incident else None,
            )
        )
    playbook_rows = []
    targets: set[str] = set()
    for playbook in spec.playbooks:
        target = subject_of(spec, playbook)
        targets.add(target)
        state = throttler.throttle(playbook.name).state
        playbook_rows.append(
            PlaybookStatus(
                name=playbook.name,
                probe=playbook.when.unhealthy,
                target=target,
                attempts_in_window=len(throttler.attempts(playbook, now)),
                max_attempts=playbook.limits.max_attempts,
                failures=state.failures,
                next_at=state.next_at,
                remediating=target in busy,
            )
        )
    breaker_rows = []
    for target in sorted(targets):
        breaker = throttler.breaker(target)
        breaker_rows.append(
            BreakerStatus(
                target=target,
                phase=breaker.phase.value,
                failures=breaker.failures,
                opened_at=breaker.opened_at,
                escalated=breaker.escalated,
                paused=target in paused,
            )
        )
    return HealerStatus(
        policy=policy,
        running=running,
        dry_run=dry_run,
        paused=sorted(paused),
        disruptions_in_window=len(throttler.disruptions(now)),
        disruption_budget=spec.disruption_budget.max,
        open_incidents=len(incidents.open),
        incidents=len(incidents.recent),
        watches=watch_rows,
        playbooks=playbook_rows,
        breakers=breaker_rows,
        standing_back=dict(standing_back or {}),
    )
