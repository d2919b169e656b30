"""Ports: the small Protocols the engines call, and the records that cross them.

``engine/`` and ``healer/`` see drivers, probes, the clock and event sinks only
through these; ``runtime.py`` plugs the concrete adapters in, and tests plug in
the fakes from ``aftershock.testing``. Nothing here does I/O.

A fault goes through three calls so that it is journaled *before* it touches
anything::

    handle = await driver.prepare(request)   # resolve targets, record how to undo; no effect
    journal.intent(handle)                   # fsync'd
    handle = await driver.inject(handle)     # apply; may enrich the undo record
    journal.applied(handle)
    ...
    await driver.revert(handle)              # idempotent: already undone = success
    journal.reverted(handle)

Handles are plain JSON-serializable records, so ``aftershock recover`` can undo
a fault from the journal alone, in another process, after a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, Self, runtime_checkable

from aftershock.model.base import Spec
from aftershock.model.faults import FaultType
from aftershock.model.targets import TargetKind, TargetSpec

__all__ = [
    "ActionDriver",
    "ActionRequest",
    "Clock",
    "Event",
    "EventSink",
    "FaultDriver",
    "FaultRequest",
    "Handle",
    "Probe",
    "ProbeResult",
    "ResourceJournal",
    "RunJournal",
]

JSON = Any
"""A value that ``json.dumps`` accepts."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultRequest:
    """One fault to apply: the resolved method step, with the run's context.

    ``fault`` is the catalog entry (``aftershock.model.faults.TOXIPROXY_LATENCY``,
    ...): drivers find their handler by it, and get ``params`` as its typed
    model from it (``fault.parse(params)``).
    """

    run_id: str
    step: str
    fault: FaultType[Any]
    target_name: str
    target: TargetSpec
    params: Spec
    duration: timedelta | None = None
    seed: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Handle:
    """What was done, to what, and how to undo it; a plain serializable record.

    ``fault`` is the fault's name (a handle is read back from the journal in
    another process). ``resources`` names every concrete thing touched
    (container ids, a proxy and toxic, a pid). ``undo`` carries whatever the
    driver needs to revert without the experiment document (the API URL, the
    previous replica count, ...): each driver's typed undo record as JSON,
    written and read only through that driver's pair of functions.
    """

    run_id: str
    step: str
    kind: TargetKind
    fault: str
    target: str
    resources: tuple[str, ...]
    undo: Mapping[str, JSON] = field(default_factory=dict)

    def with_undo(self, **extra: JSON) -> Self:
        """A copy whose undo record also holds ``extra``."""
        return replace(self, undo={**self.undo, **extra})

    def to_json(self) -> dict[str, JSON]:
        """The record as JSON-ready data."""
        return {
            "run_id": self.run_id,
            "step": self.step,
            "kind": self.kind.value,
            "fault": self.fault,
            "target": self.target,
            "resources": list(self.resources),
            "undo": dict(self.undo),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JSON]) -> Self:
        """Rebuild a handle written by ``to_json``."""
        return cls(
            run_id=str(data["run_id"]),
            step=str(data["step"]),
            kind=TargetKind(data["kind"]),
            fault=str(data["fault"]),
            target=str(data["target"]),
            resources=tuple(str(r) for r in data["resources"]),
            undo=dict(data.get("undo") or {}),
        )


@runtime_checkable
class FaultDriver(Protocol):
    """Applies and reverts faults on one kind of backend."""

    kind: TargetKind

    async def start(self, stack: AsyncExitStack) -> None:
        """Acquire what the driver needs (clients, supervised processes); register cleanup."""

    async def prepare(self, request: FaultRequest) -> Handle:
        """Resolve the target and build the handle; changes nothing."""
        ...

    async def inject(self, handle: Handle) -> Handle:
        """Apply the fault; return the handle, possibly with a richer undo record."""
        ...

    async def revert(self, handle: Handle) -> None:
        """Undo the fault; succeeding when it is already undone or gone."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionRequest:
    """One remediation step to carry out."""

    action: str
    target_name: str
    target: TargetSpec
    params: Spec
    dry_run: bool = False


@runtime_checkable
class ActionDriver(Protocol):
    """Carries out healing actions (``docker.restart``, ``process.start``, ...)."""

    kind: TargetKind

    async def act(self, request: ActionRequest) -> list[str]:
        """Perform the action; return the resources acted on."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    """One sample: did the probe pass, how long it took, what it saw."""

    ok: bool
    latency: float
    started: float
    status: int | None = None
    detail: str = ""
    value: float | None = None
    body: str | None = None
    """The start of an HTTP response body (bounded), for steady-state body checks."""


@runtime_checkable
class Probe(Protocol):
    """Takes one sample of a health signal; never hangs past its timeout."""

    async def check(self) -> ProbeResult:
        """Sample once. A timeout or error is a failed sample, not an exception."""
        ...

    async def aclose(self) -> None:
        """Release what the probe holds (its own keep-alive client); idempotent.

        A client or connection lent to the probe by its owner stays open.
        """
        ...


@runtime_checkable
class Clock(Protocol):
    """Time, injected so backoff and schedules are tested on a manual clock."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    def now(self) -> datetime:
        """The aware wall-clock time."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something that happened, for logs, metrics, reports and audit."""

    kind: str
    at: datetime
    run_id: str = ""
    fields: Mapping[str, JSON] = field(default_factory=dict)


@runtime_checkable
class RunJournal(Protocol):
    """The crash-safe record of a run.

    Fault records (``intent``, ``applied``, ``reverted``, ``revert_failed``) are
    durable when the call returns, with every note written before them; notes
    may be written in batches, off the caller's thread.
    """

    def intent(self, handle: Handle, deadline: datetime) -> int:
        """Record that a fault is about to be applied (before touching anything)."""
        ...

    def applied(self, handle: Handle) -> int:
        """Record that the fault is in effect."""
        ...

    def reverted(self, handle: Handle) -> int:
        """Record that the fault was undone."""
        ...

    def revert_failed(self, handle: Handle, error: str) -> int:
        """Record that undoing failed; ``aftershock recover`` will retry."""
        ...

    def note(self, kind: str, **fields: JSON) -> int:
        """Record anything else about the run (phases, samples, verdict)."""
        ...


@runtime_checkable
class ResourceJournal(Protocol):
    """The crash-safe record of what a run creates for itself (a proxy it provisions).

    The same protocol as faults, so a crash at any point leaves a record that
    ``aftershock recover`` can act on::

        journal.resource_intent(handle)            # before the call that creates it
        journal.resource_created(handle)           # with what the backend answered
        journal.resource_released(handle, outcome) # deleted, never there, or not ours
    """

    def resource_intent(self, handle: Handle) -> int:
        """Record that the resource is about to be created (before touching anything)."""
        ...

    def resource_created(self, handle: Handle) -> int:
        """Record that it was created, with the backend's answer in ``handle.undo``."""
        ...

    def resource_released(self, handle: Handle, outcome: str) -> int:
        """Record that aftershock holds nothing there any more, and why (``outcome``)."""
        ...

    def resource_release_failed(self, handle: Handle, error: str) -> int:
        """Record that removing it failed; ``aftershock recover`` will retry."""
        ...


@runtime_checkable
class EventSink(Protocol):
    """Receives events; must not block or raise."""

    def emit(self, event: Event) -> None:
        """Take one event."""
        ...
