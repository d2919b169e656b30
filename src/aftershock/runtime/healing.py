"""``aftershock heal``: the healer daemon, one ``HealerHost`` behind a health server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack

import structlog

from aftershock.clock import SystemClock
from aftershock.model.policy import HealingPolicy
from aftershock.observability.health import HealthServer
from aftershock.observability.metrics import HealerMetrics
from aftershock.ports import Clock
from aftershock.runtime.healerhost import HealerHost
from aftershock.runtime.wiring import merged_targets
from aftershock.settings import Settings

__all__ = ["run_healers"]

_log = structlog.get_logger("aftershock.heal")


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
    """The healer daemon: every policy healed until ``stop`` is set, then a clean shutdown.

    The policies share one set of drivers (one supervisor per process target).
    The listen address is taken first, so a busy port fails before anything starts.
    """
    clock = clock or SystemClock()
    if dry_run:
        policies = [
            p.model_copy(update={"spec": p.spec.model_copy(update={"dry_run": True})})
            for p in policies
        ]
    settings.home.mkdir(parents=True, exist_ok=True)
    targets = merged_targets(*(p.spec.targets for p in policies))
    metrics = HealerMetrics()
    host = HealerHost.for_heal(settings, metrics=metrics, clock=clock)
    server = HealthServer(
        status=lambda: {"healers": [h.status().to_json() for h in host.healers]},
        ready=host.ready,
        metrics=metrics.render,
    )
    async with AsyncExitStack() as stack:
        address = await server.start(*listen)
        stack.push_async_callback(server.close)
        await stack.enter_async_context(host)
        drivers = await host.start_drivers(
            targets, log_dir=settings.home / "logs" / "healer", dry_run=dry_run
        )
        for policy in policies:
            await host.add(policy, drivers=drivers)
        if on_ready is not None:
            on_ready(address)
        _log.info("healer started", policies=[p.metadata.name for p in policies], listen=address)
        await stop.wait()
