"""Wiring of healers: ``aftershock heal`` (the daemon) and healers inside experiment runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack

import structlog

from aftershock.clock import SystemClock
from aftershock.healer import Healer, SqliteStateStore
from aftershock.model.policy import HealingPolicy
from aftershock.observability.audit import AuditLog
from aftershock.observability.health import HealthServer
from aftershock.observability.metrics import FanOut, HealerMetrics
from aftershock.ports import Clock
from aftershock.runtime.wiring import build_drivers, build_healer, merged_targets, pause_file
from aftershock.settings import Settings

__all__ = ["pause_file", "run_healers"]

_log = structlog.get_logger("aftershock.heal")


def _paused_targets(settings: Settings) -> set[str]:
    names: set[str] = set()
    for path in (settings.home / "pauses").glob("*.json"):
        with contextlib.suppress(OSError, ValueError, TypeError):
            names.update(str(t) for t in json.loads(path.read_text(encoding="utf-8"))["targets"])
    return names


async def _follow_pauses(
    settings: Settings, healers: Sequence[Healer], stop: asyncio.Event
) -> None:
    current: set[str] = set()
    while not stop.is_set():
        wanted = _paused_targets(settings)
        for healer in healers:
            if wanted - current:
                healer.pause(wanted - current)
            if current - wanted:
                healer.resume(current - wanted)
        current = wanted
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


async def run_healers(
    policies: Sequence[HealingPolicy],
    *,
    settings: Settings,
    stop: asyncio.Event,
    listen: tuple[str, int] = ("127.0.0.1", 9464),
    dry_run: bool = False,
    clock: Clock | None = None,
    on_ready: Callable[[tuple[str, int]], None] | None = None,
) -> None:
    """The healer daemon: every policy healed until ``stop`` is set, then a clean shutdown."""
    clock = clock or SystemClock()
    if dry_run:
        policies = [
            p.model_copy(update={"spec": p.spec.model_copy(update={"dry_run": True})})
            for p in policies
        ]
    settings.home.mkdir(parents=True, exist_ok=True)
    targets = merged_targets(*(p.spec.targets for p in policies))
    metrics = HealerMetrics()
    audit = AuditLog(settings.home / "audit" / "healer.jsonl")
    events = FanOut([audit, metrics])
    store = SqliteStateStore(settings.home / "healer.sqlite3")
    healers: list[Healer] = []
    async with AsyncExitStack() as stack:
        stack.callback(audit.close)
        drivers = build_drivers(settings, targets, log_dir=settings.home / "logs" / "healer")
        for driver in drivers.values():
            await driver.start(stack)
        for policy in policies:
            healer, probes = build_healer(
                policy, drivers=drivers, clock=clock, events=events, store=store, metrics=metrics
            )
            for probe in probes:
                close = getattr(probe, "aclose", None)
                if close is not None:
                    stack.push_async_callback(close)
            healers.append(healer)
            # /healthz reports each watch from the start; so must aftershock_watch_state.
            status = healer.status()
            for watch in status.watches:
                metrics.watch_state(status.policy, watch.name, watch.target, watch.phase)
        server = HealthServer(
            status=lambda: {"healers": [h.status().to_json() for h in healers]},
            ready=lambda: all(h.running for h in healers),
            metrics=metrics.render,
        )
        address = await server.start(*listen)
        stack.push_async_callback(server.close)
        for healer in healers:
            healer.start()
            stack.push_async_callback(healer.stop)
        if on_ready is not None:
            on_ready(address)
        _log.info("healer started", policies=[p.metadata.name for p in policies], listen=address)
        await _follow_pauses(settings, healers, stop)
