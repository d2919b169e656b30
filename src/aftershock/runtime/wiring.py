"""Shared wiring: drivers for a set of targets, healers for a policy."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog

from aftershock.drivers.docker import DockerDriver
from aftershock.drivers.process import ProcessDriver
from aftershock.drivers.standalone import http_call, post_json, run_command
from aftershock.drivers.toxiproxy import ToxiproxyDriver
from aftershock.errors import ConfigError
from aftershock.healer import Healer
from aftershock.healer.escalation import Escalation
from aftershock.healer.state import StateStore
from aftershock.model.policy import HealingPolicy
from aftershock.model.secrets import reveal
from aftershock.model.targets import ProcessTarget, TargetKind, TargetSpec
from aftershock.observability.metrics import HealerMetrics, MeteredProbe
from aftershock.ports import Clock, EventSink, Probe
from aftershock.probes.factory import build_probe, shared_client
from aftershock.settings import Settings

__all__ = ["build_drivers", "build_healer", "merged_targets", "pause_file"]

_log = structlog.get_logger("aftershock.heal")


def build_drivers(
    settings: Settings, targets: Mapping[str, TargetSpec], *, log_dir: Path | None = None
) -> dict[TargetKind, Any]:
    """One driver per target kind in use (all of them when ``targets`` is empty)."""
    kinds = {t.kind for t in targets.values()} or set(TargetKind)
    drivers: dict[TargetKind, Any] = {}
    if TargetKind.TOXIPROXY in kinds:
        drivers[TargetKind.TOXIPROXY] = ToxiproxyDriver(settings.allow)
    if TargetKind.DOCKER in kinds:
        drivers[TargetKind.DOCKER] = DockerDriver(settings.allow)
    if TargetKind.KUBERNETES in kinds:
        # Imported here: the kubernetes SDK takes about a second to import; pay only when used.
        from aftershock.drivers.kubernetes import KubernetesDriver

        drivers[TargetKind.KUBERNETES] = KubernetesDriver(settings.allow)
    if TargetKind.PROCESS in kinds:
        processes = {
            n: t.process for n, t in targets.items() if isinstance(t.process, ProcessTarget)
        }
        drivers[TargetKind.PROCESS] = ProcessDriver(processes, log_dir=log_dir)
    return drivers


def merged_targets(*groups: Mapping[str, TargetSpec]) -> dict[str, TargetSpec]:
    """Targets of several documents by name; the same name must mean the same target."""
    merged: dict[str, TargetSpec] = {}
    for group in groups:
        for name, target in group.items():
            if name in merged and merged[name] != target:
                msg = f"target {name!r} is declared differently in two documents"
                raise ConfigError(msg)
            merged[name] = target
    return merged


def _escalator(policy: HealingPolicy) -> Callable[[Escalation], Any]:
    escalate = policy.spec.escalate

    async def send(escalation: Escalation) -> None:
        payload = {
            "policy": escalation.policy,
            "target": escalation.target,
            "probe": escalation.probe,
            "playbook": escalation.playbook,
            "reason": escalation.reason,
            "detail": escalation.detail,
            "at": escalation.at.isoformat(),
            "incident": escalation.incident,
        }
        if escalate is None:
            _log.warning("escalation", **payload)
            return
        if escalate.webhook is not None:
            hook = escalate.webhook
            headers = {k: reveal(v) for k, v in hook.headers.items()}
            async with asyncio.timeout(hook.timeout.total_seconds()):
                await post_json(
                    reveal(hook.url), payload, headers=headers, limit=hook.timeout.total_seconds()
                )
        if escalate.command:
            env = {**os.environ, "AFTERSHOCK_ESCALATION": json.dumps(payload)}
            process = await asyncio.create_subprocess_exec(*escalate.command, env=env)
            async with asyncio.timeout(30):
                await process.wait()

    return send


def build_healer(
    policy: HealingPolicy,
    *,
    drivers: Mapping[Any, Any],
    clock: Clock,
    events: EventSink,
    store: StateStore | None = None,
    metrics: HealerMetrics | None = None,
) -> tuple[Healer, list[Any]]:
    """A healer for one policy over shared drivers; also returns what to ``aclose``."""
    probes: dict[str, Probe] = {}
    client = shared_client(len(policy.spec.watch))
    for name, watch in policy.spec.watch.items():
        probe: Probe = build_probe(watch, client=client)
        if metrics is not None:
            probe = MeteredProbe(probe, name, metrics)
        probes[name] = probe
    healer = Healer(
        policy,
        probes=probes,
        actions=dict(drivers),
        clock=clock,
        events=events,
        standalone={"http.call": http_call, "command": run_command},
        store=store,
        escalate=_escalator(policy),
        stagger=True,
    )
    return healer, [*probes.values(), client]


def pause_file(settings: Settings, run_id: str) -> Path:
    """Where a run asks healer daemons to stand back on its targets."""
    return settings.home / "pauses" / f"{run_id}.json"
