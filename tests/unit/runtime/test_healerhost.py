"""``HealerHost``: one way to start healers, so ``heal``, the operator and ``run`` see the same.

The policy watches a marker file with a command probe and heals by creating
it, so a whole incident (detected, remediated, closed) takes well under a
second with nothing but ``test`` and ``touch``. The operator's healer is
driven through ``OperatorState.heal`` as kopf would call it; it must write
the same audit lines and export the same metrics as ``aftershock heal``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from aftershock.clock import SystemClock
from aftershock.model.policy import HealingPolicy
from aftershock.observability.audit import read_audit
from aftershock.observability.metrics import HealerMetrics
from aftershock.runtime import HealerHost, TargetClaim, run_healers
from aftershock.runtime.local import LocalTargetLeases
from aftershock.settings import Settings
from aftershock.testing import CapturedEvents
from tests.unit.runtime.helpers import operator

POLICY = """\
apiVersion: aftershock.dev/v1alpha1
kind: HealingPolicy
metadata: {{name: marker, namespace: chaos}}
spec:
  targets:
    svc: {{process: {{command: [sleep, "60"]}}}}
  watch:
    marker: {{command: {{command: [test, -f, "{marker}"]}}, every: 50ms, unhealthyAfter: 2, healthyAfter: 1, target: svc}}
  playbooks:
    - name: touch
      when: {{unhealthy: marker}}
      steps:
        - {{action: command, with: {{command: [touch, "{marker}"]}}}}
        - {{action: wait.healthy, with: {{probe: marker, within: 5s}}}}
      limits: {{maxAttempts: 3, backoff: {{initial: 1s, max: 5s}}, cooldown: 1m}}
"""

HEALED = ("incident.opened", "healer.action", "incident.closed")


def body(marker: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(POLICY.format(marker=marker)))


def policy(marker: Path) -> HealingPolicy:
    return HealingPolicy.model_validate(body(marker))


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll ``check`` (it reads files the healer writes) until it holds."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def audit_kinds(home: Path) -> list[str]:
    path = home / "audit" / "healer.jsonl"
    return [r["kind"] for r in read_audit(path)] if path.exists() else []


def healed(home: Path) -> bool:
    """The incident is closed and the attempt that healed it has ended."""
    return {"incident.closed", "healer.outcome"} <= set(audit_kinds(home))


def shape(home: Path) -> list[tuple[str, str, str, str]]:
    """The audit lines of one incident, without times and ids, in a stable order."""
    return sorted(
        (r["kind"], str(r.get("policy")), str(r.get("action")), str(r.get("outcome")))
        for r in read_audit(home / "audit" / "healer.jsonl")
        if r["kind"] in {*HEALED, "healer.outcome"}
    )


def series(text: str) -> set[str]:
    """The metric series of a text exposition (name and labels), without values."""
    return {
        re.sub(r"\s+\S+$", "", line)
        for line in text.splitlines()
        if line.startswith("aftershock_") and "_bucket" not in line
    }


class Stopped:
    """kopf's ``DaemonStopped`` as the handler uses it: falsy until set, and waitable."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    async def wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), seconds)


@pytest.fixture
def home(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


async def heal_daemon(settings: Settings, marker: Path) -> str:
    """``aftershock heal`` in-process until one incident is healed; its ``/metrics`` text."""
    stop = asyncio.Event()
    ready: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_healers(
            [policy(marker)],
            settings=settings,
            stop=stop,
            listen=("127.0.0.1", 0),
            on_ready=ready.set_result,
        )
    )
    host, port = await ready
    await until(lambda: healed(settings.home))
    metrics = await fetch(host, port, "/metrics")
    stop.set()
    await task
    return metrics


async def fetch(host: str, port: int, path: str) -> str:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    return raw.decode().split("\r\n\r\n", 1)[1]


async def operator_healer(settings: Settings, marker: Path) -> str:
    """The operator's daemon for one HealingPolicy until it heals; its ``/metrics`` text."""
    state, kube = operator(settings)
    stopped = Stopped()
    async with state.healing_term() as host:
        daemon = asyncio.create_task(state.heal(body(marker), stopped))
        await until(lambda: healed(settings.home))
        assert [h.key for h in host.healers] == ["chaos/marker"]
        assert state.healers == {"chaos/marker": state.healers["chaos/marker"]}
        stopped.event.set()
        await daemon
        assert host.healers == ()
    assert kube.statuses[0]["phase"] == "Healing"
    return state.metrics.render().decode()


