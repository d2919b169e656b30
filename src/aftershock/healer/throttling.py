"""How often the healer may act: attempts per cooldown, backoff, disruption budget, breaker.

The shape follows kopf's throttler: a small state object per purpose, delays
drawn from an iterable (exponential, capped, jittered by an injected
``random.Random`` so tests are exact), a reset on success, and nothing but
``Exception`` is ever caught (cancellation and ``BaseException`` pass through).

Four gates, checked in this order for one playbook acting on one target:

1. the target's circuit breaker (opens after ``breaker.failures`` consecutive
   remediations that failed or did not restore health; half-opens after
   ``breaker.reset`` for exactly one trial; closes on a success);
2. the playbook's backoff (``initial x factor^n`` capped at ``max``, +/- ``jitter``);
3. the playbook's ``maxAttempts`` per sliding ``cooldown`` window;
4. the policy's disruption budget (``max`` remediations per ``per`` over all targets).

All times are wall-clock epoch seconds, as persisted by ``state.py``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from aftershock.errors import JournalError
from aftershock.healer.state import (
    BreakerPhase,
    BreakerState,
    PlaybookState,
    PolicyState,
    StateStore,
)
from aftershock.model.policy import Backoff, HealingPolicySpec, Playbook

__all__ = ["SLACK", "Decision", "Permit", "Throttle", "Throttler", "backoff_delays"]

SLACK: Final = 1e-6
"""Whatever falls due within a microsecond is due: wall-clock stamps have microsecond
resolution, and a wake-up that lands a rounding error early must not cost another round."""


def backoff_delays(backoff: Backoff, rng: random.Random) -> Iterator[float]:
    """Endless delays: ``initial x factor^n`` capped at ``max``, each +/- ``jitter`` of itself."""
    initial = backoff.initial.total_seconds()
    cap = backoff.max.total_seconds()
    base = initial
    while True:
        delay = min(base, cap)
        if backoff.jitter:
            delay *= 1.0 + backoff.jitter * rng.uniform(-1.0, 1.0)
        yield delay
        if base < cap:  # stop multiplying once capped: no float overflow after days of failures
            base *= backoff.factor


class Decision(StrEnum):
    """What the healer decided about a playbook that applies."""

    ACT = "act"
    DRY_RUN = "dry-run"
    PAUSED = "paused"
    BACKOFF = "backoff"
    THROTTLED = "throttled"
    BREAKER_OPEN = "breaker-open"
    GIVEN_UP = "given-up"
    ESCALATED = "escalated"


@dataclass(frozen=True, slots=True, kw_only=True)
class Permit:
    """The answer of the gates: act now, or why not and until when."""

    decision: Decision
    reason: str = ""
    until: float | None = None
    """When this answer may change (epoch seconds), if known."""
    trial: bool = False
    """The one attempt a half-open breaker lets through."""

    @property
    def allowed(self) -> bool:
        """Whether the playbook may act now."""
        return self.decision is Decision.ACT


@dataclass(slots=True)
class Throttle:
    """Backoff of one playbook: the persisted state plus the live iterator of delays."""

    state: PlaybookState
    source_of_delays: Iterator[float] | None = None

    def next_delay(self, delays: Callable[[], Iterator[float]]) -> float:
        """The next delay of the sequence, resumed at the persisted position."""
        if self.source_of_delays is None:
            self.source_of_delays = itertools.islice(delays(), self.state.failures, None)
        delay = next(self.source_of_delays, self.state.last_delay)
        assert delay is not None  # the sequence is endless
        self.state.failures += 1
        self.state.last_delay = delay
        return delay

    def reset(self) -> None:
        """Back to the start of the sequence (after a success)."""
        self.source_of_delays = None
        self.state.failures = 0
        self.state.next_at = None
        self.state.last_delay = None


BreakerListener = Callable[[str, BreakerState, BreakerPhase], None]
"""Called with (target, new state, old phase) whenever a breaker changes phase."""


class Throttler:
    """The four gates of one policy, over state loaded from (and saved to) a store."""

    def __init__(
        self,
        key: str,
        spec: HealingPolicySpec,
        store: StateStore,
        rng: random.Random,
        *,
        on_breaker: BreakerListener | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.key = key
        self.spec = spec
        self._store = store
        self._rng = rng
        self._on_breaker = on_breaker
        self._on_error = on_error
        loaded: PolicyState = store.load(key)
        self._throttles = {name: Throttle(s) for name, s in loaded.playbooks.items()}
        self._breakers = loaded.breakers
        self._disruptions = loaded.disruptions
        for breaker in self._breakers.values():
            if breaker.phase is BreakerPhase.HALF_OPEN and breaker.trial_at is not None:
                # A trial whose verdict died with the last process counts as failed.
                breaker.phase, breaker.opened_at, breaker.trial_at = (
                    BreakerPhase.OPEN,
                    breaker.trial_at,
                    None,
                )

    def throttle(self, playbook: str) -> Throttle:
        """The backoff state of a playbook."""
        return self._throttles.setdefault(playbook, Throttle(PlaybookState()))

    def breaker(self, target: str) -> BreakerState:
        """The breaker of a target."""
        return self._breakers.setdefault(target, BreakerState())

    def attempts(self, playbook: Playbook, now: float) -> list[float]:
        """Attempt times of the playbook inside its cooldown window."""
        horizon = now - playbook.limits.cooldown.total_seconds()
        state = self.throttle(playbook.name).state
        state.attempts = [at for at in state.attempts if at > horizon]
        return state.attempts

    def disruptions(self, now: float) -> list[float]:
        """Remediation times inside the disruption budget's window."""
        horizon = now - self.spec.disruption_budget.per.total_seconds()
        self._disruptions[:] = [at for at in self._disruptions if at > horizon]
        return self._disruptions

    def check(self, playbook: Playbook, target: str, now: float) -> Permit:
        """Whether ``playbook`` may act on ``target`` at ``now``; changes only the breaker."""
        now += SLACK
        breaker = self.breaker(target)
        trial = False
        if breaker.phase is BreakerPhase.OPEN:
            assert breaker.opened_at is not None
            reopens = breaker.opened_at + self.spec.breaker.reset.total_seconds()
            if now < reopens:
                return Permit(decision=Decision.BREAKER_OPEN, reason="open", until=reopens)
            self._set_phase(target, breaker, BreakerPhase.HALF_OPEN)
        if breaker.phase is BreakerPhase.HALF_OPEN:
            if breaker.trial_at is not None:
                return Permit(decision=Decision.BREAKER_OPEN, reason="trial in progress")
            trial = True
        throttle = self.throttle(playbook.name)
        if throttle.state.next_at is not None and now < throttle.state.next_at:
            return Permit(decision=Decision.BACKOFF, until=throttle.state.next_at)
        attempts = self.attempts(playbook, now)
        limit = playbook.limits.max_attempts
        if len(attempts) >= limit:
            until = attempts[-limit] + playbook.limits.cooldown.total_seconds()
            return Permit(decision=Decision.THROTTLED, reason="max-attempts", until=until)
        budget = self.spec.disruption_budget
        disruptions = self.disruptions(now)
        if len(disruptions) >= budget.max:
            until = disruptions[-budget.max] + budget.per.total_seconds()
            return Permit(decision=Decision.THROTTLED, reason="disruption-budget", until=until)
        return Permit(decision=Decision.ACT, trial=trial)

    def started(self, playbook: Playbook, target: str, now: float) -> None:
        """Count an attempt (and a disruption); a half-open breaker's trial is now out."""
        throttle = self.throttle(playbook.name)
        self.attempts(playbook, now).append(now)
        self.disruptions(now).append(now)
        breaker = self.breaker(target)
        if breaker.phase is BreakerPhase.HALF_OPEN:
            breaker.trial_at = now
            self._save(self._store.save_breaker, self.key, target, breaker)
        self._save(self._store.save_playbook, self.key, playbook.name, throttle.state)
        self._save(self._store.save_disruptions, self.key, list(self._disruptions))

    def backoff(self, playbook: Playbook, now: float, delay: float | None = None) -> float:
        """Start the next backoff delay (or ``delay``, when the step asked for one)."""
        throttle = self.throttle(playbook.name)
        chosen = throttle.next_delay(lambda: backoff_delays(playbook.limits.backoff, self._rng))
        if delay is not None:
            chosen = throttle.state.last_delay = delay
        throttle.state.next_at = now + chosen
        self._save(self._store.save_playbook, self.key, playbook.name, throttle.state)
        return chosen

    def failed(self, target: str, now: float) -> BreakerPhase | None:
        """Count a remediation that failed or did not restore health.

        Returns the new phase when the breaker opened (or re-opened after a
        failed trial), else None.
        """
        breaker = self.breaker(target)
        breaker.failures += 1
        breaker.trial_at = None
        opens = breaker.phase is BreakerPhase.HALF_OPEN or (
            breaker.phase is BreakerPhase.CLOSED and breaker.failures >= self.spec.breaker.failures
        )
        if not opens:
            self._save(self._store.save_breaker, self.key, target, breaker)
            return None
        breaker.opened_at = now
        self._set_phase(target, breaker, BreakerPhase.OPEN)
        return BreakerPhase.OPEN

    def succeeded(self, playbook: Playbook, target: str) -> None:
        """A remediation restored health: reset the backoff and close the breaker."""
        throttle = self.throttle(playbook.name)
        throttle.reset()
        self._save(self._store.save_playbook, self.key, playbook.name, throttle.state)
        self.close(target)

    def relax(self, playbook: Playbook) -> None:
        """Forget the backoff position (the target stayed healthy for a whole cooldown)."""
        throttle = self.throttle(playbook.name)
        if throttle.state.failures or throttle.state.next_at is not None:
            throttle.reset()
            self._save(self._store.save_playbook, self.key, playbook.name, throttle.state)

    def close(self, target: str) -> None:
        """Close the breaker and forget its failures and escalation (success or manual reset)."""
        breaker = self.breaker(target)
        breaker.failures = 0
        breaker.opened_at = breaker.trial_at = None
        breaker.escalated = False
        self._set_phase(target, breaker, BreakerPhase.CLOSED)

    def mark_escalated(self, target: str) -> bool:
        """Record that the target was escalated; False if it already was (this episode)."""
        breaker = self.breaker(target)
        if breaker.escalated:
            return False
        breaker.escalated = True
        self._save(self._store.save_breaker, self.key, target, breaker)
        return True

    def _set_phase(self, target: str, breaker: BreakerState, phase: BreakerPhase) -> None:
        old = breaker.phase
        breaker.phase = phase
        self._save(self._store.save_breaker, self.key, target, breaker)
        if old is not phase and self._on_breaker is not None:
            self._on_breaker(target, breaker, old)

    def _save(self, save: Callable[..., None], *args: object) -> None:
        # A full disk must not stop the healing: keep going in memory, and say so.
        try:
            save(*args)
        except JournalError as exc:
            if self._on_error is None:
                raise
            self._on_error(exc)
