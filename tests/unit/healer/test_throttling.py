"""The gates, without a healer: backoff sequence, attempts per window, budget, breaker."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from aftershock.healer.state import BreakerPhase, MemoryStateStore
from aftershock.healer.throttling import Decision, Throttler, backoff_delays
from aftershock.model.policy import Backoff, Playbook

from .helpers import playbook, policy


def backoff(**fields: object) -> Backoff:
    return Backoff.model_validate(fields)


def test_backoff_sequence_is_exact_without_jitter() -> None:
    delays = backoff_delays(backoff(initial="5s", factor=2, max="1m", jitter=0), random.Random())
    assert list(itertools.islice(delays, 7)) == [5, 10, 20, 40, 60, 60, 60]
    slow = backoff_delays(backoff(initial="100ms", factor=1.5, max="1s", jitter=0), random.Random())
    assert [round(d, 6) for d in itertools.islice(slow, 6)] == [
        0.1,
        0.15,
        0.225,
        0.3375,
        0.50625,
        0.759375,
    ]


def test_backoff_never_overflows() -> None:
    delays = backoff_delays(backoff(initial="1s", factor=100, max="1h", jitter=0), random.Random())
    assert list(itertools.islice(delays, 5000))[-1] == 3600


def test_jitter_comes_from_the_injected_rng_and_stays_in_bounds() -> None:
    config = backoff(initial="5s", factor=2, max="1m", jitter=0.1)
    first = list(itertools.islice(backoff_delays(config, random.Random(42)), 20))
    again = list(itertools.islice(backoff_delays(config, random.Random(42)), 20))
    assert first == again  # the seed decides everything
    nominal = [min(5 * 2**n, 60) for n in range(20)]
    for delay, base in zip(first, nominal, strict=True):
        assert base * 0.9 <= delay <= base * 1.1
    assert first != nominal


def make(**kwargs: Any) -> tuple[Throttler, Playbook]:
    doc = policy(playbook(**kwargs), breaker=(2, "30m"), budget=(3, "1h"))
    throttler = Throttler("p", doc.spec, MemoryStateStore(), random.Random(1))
    return throttler, doc.spec.playbooks[0]


def test_max_attempts_per_sliding_cooldown_window() -> None:
    throttler, book = make(max_attempts=2, cooldown="10m")
    assert throttler.check(book, "api", 0).allowed
    throttler.started(book, "api", 0)
    throttler.started(book, "api", 100)
    permit = throttler.check(book, "api", 200)
    assert (permit.decision, permit.reason, permit.until) == (
        Decision.THROTTLED,
        "max-attempts",
        600,
    )
    assert throttler.check(book, "api", 600).allowed


def test_backoff_gate_and_explicit_delay() -> None:
    throttler, book = make(initial="5s", factor=3, cap="1m")
    assert throttler.backoff(book, 0) == 5
    assert throttler.check(book, "api", 4.9).decision is Decision.BACKOFF
    assert throttler.check(book, "api", 5).allowed
    assert throttler.backoff(book, 5) == 15
    assert throttler.backoff(book, 20, delay=2.5) == 2.5
    assert throttler.check(book, "api", 22.5).allowed
    throttler.succeeded(book, "api")
    assert throttler.backoff(book, 30) == 5


def test_disruption_budget_spans_playbooks() -> None:
    doc = policy(playbook("a"), playbook("b"), budget=(3, "1h"))
    throttler = Throttler("p", doc.spec, MemoryStateStore(), random.Random(1))
    a, b = doc.spec.playbooks
    for t in (0, 10, 20):
        throttler.started(a if t != 10 else b, "api", t)
    permit = throttler.check(b, "other", 30)
    assert (permit.decision, permit.reason, permit.until) == (
        Decision.THROTTLED,
        "disruption-budget",
        3600,
    )


def test_breaker_opens_half_opens_for_one_trial_and_closes_on_success() -> None:
    throttler, book = make()
    assert throttler.failed("api", 0) is None
    assert throttler.failed("api", 10) is BreakerPhase.OPEN
    permit = throttler.check(book, "api", 20)
    assert (permit.decision, permit.until) == (Decision.BREAKER_OPEN, 10 + 1800)
    trial = throttler.check(book, "api", 1810)
    assert trial.allowed and trial.trial
    throttler.started(book, "api", 1810)
    assert throttler.check(book, "api", 1811).reason == "trial in progress"
    assert throttler.failed("api", 1815) is BreakerPhase.OPEN  # a failed trial re-opens
    assert throttler.breaker("api").opened_at == 1815
    assert throttler.check(book, "api", 3615).trial
    throttler.started(book, "api", 3615)
    throttler.succeeded(book, "api")
    breaker = throttler.breaker("api")
    assert (breaker.phase, breaker.failures, breaker.escalated) == (BreakerPhase.CLOSED, 0, False)


def test_escalation_is_marked_once_per_episode() -> None:
    throttler, book = make()
    assert throttler.mark_escalated("api") is True
    assert throttler.mark_escalated("api") is False
    throttler.succeeded(book, "api")
    assert throttler.mark_escalated("api") is True


def test_base_exceptions_from_the_store_are_never_swallowed() -> None:
    class Exploding(MemoryStateStore):
        def save_breaker(self, *args: object) -> None:
            raise KeyboardInterrupt

    doc = policy()
    errors: list[Exception] = []
    throttler = Throttler("p", doc.spec, Exploding(), random.Random(), on_error=errors.append)
    with pytest.raises(KeyboardInterrupt):
        throttler.failed("api", 0)
    assert errors == []
