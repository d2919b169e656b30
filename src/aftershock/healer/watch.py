"""Health watches: hysteresis over probe samples, and the lifecycle of a watched target.

A watch turns samples into a verdict with hysteresis (``unhealthyAfter``
consecutive failures make it unhealthy, ``healthyAfter`` consecutive successes
make it healthy again), and carries the lifecycle the healer moves it through::

    healthy ──first failure──► suspect ──unhealthyAfter──► unhealthy
       ▲                          │                          │ playbook starts
       │◄──── a success ──────────┘                          ▼
       │                                                remediating
       │◄──── healthyAfter successes ──── recovering ◄──────┘ steps done
       │◄──── healthyAfter successes ──── escalated  (gave up; until healthy or reset)

Samples arrive from a ``Sampler`` per watch (its ``on_sample``), so a slow
endpoint delays no other watch. Nothing here does I/O or reads the wall clock
except through the injected ``Clock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from aftershock.healer.timing import ClockTimeout, race
from aftershock.model.probes import WatchSpec
from aftershock.ports import Clock, ProbeResult

__all__ = ["Phase", "Transition", "Watch"]


class Phase(StrEnum):
    """Where a watched target is in its healing lifecycle."""

    HEALTHY = "healthy"
    SUSPECT = "suspect"
    UNHEALTHY = "unhealthy"
    REMEDIATING = "remediating"
    RECOVERING = "recovering"
    ESCALATED = "escalated"


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """One lifecycle change of a watch, stamped on both clock scales."""

    watch: str
    target: str | None
    old: Phase
    new: Phase
    healthy: bool
    """The hysteresis verdict after the change."""
    failures: int
    successes: int
    at: datetime
    mono: float
    reason: str

    def fields(self) -> dict[str, object]:
        """The change as ``watch.transition`` event fields."""
        return {
            "probe": self.watch,
            "target": self.target,
            "from": self.old.value,
            "to": self.new.value,
            "healthy": self.healthy,
            "failures": self.failures,
            "successes": self.successes,
            "reason": self.reason,
        }


class Watch:
    """Hysteresis and lifecycle of one watched probe.

    ``on_transition`` is called synchronously for every phase change, and
    ``on_health`` whenever the hysteresis verdict flips (the healer opens and
    closes incidents on it). Phases the healer owns (remediating, recovering,
    escalated) are changed with ``enter``; samples never pull a target out of
    ``remediating`` (the playbook in flight decides where it goes next).
    """

    def __init__(
        self,
        name: str,
        spec: WatchSpec,
        *,
        clock: Clock,
        on_transition: Callable[[Transition], None] | None = None,
        on_health: Callable[[Watch, bool], None] | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self.target = spec.target
        self.phase = Phase.HEALTHY
        self.healthy = True
        self.failures = 0
        """Consecutive failed samples."""
        self.successes = 0
        """Consecutive good samples."""
        self.samples = 0
        self.last: ProbeResult | None = None
        self.first_failure: tuple[float, datetime] | None = None
        """When the current run of failed samples began (monotonic, wall), if one is on."""
        self.since = clock.monotonic()
        """When the hysteresis verdict last flipped (monotonic); start-up counts."""
        self.entered: dict[Phase, datetime] = {Phase.HEALTHY: clock.now()}
        """When each phase was last entered (wall clock): detected_at = entered[UNHEALTHY]."""
        self.last_transition: Transition | None = None
        self._clock = clock
        self._on_transition = on_transition
        self._on_health = on_health
        self._healthy_event = asyncio.Event()
        self._healthy_event.set()

    @property
    def unhealthy_since(self) -> float | None:
        """When the watch turned unhealthy (monotonic), or None while it is healthy."""
        return None if self.healthy else self.since

    def observe(self, result: ProbeResult) -> None:
        """Take one sample."""
        self.samples += 1
        self.last = result
        if result.ok:
            self.successes += 1
            self.failures = 0
            self.first_failure = None
            if not self.healthy and self.successes >= self.spec.healthy_after:
                self._flip(healthy=True, reason=f"{self.successes} consecutive successes")
            elif self.phase is Phase.SUSPECT:
                self._move(Phase.HEALTHY, "recovered before the threshold")
            return
        self.successes = 0
        self.failures += 1
        if self.first_failure is None:
            self.first_failure = (self._clock.monotonic(), self._clock.now())
        if self.healthy and self.failures >= self.spec.unhealthy_after:
            self._flip(healthy=False, reason=f"{self.failures} consecutive failures")
        elif self.healthy and self.phase is Phase.HEALTHY:
            self._move(Phase.SUSPECT, result.detail or "sample failed")

    def enter(self, phase: Phase, reason: str) -> None:
        """Move to a phase the healer owns, or back once a playbook ends.

        Leaving ``remediating`` while the verdict is already healthy goes
        straight to ``healthy``.
        """
        if phase is not Phase.REMEDIATING and self.healthy:
            phase = Phase.HEALTHY
        self._move(phase, reason)

    def leave(self, reason: str) -> None:
        """Leave ``remediating`` for what the samples say: healthy or unhealthy."""
        self.enter(Phase.UNHEALTHY, reason)

    def reset(self, reason: str = "manual reset") -> None:
        """Leave ``escalated`` (manual reset): back to what the samples say."""
        if self.phase is Phase.ESCALATED:
            self._move(Phase.HEALTHY if self.healthy else Phase.UNHEALTHY, reason)

    async def wait_healthy(self, within: float) -> bool:
        """Whether the verdict is (or turns) healthy within ``within`` seconds on the clock."""
        if self.healthy:
            return True
        try:
            await race(self._clock, self._healthy_event.wait(), within)
        except ClockTimeout:
            return False
        return True

    def _flip(self, *, healthy: bool, reason: str) -> None:
        self.healthy = healthy
        self.since = self._clock.monotonic()
        if healthy:
            self._healthy_event.set()
        else:
            self._healthy_event.clear()
        if self.phase is not Phase.REMEDIATING:
            self._move(Phase.HEALTHY if healthy else Phase.UNHEALTHY, reason)
        if self._on_health is not None:
            self._on_health(self, healthy)

    def _move(self, new: Phase, reason: str) -> None:
        old = self.phase
        if new is old:
            return
        now = self._clock.now()
        self.phase = new
        self.entered[new] = now
        change = Transition(
            watch=self.name,
            target=self.target,
            old=old,
            new=new,
            healthy=self.healthy,
            failures=self.failures,
            successes=self.successes,
            at=now,
            mono=self._clock.monotonic(),
            reason=reason,
        )
        self.last_transition = change
        if self._on_transition is not None:
            self._on_transition(change)
