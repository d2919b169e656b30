"""Test helpers shipped with aftershock: fakes at the port boundaries, a manual clock.

Use these to test code that drives aftershock (and aftershock's own engines)
without touching real systems::

    driver = FakeDriver(TargetKind.DOCKER)
    probe = FakeProbe(lambda t: t < 10 or t > 20)   # down between 10 s and 20 s
    clock = ManualClock()
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import stamina

from aftershock.clock import ManualClock, SystemClock
from aftershock.model.targets import TargetKind
from aftershock.ports import (
    ActionRequest,
    Clock,
    Event,
    FaultRequest,
    Handle,
    ProbeResult,
)

__all__ = [
    "CapturedEvents",
    "FakeDriver",
    "FakeProbe",
    "ManualClock",
    "capture_events",
    "set_testing",
]

Handler = Callable[[str, Any], Any | Awaitable[Any]]


async def _call(handler: Handler | None, op: str, payload: Any) -> Any:
    if handler is None:
        return None
    result = handler(op, payload)
    if inspect.isawaitable(result):
        return await result
    return result


class FakeDriver:
    """A driver whose behaviour is a function ``handler(op, payload)``.

    ``op`` is ``"prepare"``, ``"inject"``, ``"revert"`` or ``"act"``; the handler
    may raise to simulate a backend error, or return ``None``. Every call is
    recorded in ``calls``; ``applied`` holds the handles currently in effect.
    """

    def __init__(
        self, kind: TargetKind = TargetKind.PROCESS, handler: Handler | None = None
    ) -> None:
        self.kind = kind
        self.handler = handler
        self.calls: list[tuple[str, Any]] = []
        self.applied: dict[tuple[str, str], Handle] = {}

    async def start(self, stack: AsyncExitStack) -> None:
        """Nothing to acquire."""
        self.calls.append(("start", None))

    async def prepare(self, request: FaultRequest) -> Handle:
        """A handle naming the target as its one resource."""
        self.calls.append(("prepare", request))
        await _call(self.handler, "prepare", request)
        return Handle(
            run_id=request.run_id,
            step=request.step,
            kind=self.kind,
            fault=request.fault.name,
            target=request.target_name,
            resources=(f"fake:{request.target_name}",),
        )

    async def inject(self, handle: Handle) -> Handle:
        """Record the fault as applied (after the handler accepted it)."""
        self.calls.append(("inject", handle))
        await _call(self.handler, "inject", handle)
        self.applied[(handle.run_id, handle.step)] = handle
        return handle

    async def revert(self, handle: Handle) -> None:
        """Forget the fault (idempotent)."""
        self.calls.append(("revert", handle))
        await _call(self.handler, "revert", handle)
        self.applied.pop((handle.run_id, handle.step), None)

    async def act(self, request: ActionRequest) -> list[str]:
        """Record the action."""
        self.calls.append(("act", request))
        await _call(self.handler, "act", request)
        return [f"fake:{request.target_name}"]

    def ops(self) -> list[str]:
        """The operations called so far, in order."""
        return [op for op, _ in self.calls]


class FakeProbe:
    """A probe whose health is a function of clock time.

    ``health(t)`` returns a bool, a latency in seconds (float: success with that
    latency), or a full ``ProbeResult``. ``closes`` counts ``aclose`` calls, so a
    test can check that whoever built the probe released it.
    """

    def __init__(
        self, health: Callable[[float], bool | float | ProbeResult], clock: Clock | None = None
    ) -> None:
        self.health = health
        self.clock: Clock = clock or SystemClock()
        self.checks = 0
        self.closes = 0

    async def check(self) -> ProbeResult:
        """One sample at the clock's current time."""
        self.checks += 1
        now = self.clock.monotonic()
        value = self.health(now)
        if isinstance(value, ProbeResult):
            return value
        if isinstance(value, bool):
            return ProbeResult(ok=value, latency=0.001, started=now, detail="" if value else "down")
        return ProbeResult(ok=True, latency=float(value), started=now)

    async def aclose(self) -> None:
        """Count the call; a fake holds nothing."""
        self.closes += 1


@dataclass
class CapturedEvents:
    """An ``EventSink`` that keeps every event."""

    events: list[Event] = field(default_factory=list)

    def emit(self, event: Event) -> None:
        """Keep the event."""
        self.events.append(event)

    def kinds(self) -> list[str]:
        """The kinds of the events, in order."""
        return [e.kind for e in self.events]

    def of(self, kind: str) -> list[Event]:
        """The events of one kind."""
        return [e for e in self.events if e.kind == kind]


@contextmanager
def capture_events() -> Iterator[CapturedEvents]:
    """A fresh event sink for the block."""
    yield CapturedEvents()


@contextmanager
def set_testing() -> Iterator[None]:
    """Turn off retry backoff (stamina) inside the block."""
    stamina.set_testing(True, attempts=1)
    try:
        yield
    finally:
        stamina.set_testing(False)
