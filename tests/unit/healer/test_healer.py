"""The healer end to end on a manual clock: flapping, backoff, budget, dry run, pause, restart."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from datetime import timedelta
from pathlib import Path

import pytest

from aftershock.errors import ConfigError, TemporaryRemediationError
from aftershock.healer import Healer, Phase, SqliteStateStore
from aftershock.model.targets import TargetKind
from aftershock.testing import CapturedEvents, FakeDriver, FakeProbe, ManualClock

from .helpers import RESTART, Harness, playbook, policy


def always_failing(op: str, request: object) -> None:
    if op == "act":
        raise TemporaryRemediationError("still broken")


def max_in_window(times: list[float], window: float) -> int:
    """The most actions inside any half-open window [t, t + window) starting at an action."""
    return max((sum(1 for u in times if t <= u < t + window) for t in times), default=0)


async def test_flapping_endpoint_for_an_hour() -> None:
    doc = policy(playbook(max_attempts=2, cooldown="10m"), breaker=(4, "30m"))
    h = Harness(doc, health=lambda t: t % 40 >= 20)  # 20 s down, 20 s up
    started = time.perf_counter()
    async with h.healer:
        await h.run_for(3600)
    elapsed = time.perf_counter() - started

    acts = h.act_times()
    assert acts == [2, 12, 602, 642, 2447]  # the last one is the half-open breaker's trial
    assert max_in_window(acts, 600) <= 2
    breaker = [(f["from"], f["to"]) for f in h.fields("healer.breaker")]
    assert breaker == [("closed", "open"), ("open", "half-open"), ("half-open", "open")]
    assert len(h.escalations) == 1
    assert h.escalations[0].reason == "attempts-exhausted"
    assert len(h.events.of("healer.escalated")) == 1
    assert len(h.healer.incidents) == 90
    assert elapsed < 5, f"an hour of flapping took {elapsed:.1f}s of real time"


async def test_breaker_opening_escalates_once_and_stands_back() -> None:
    doc = policy(playbook(initial="1s", cap="1s"), breaker=(3, "1h"))
    h = Harness(doc, health=lambda t: False)
    async with h.healer:
        await h.run_for(900)
    assert h.act_times() == [2, 8, 14]  # act, wait.healthy 5 s, backoff 1 s, ...
    assert [e.reason for e in h.escalations] == ["breaker-open"]
    assert h.healer.watches["web"].phase is Phase.ESCALATED
    assert h.decisions() == ["act", "backoff", "act", "backoff", "act", "escalated"]
    status = h.healer.status()
    assert status.breakers[0].phase == "open" and status.breakers[0].escalated


async def test_backoff_matches_the_configuration_exactly() -> None:
    doc = policy(playbook(steps=[RESTART], initial="5s", factor=2, cap="1m"))
    h = Harness(doc, health=lambda t: False, handler=always_failing)
    async with h.healer:
        await h.run_for(260)
    acts = h.act_times()
    assert acts == [2, 7, 17, 37, 77, 137, 197, 257]
    assert [b - a for a, b in itertools.pairwise(acts)] == [5, 10, 20, 40, 60, 60, 60]
    backoffs = [f["delay"] for f in h.fields("healer.outcome", outcome="failed")]
    assert backoffs[:7] == [5, 10, 20, 40, 60, 60, 60]


async def test_backoff_with_seeded_jitter_stays_in_bounds() -> None:
    doc = policy(playbook(steps=[RESTART], initial="5s", factor=2, cap="1m", jitter=0.1))
    runs = []
    for _ in range(2):
        h = Harness(doc, health=lambda t: False, handler=always_failing, rng=random.Random(3))
        async with h.healer:
            await h.run_for(400)
        runs.append(h.act_times())
    assert runs[0] == runs[1]  # the seed decides the jitter
    gaps = [b - a for a, b in itertools.pairwise(runs[0])]
    nominal = [5, 10, 20, 40, 60, 60]
    assert gaps[:6] != nominal
    for gap, base in zip(gaps, nominal, strict=False):
        assert base * 0.9 - 1e-6 <= gap <= base * 1.1 + 1e-6


async def test_disruption_budget_caps_remediations_across_targets() -> None:
    doc = policy(
        playbook("fix-api", steps=[RESTART]),
        playbook("fix-db", probe="dbw", steps=[{"action": "process.restart", "target": "db"}]),
        watches={"web": "api", "dbw": "db"},
        budget=(3, "10m"),
    )
    h = Harness(doc, {"web": lambda t: False, "dbw": lambda t: False}, handler=always_failing)
    async with h.healer:
        await h.run_for(1200)
    acts = h.act_times()
    assert max_in_window(acts, 600) <= 3
    assert len(acts) == 6
    assert {name for _, _, name in h.acts} == {"api", "db"}
    reasons = {f["reason"] for f in h.fields("healer.decision", decision="throttled")}
    assert reasons == {"disruption-budget"}
    assert h.healer.status().disruptions_in_window == 3


async def test_dry_run_decides_and_reports_but_acts_on_nothing() -> None:
    h = Harness(policy(dry_run=True, breaker=(2, "1h")), health=lambda t: False)
    async with h.healer:
        await h.run_for(120)
    assert "act" not in h.driver.ops()
    assert h.acts == []
    assert h.escalations == []  # only reported
    dry = h.fields("healer.decision", decision="dry-run")
    assert len(dry) == 2
    steps = h.fields("healer.action")
    assert {f["outcome"] for f in steps} == {"dry-run"}
    assert [f["action"] for f in steps[:2]] == ["process.restart", "wait.healthy"]
    assert h.decisions("act") == []
    escalated = h.fields("healer.escalated")
    assert [(f["reason"], f["dry_run"]) for f in escalated] == [("breaker-open", True)]


async def test_pause_stands_back_until_resumed() -> None:
    h = Harness(policy(playbook(steps=[RESTART])), health=lambda t: t >= 40 or t < 1)
    async with h.healer:
        async with h.healer.paused({"api"}):
            await h.run_for(30)
            assert h.acts == []
            assert h.healer.status().paused == ["api"]
        await h.clock.advance(0)
        assert h.act_times() == [30]
        await h.run_for(30)
    assert h.decisions("paused") == ["paused"]  # logged once, not every tick
    assert [e.kind for e in h.events.events if e.kind.startswith("healer.p")] == ["healer.paused"]
    assert h.fields("healer.resumed") == [{"policy": "checkout", "targets": ["api"]}]


async def test_a_new_healer_over_the_same_file_keeps_attempts_and_breaker(tmp_path: Path) -> None:
    path = tmp_path / "healer.sqlite3"
    doc = policy(playbook(steps=[RESTART], max_attempts=5, cooldown="1h"), breaker=(2, "1h"))
    first = Harness(
        doc, health=lambda t: False, handler=always_failing, store=SqliteStateStore(path)
    )
    async with first.healer:
        await first.run_for(120)
    assert first.act_times() == [2, 7]
    assert [e.reason for e in first.escalations] == ["breaker-open"]

    later = ManualClock(start=first.clock.monotonic())
    second = Harness(
        doc,
        health=lambda t: False,
        handler=always_failing,
        store=SqliteStateStore(path),
        clock=later,
    )
    async with second.healer:
        await second.run_for(600)
    assert second.acts == []
    assert second.escalations == []  # sent before the restart
    assert second.decisions() == ["breaker-open"]
    status = second.healer.status()
    assert status.playbooks[0].attempts_in_window == 2
    assert (status.breakers[0].phase, status.breakers[0].escalated) == ("open", True)


async def test_a_new_healer_does_not_refill_max_attempts(tmp_path: Path) -> None:
    path = tmp_path / "healer.sqlite3"
    doc = policy(
        playbook(steps=[RESTART], max_attempts=2, cooldown="1h", on_failure="retry"),
        breaker=(100, "1h"),
    )
    first = Harness(
        doc, health=lambda t: False, handler=always_failing, store=SqliteStateStore(path)
    )
    async with first.healer:
        await first.run_for(60)
    assert first.act_times() == [2, 7]
    second = Harness(
        doc,
        health=lambda t: False,
        handler=always_failing,
        store=SqliteStateStore(path),
        clock=ManualClock(start=60),
    )
    async with second.healer:
        await second.run_for(3600)
    # The window of the first process runs out first; the backoff goes on where it was.
    assert second.act_times() == [3602, 3622]


async def test_mttr_times_match_the_clock() -> None:
    fixed: list[float] = []

    def handler(op: str, request: object) -> None:
        fixed.append(clock.monotonic())

    def health(t: float) -> bool:
        return t < 10 or (bool(fixed) and t >= fixed[0] + 3)  # up 3 s after the restart

    clock = ManualClock()
    doc = policy(
        playbook(
            for_="2s",
            steps=[RESTART, {"action": "wait.healthy", "with": {"probe": "web", "within": "20s"}}],
        )
    )
    h = Harness(doc, health=health, handler=handler, clock=clock, fault_of=lambda t: "process.kill")
    async with h.healer:
        await h.run_for(60)
    [incident] = h.healer.incidents
    epoch = clock.now() - timedelta(seconds=60)
    assert incident.first_failure_mono == 10 and incident.detected_mono == 12
    assert incident.first_action_mono == 14 and incident.healthy_mono == 18
    assert incident.detected_at == epoch + timedelta(seconds=12)
    assert (incident.detect_seconds, incident.first_action_seconds) == (2, 2)
    assert (incident.mttr_seconds, incident.outage_seconds) == (6, 8)
    assert incident.fault == "process.kill"
    [closed] = h.fields("incident.closed")
    assert closed["mttr_seconds"] == 6 and closed["first_playbook"] == "restart-api"
    assert closed["healthy_at"] == incident.healthy_at.isoformat()  # type: ignore[union-attr]
    assert [f["outcome"] for f in h.fields("healer.outcome")] == ["restored"]
    result = h.healer.healing_result(since=5, expected="restart-api")
    assert (result.fired, result.first_action_after, result.healthy_after) == (True, 9, 13)
    assert not h.healer.healing_result(since=15, expected=None).fired


async def test_missing_probe_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="web"):
        Healer(
            policy(),
            probes={},
            actions={TargetKind.PROCESS: FakeDriver()},
            clock=ManualClock(),
            events=CapturedEvents(),
        )


async def test_run_until_stop_event() -> None:
    clock = ManualClock()
    stop = asyncio.Event()
    healer = Healer(
        policy(),
        probes={"web": FakeProbe(lambda t: True, clock)},
        actions={TargetKind.PROCESS: FakeDriver()},
        clock=clock,
        events=CapturedEvents(),
    )
    task = asyncio.create_task(healer.run(stop))
    await clock.advance(5)
    assert healer.running and healer.watches["web"].samples == 6
    stop.set()
    await task
    assert healer.status().running is False
    assert clock.sleepers == 0
