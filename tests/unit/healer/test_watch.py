"""Hysteresis and the lifecycle of one watch, sample by sample on a manual clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from aftershock.healer.watch import Phase, Transition, Watch
from aftershock.model.probes import WatchSpec
from aftershock.ports import ProbeResult
from aftershock.testing import ManualClock


def spec(unhealthy_after: int = 3, healthy_after: int = 2) -> WatchSpec:
    return WatchSpec.model_validate(
        {
            "tcp": {"address": "127.0.0.1:8080"},
            "unhealthyAfter": unhealthy_after,
            "healthyAfter": healthy_after,
            "target": "api",
        }
    )


class Feed:
    def __init__(self, watch: Watch, clock: ManualClock) -> None:
        self.watch = watch
        self.clock = clock

    async def __call__(self, pattern: str) -> None:
        """One sample per character, one second apart: '+' ok, '-' failed."""
        for char in pattern:
            self.watch.observe(ProbeResult(ok=char == "+", latency=0.0, started=0.0))
            await self.clock.advance(1)


def make(unhealthy_after: int = 3, healthy_after: int = 2) -> tuple[Watch, Feed, list[Transition]]:
    clock = ManualClock()
    seen: list[Transition] = []
    watch = Watch(
        "web", spec(unhealthy_after, healthy_after), clock=clock, on_transition=seen.append
    )
    return watch, Feed(watch, clock), seen


def state(watch: Watch) -> Phase:
    """The phase, read fresh (mypy would keep an earlier narrowing across awaits)."""
    return watch.phase


def healthy(watch: Watch) -> bool:
    return watch.healthy


def path(seen: list[Transition]) -> list[str]:
    return [f"{t.old}>{t.new}" for t in seen]


async def test_consecutive_failures_make_it_unhealthy_and_successes_healthy() -> None:
    watch, feed, seen = make()
    await feed("++--")
    assert state(watch) is Phase.SUSPECT and healthy(watch)
    await feed("-")
    assert state(watch) is Phase.UNHEALTHY and not healthy(watch)
    assert watch.unhealthy_since == 4.0
    await feed("+-+")
    assert not healthy(watch)  # never two successes in a row
    await feed("+")
    assert healthy(watch) and state(watch) is Phase.HEALTHY
    assert path(seen) == ["healthy>suspect", "suspect>unhealthy", "unhealthy>healthy"]
    assert [t.mono for t in seen] == [2.0, 4.0, 8.0]


async def test_a_success_before_the_threshold_clears_suspicion() -> None:
    watch, feed, seen = make()
    await feed("--+--+")
    assert healthy(watch) and state(watch) is Phase.HEALTHY
    assert path(seen) == ["healthy>suspect", "suspect>healthy"] * 2


async def test_transition_times_are_kept() -> None:
    watch, feed, _ = make(unhealthy_after=2)
    await feed("++--")
    assert watch.entered[Phase.SUSPECT] == watch.entered[Phase.HEALTHY] + timedelta(seconds=2)
    assert watch.entered[Phase.UNHEALTHY] == watch.entered[Phase.SUSPECT] + timedelta(seconds=1)
    assert watch.first_failure is not None and watch.first_failure[0] == 2.0


async def test_samples_never_pull_a_target_out_of_remediation() -> None:
    watch, feed, seen = make()
    await feed("---")
    watch.enter(Phase.REMEDIATING, "playbook")
    await feed("++")
    assert watch.healthy and state(watch) is Phase.REMEDIATING
    watch.leave("attempt done")
    assert state(watch) is Phase.HEALTHY
    assert path(seen)[-2:] == ["unhealthy>remediating", "remediating>healthy"]


async def test_recovering_and_escalated_end_when_healthy_or_reset() -> None:
    watch, feed, _ = make()
    await feed("---")
    watch.enter(Phase.RECOVERING, "steps done")
    await feed("++")
    assert state(watch) is Phase.HEALTHY
    await feed("---")
    watch.enter(Phase.ESCALATED, "gave up")
    await feed("-+-")
    assert state(watch) is Phase.ESCALATED
    watch.reset()
    assert state(watch) is Phase.UNHEALTHY


async def test_wait_healthy_on_the_clock() -> None:
    watch, feed, _ = make()
    assert await watch.wait_healthy(5) is True  # already healthy: no wait
    await feed("---")
    recovered = asyncio.create_task(watch.wait_healthy(5))
    await feed("++")
    assert await recovered is True
    await feed("---")
    stuck = asyncio.create_task(watch.wait_healthy(3))
    await feed.clock.advance(3)
    assert await stuck is False
    assert feed.clock.sleepers == 0