async def test_the_operator_writes_the_same_audit_lines_and_metrics_as_heal(
    tmp_path: Path,
) -> None:
    heal_home = Settings(home=tmp_path / "heal")
    operator_home = Settings(home=tmp_path / "operator")
    heal_metrics = await heal_daemon(heal_home, tmp_path / "heal-marker")
    operator_metrics = await operator_healer(operator_home, tmp_path / "operator-marker")

    assert shape(heal_home.home) == shape(operator_home.home)
    assert set(audit_kinds(operator_home.home)) >= {*HEALED, "watch.transition"}
    healer_series = series(heal_metrics)
    assert (
        'aftershock_watch_state{policy="chaos/marker",probe="marker",state="healthy",target="svc"}'
        in healer_series
    )
    assert any(s.startswith("aftershock_probe_latency_seconds_count") for s in healer_series)
    assert healer_series <= series(operator_metrics)
    assert "aftershock_operator_healers" in operator_metrics  # one registry, one /metrics


async def test_a_run_host_writes_steps_to_the_journal_and_events_only(home: Settings) -> None:
    marker = home.home / "marker"
    home.home.mkdir(parents=True)
    notes: list[tuple[str, dict[str, Any]]] = []

    class Journal:
        def note(self, kind: str, **fields: Any) -> int:
            notes.append((kind, fields))
            return len(notes)

    events = CapturedEvents()
    host = HealerHost.for_run(home, clock=SystemClock(), events=events, journal=Journal())
    async with host:
        healer = await host.add(policy(marker))
        await until(lambda: bool(events.of("incident.closed") and events.of("healer.outcome")))
        assert host.healers == (healer,)
    assert host.healers == ()
    assert not healer.running
    assert sorted(kind for kind, _ in notes) == ["healing", "healing", "incident"]
    steps = [(f["action"], f["outcome"]) for kind, f in notes if kind == "healing"]
    assert steps == [("command", "ok"), ("wait.healthy", "ok")]
    assert not (home.home / "audit").exists()  # a run's healer audits into its journal


def claim_on_svc(run_id: str, *, healers: bool) -> TargetClaim:
    """A run's claim on the policy's process target (same argv = same target)."""
    target = policy(Path("/nonexistent")).spec.targets["svc"]
    return TargetClaim(
        run_id=run_id, experiment="exp", target="svc", keys=target.identities(), healers=healers
    )


async def test_a_daemon_host_stands_back_on_a_target_a_run_holds(home: Settings) -> None:
    marker = home.home / "marker"
    home.home.mkdir(parents=True)
    leases = LocalTargetLeases(home.home)
    metrics = HealerMetrics()
    async with HealerHost.for_heal(home, metrics=metrics) as host:
        async with leases.hold([claim_on_svc("run-1", healers=False)]):
            healer = await host.add(policy(marker))
            await until(lambda: "incident.opened" in audit_kinds(home.home))
            await asyncio.sleep(0.3)  # unhealthy for six samples: the healer stands back
            assert not marker.exists()
            assert "healer.paused" in audit_kinds(home.home)
            why = healer.status().standing_back
            assert list(why) == ["svc"]
            assert "run-1" in why["svc"]
        await until(lambda: healed(home.home))
        assert "healer.resumed" in audit_kinds(home.home)
        assert healer.status().standing_back == {}
        assert host.ready()
    assert not healer.running


async def test_a_run_that_lets_healers_act_does_not_pause_them(home: Settings) -> None:
    marker = home.home / "marker"
    home.home.mkdir(parents=True)
    leases = LocalTargetLeases(home.home)
    async with (
        HealerHost.for_heal(home, metrics=HealerMetrics()) as host,
        leases.hold([claim_on_svc("run-2", healers=True)]),
    ):
        healer = await host.add(policy(marker))
        await until(lambda: healed(home.home))
        assert "healer.paused" not in audit_kinds(home.home)
    assert not healer.running


async def test_starting_a_healer_outside_an_entered_host_is_an_error(home: Settings) -> None:
    host = HealerHost.for_heal(home, metrics=HealerMetrics())
    with pytest.raises(RuntimeError, match="enter the HealerHost"):
        await host.add(policy(home.home / "marker"))


async def test_a_daemon_host_freezes_the_heap_once_its_watches_sampled(home: Settings) -> None:
    """The long-lived objects leave the collector's way, and come back when the host closes."""
    marker = home.home / "marker"
    home.home.mkdir(parents=True)
    marker.touch()
    assert gc.get_freeze_count() == 0
    async with HealerHost.for_heal(home, metrics=HealerMetrics()) as host:
        healer = await host.add(policy(marker))
        await until(lambda: gc.get_freeze_count() > 0)
        assert all(watch.samples for watch in healer.watches.values())
    assert gc.get_freeze_count() == 0


async def test_a_run_host_leaves_the_heap_alone(home: Settings) -> None:
    marker = home.home / "marker"
    home.home.mkdir(parents=True)
    marker.touch()
    events = CapturedEvents()

    class Journal:
        def note(self, kind: str, **fields: Any) -> int:
            return 0

    host = HealerHost.for_run(home, clock=SystemClock(), events=events, journal=Journal())
    async with host:
        healer = await host.add(policy(marker))
        await until(lambda: all(watch.samples >= 3 for watch in healer.watches.values()))
        assert gc.get_freeze_count() == 0
