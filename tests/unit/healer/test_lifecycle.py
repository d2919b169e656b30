"""Reset, status, ordering of several playbooks, failures around the edges, the public surface."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aftershock.healer
from aftershock.errors import JournalError, TemporaryRemediationError
from aftershock.healer import EVENT_KINDS, Escalation, MemoryStateStore, Phase
from aftershock.healer.state import BreakerState
from aftershock.testing import ManualClock

from .helpers import RESTART, Harness, playbook, policy, wait_healthy

SCALE = {"action": "process.start", "target": "api"}


def failing_restarts(op: str, request: Any) -> None:
    if op == "act" and request.action == "process.restart":
        raise TemporaryRemediationError("nope")


def test_exported_members() -> None:
    exported = set(aftershock.healer.__all__)
    assert {"Healer", "Escalation", "SqliteStateStore", "MemoryStateStore", "Phase"} <= exported
    assert all(hasattr(aftershock.healer, name) for name in exported)
    assert aftershock.healer.__doc__ is not None and "never imports a concrete driver" in (
        aftershock.healer.__doc__
    )


async def test_the_next_playbook_acts_while_the_first_backs_off() -> None:
    doc = policy(playbook("restart", steps=[RESTART]), playbook("start", steps=[SCALE]))
    h = Harness(doc, lambda t: False, handler=failing_restarts)
    async with h.healer:
        await h.run_for(8)
    assert [(t, action) for t, action, _ in h.acts] == [
        (2, "process.restart"),  # declaration order: restart first
        (2, "process.start"),  # restart backs off; the next one in line may try
        (7, "process.restart"),  # start's verdict is due at 7: it did not help
        (7, "process.start"),
    ]
    decided = [(f["playbook"], f["decision"]) for f in h.fields("healer.decision")]
    assert decided[:3] == [("restart", "act"), ("restart", "backoff"), ("start", "act")]


async def test_on_failure_stop_gives_up_without_escalating() -> None:
    doc = policy(playbook(steps=[RESTART], max_attempts=2, on_failure="stop"))
    h = Harness(doc, lambda t: False, handler=failing_restarts)
    async with h.healer:
        await h.run_for(1200)
    assert h.act_times() == [2, 7]
    assert h.escalations == []
    given_up = h.fields("healer.decision", decision="given-up")
    assert [f["reason"] for f in given_up] == ["onFailure: stop"]


async def test_manual_reset_closes_the_breaker_and_acts_again() -> None:
    doc = policy(playbook(steps=[RESTART]), breaker=(1, "1h"))
    h = Harness(doc, lambda t: False, handler=failing_restarts)
    async with h.healer:
        await h.run_for(60)
        assert h.act_times() == [2]
        assert h.healer.watches["web"].phase is Phase.ESCALATED
        h.healer.reset("api")
        await h.clock.advance(0)
        assert h.act_times() == [2, 60]
        assert h.healer.throttler.breaker("api").failures == 1
    assert len(h.escalations) == 2  # a reset starts a new episode


async def test_status_snapshot_is_json_ready() -> None:
    h = Harness(policy(), lambda t: t < 1)
    async with h.healer:
        await h.run_for(5)
        status = h.healer.status()
    data = status.to_json()
    json.dumps(data)
    assert data["policy"] == "checkout" and data["running"] is True
    [watch] = data["watches"]
    assert (watch["name"], watch["phase"], watch["healthy"]) == ("web", "remediating", False)
    assert watch["last_transition"] == "unhealthy→remediating"
    [book] = data["playbooks"]
    assert (book["attempts_in_window"], book["remediating"]) == (1, True)
    assert data["breakers"][0]["phase"] == "closed"
    assert data["open_incidents"] == 1


async def test_stop_cancels_an_attempt_in_flight() -> None:
    h = Harness(policy(playbook(steps=[RESTART, wait_healthy("1h")])), lambda t: False)
    async with h.healer:
        await h.run_for(10)
    assert [f["outcome"] for f in h.fields("healer.outcome")] == ["cancelled"]
    assert h.healer.watches["web"].phase is Phase.UNHEALTHY
    assert h.clock.sleepers == 0


async def test_pause_waits_for_the_attempt_in_flight_and_nests() -> None:
    h = Harness(policy(playbook(steps=[RESTART, wait_healthy("10s")])), lambda t: t >= 20)
    async with h.healer:
        await h.run_for(5)  # an attempt is waiting for health since 2
        entered = asyncio.Event()

        async def experiment() -> None:
            async with h.healer.paused({"api"}), h.healer.paused({"api", "db"}):
                entered.set()
                await h.clock.sleep(30)

        task = asyncio.create_task(experiment())
        await h.clock.advance(5)
        assert not entered.is_set()
        await h.clock.advance(3)  # the wait gives up at 12
        assert entered.is_set()
        await h.run_for(30)
        await task
    assert h.act_times() == [2]
    assert h.decisions("paused") == ["paused"]  # once, though unhealthy for 9 more samples


async def test_escalation_delivery_failure_is_reported() -> None:
    clock = ManualClock()
    doc = policy(playbook(steps=[RESTART]), breaker=(1, "1h"))
    h = Harness(doc, lambda t: False, handler=failing_restarts, clock=clock)

    async def broken(record: Escalation) -> None:
        msg = "webhook down"
        raise ConnectionError(msg)

    h.healer.escalator.send = broken
    async with h.healer:
        await h.run_for(10)
    [failed] = h.fields("healer.escalation-failed")
    assert failed["reason"] == "breaker-open" and "webhook down" in failed["error"]


async def test_a_broken_store_is_reported_and_healing_goes_on() -> None:
    class Full(MemoryStateStore):
        def save_breaker(self, policy: str, target: str, state: BreakerState) -> None:
            msg = "database or disk is full"
            raise JournalError(msg)

    h = Harness(
        policy(playbook(steps=[RESTART])), lambda t: False, handler=failing_restarts, store=Full()
    )
    async with h.healer:
        await h.run_for(10)
    assert h.act_times() == [2, 7]
    assert h.fields("healer.state-error")[0]["error"] == "database or disk is full"


async def test_every_event_kind_is_declared_and_carries_the_policy() -> None:
    doc = policy(playbook(max_attempts=2), breaker=(3, "10m"))
    h = Harness(doc, lambda t: t % 40 >= 20)
    async with h.healer, h.healer.paused({"api"}):
        await h.run_for(30)
    async with h.healer:
        await h.run_for(900)
    assert set(h.events.kinds()) <= set(EVENT_KINDS)
    assert all(e.fields["policy"] == "checkout" for e in h.events.events)
    for event in h.events.events:
        json.dumps(dict(event.fields))
