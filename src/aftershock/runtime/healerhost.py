"""``HealerHost``: the one place that starts healers, for ``run``, ``heal`` and the operator.

A host holds what all its healers share: the state store, the event sinks
(metrics, the audit log, a run's journal and events) and, in a daemon, the
task that follows the target leases of running experiments: a healer stands
back on a target a run holds unless the experiment lets healers act
(``spec.healing: allow``, or ``expect.healedBy``), and its status says which
run holds it (``runtime/standback.py``).
For each healer it holds what that healer alone holds: its drivers (its own,
or borrowed from the caller), its probes and their shared HTTP client, and
its task. Leaving a healer's :meth:`HealerHost.healing` block, or the host,
stops the healer first and then releases the rest in reverse order.

The callers differ only in how the host is configured:

==================  ==================  ===========================================
constructor         state store         event sinks; target leases
==================  ==================  ===========================================
``for_run``         memory, per run     the run's events and journal; not followed
``for_heal``        SQLite in the home  audit log and metrics; the home's, followed
``for_operator``    the caller's        audit log, metrics, the caller's sinks; the
                                        caller's leases, followed
==================  ==================  ===========================================
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Final, Self

import structlog

from aftershock.clock import SystemClock
from aftershock.drivers.standalone import HANDLERS as STANDALONE_HANDLERS
from aftershock.healer import (
    STATE_FILE,
    Healer,
    MemoryStateStore,
    SqliteStateStore,
    StateStore,
    settle_heap,
)
from aftershock.model.policy import HealingPolicy
from aftershock.model.targets import TargetKind, TargetSpec
from aftershock.observability.audit import AuditLog
from aftershock.observability.health import Readiness
from aftershock.observability.metrics import FanOut, HealerMetrics, MeteredProbe
from aftershock.ports import Clock, EventSink, Probe
from aftershock.probes.factory import build_probe, shared_client
from aftershock.runtime.escalation import escalation_sender
from aftershock.runtime.healingnotes import HealingNotes, Notebook
from aftershock.runtime.local import LocalTargetLeases
from aftershock.runtime.standback import PAUSE_POLL_SECONDS, StandBack
from aftershock.runtime.stores import TargetLeases
from aftershock.runtime.wiring import build_drivers
from aftershock.sampling import SampleGate
from aftershock.settings import Settings

__all__ = [
    "AUDIT_LOG",
    "PAUSE_POLL_SECONDS",
    "HealerHost",
]

AUDIT_LOG: Final = Path("audit") / "healer.jsonl"
"""The healers' audit log, under ``$AFTERSHOCK_HOME``."""

_log = structlog.get_logger("aftershock.heal")


class HealerHost:
    """Starts healers and owns everything they hold; see the module docstring.

    Use it as an async context manager; inside, :meth:`add` starts a healer
    that lives as long as the host, and :meth:`healing` one that lives for a
    block. Closing the host stops every healer it started, all together.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: StateStore,
        clock: Clock | None = None,
        sinks: Sequence[EventSink] = (),
        metrics: HealerMetrics | None = None,
        audit: Path | None = None,
        leases: TargetLeases | None = None,
        settle: bool = False,
    ) -> None:
        """A host; nothing is opened before it is entered.

        ``sinks`` receive every healer event; so do ``metrics`` (which also
        times every probe sample and shows every watch's state from the start)
        and, when ``audit`` is a path, an audit log there. With ``leases`` the
        host's healers stand back on the targets that running experiments
        hold, unless those experiments let healers act. With ``settle`` (the
        daemons) each healer's long-lived objects are frozen out of the
        garbage collector once its watches have sampled (``settle_heap``).
        """
        self.settings = settings
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.metrics = metrics
        self._sinks = tuple(sinks)
        self._audit_path = audit
        self._standback = StandBack(leases) if leases is not None else None
        self._settle = settle
        self._frozen = False
        self._healers: list[Healer] = []
        self._events: FanOut | None = None
        self._stack: AsyncExitStack | None = None
        self.gate = SampleGate(
            clock=self.clock, on_lag=metrics.observe_lag if metrics is not None else None
        )
        """Shared by every healer's samplers: an overloaded host samples in turn."""

    # ------------------------------------------------------------ configurations
    @classmethod
    def for_run(
        cls, settings: Settings, *, clock: Clock, events: EventSink, journal: Notebook
    ) -> Self:
        """The host of a policy healing inside an experiment run.

        Its state is the run's alone (a run must not spend a daemon's
        ``maxAttempts``), and its steps go to the run's events and journal,
        where the report and the verdict find them.
        """
        notes = HealingNotes(journal, clock, clock.monotonic())
        return cls(settings=settings, store=MemoryStateStore(), clock=clock, sinks=(events, notes))

    @classmethod
    def for_heal(
        cls, settings: Settings, *, metrics: HealerMetrics, clock: Clock | None = None
    ) -> Self:
        """The host of ``aftershock heal``: state in SQLite under the home, so a
        restarted daemon neither refills ``maxAttempts`` nor closes an open breaker."""
        store = SqliteStateStore(settings.home / STATE_FILE)
        leases = LocalTargetLeases(settings.home)
        return cls._daemon(settings, store=store, metrics=metrics, clock=clock, leases=leases)

    @classmethod
    def for_operator(
        cls,
        settings: Settings,
        *,
        metrics: HealerMetrics,
        leases: TargetLeases,
        store: StateStore | None = None,
        sinks: Sequence[EventSink] = (),
        clock: Clock | None = None,
    ) -> Self:
        """The host of the operator's healers: what ``heal`` has, over the cluster's
        target leases, with the caller's state store (in memory by default) and
        event sinks (the policies' Events)."""
        return cls._daemon(
            settings,
            store=store if store is not None else MemoryStateStore(),
            metrics=metrics,
            clock=clock,
            leases=leases,
            sinks=sinks,
        )

    @classmethod
    def _daemon(
        cls,
        settings: Settings,
        *,
        store: StateStore,
        metrics: HealerMetrics,
        clock: Clock | None,
        leases: TargetLeases,
        sinks: Sequence[EventSink] = (),
    ) -> Self:
        return cls(
            settings=settings,
            store=store,
            clock=clock,
            sinks=sinks,
            metrics=metrics,
            audit=settings.home / AUDIT_LOG,
            leases=leases,
            settle=True,
        )

    # ------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Self:
        if self._stack is not None:
            msg = "a HealerHost is entered once"
            raise RuntimeError(msg)
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            sinks = list(self._sinks)
            if self._audit_path is not None:
                audit = AuditLog(self._audit_path)
                stack.callback(audit.close)
                sinks.append(audit)
            if self.metrics is not None:
                sinks.append(self.metrics)
            self._events = FanOut(sinks)
            if self._standback is not None:
                follower = asyncio.create_task(
                    self._standback.follow(lambda: self._healers), name="aftershock-pauses"
                )
                stack.push_async_callback(_cancel, follower)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        try:
            await self._stop_all()
        finally:
            await stack.aclose()
            self._events = None
            if self._frozen:
                gc.unfreeze()  # what the healers held is collectable again
                self._frozen = False

    async def _stop_all(self) -> None:
        # Together: a daemon with many policies stops in the time of its slowest healer.
        results = await asyncio.gather(
            *(healer.stop() for healer in self._healers), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    # ------------------------------------------------------------ healers
    @property
    def healers(self) -> tuple[Healer, ...]:
        """The healers running now, in the order they started."""
        return tuple(self._healers)

    def ready(self) -> Readiness:
        """Ready: at least one healer, every one running, and the samples not overloaded."""
        if not (self._healers and all(h.running for h in self._healers)):
            return Readiness(ready=False, reason="not every healer is running")
        overload = self.gate.overload()
        return Readiness(ready=overload is None, reason=overload or "")

    async def start_drivers(
        self, targets: Mapping[str, TargetSpec], *, log_dir: Path, dry_run: bool = False
    ) -> dict[TargetKind, Any]:
        """Drivers for ``targets``, started now and stopped when the host closes.

        Pass them to :meth:`add` to let several healers share them (one
        supervisor per process target, one Docker client). With ``dry_run``
        they are built but not started: starting supervises processes, and a
        dry run touches nothing (a dry-run action only names what it would do).
        """
        if dry_run:
            return build_drivers(self.settings, targets, log_dir=log_dir)
        return await _started_drivers(self._open_stack(), self.settings, targets, log_dir)

    async def add(
        self, policy: HealingPolicy, *, drivers: Mapping[TargetKind, Any] | None = None
    ) -> Healer:
        """Start a healer for ``policy`` that runs until the host closes."""
        healing = self.healing(policy, drivers=drivers)
        return await self._open_stack().enter_async_context(healing)

    @contextlib.asynccontextmanager
    async def healing(
        self, policy: HealingPolicy, *, drivers: Mapping[TargetKind, Any] | None = None
    ) -> AsyncIterator[Healer]:
        """Run a healer for ``policy`` for the block.

        Without ``drivers`` the healer gets drivers of its own for the policy's
        targets (their logs under ``$AFTERSHOCK_HOME/logs/<policy>``), stopped
        after it; borrowed drivers stay with their owner.
        """
        events = self._open_events()
        async with AsyncExitStack() as stack:
            if drivers is None:
                log_dir = self.settings.home / "logs" / policy.metadata.name
                drivers = await _started_drivers(stack, self.settings, policy.spec.targets, log_dir)
            healer = self._build(policy, drivers, events, stack)
            if self.metrics is not None:
                # Every watch is exported from the start, not only after its first transition.
                status = healer.status()
                for watch in status.watches:
                    self.metrics.watch_state(status.policy, watch.name, watch.target, watch.phase)
            if self._standback is not None:
                # Stand back before the first sample, not after the next poll of the leases.
                await self._standback.read()
                self._standback.apply(healer)
            self._healers.append(healer)
            stack.callback(self._forget, healer)
            healer.start()
            stack.push_async_callback(healer.stop)
            if self._settle:
                settling = asyncio.create_task(self._settle_heap(healer), name="aftershock-settle")
                stack.push_async_callback(_cancel, settling)
            yield healer

    async def _settle_heap(self, healer: Healer) -> None:
        # A heap someone else froze first stays frozen when this host closes.
        theirs = gc.get_freeze_count() > 0 and not self._frozen
        await settle_heap([healer], self.clock)
        self._frozen = self._frozen or not theirs

    def _build(
        self,
        policy: HealingPolicy,
        drivers: Mapping[TargetKind, Any],
        events: EventSink,
        stack: AsyncExitStack,
    ) -> Healer:
        client = shared_client(len(policy.spec.watch))
        stack.push_async_callback(client.aclose)
        probes: dict[str, Probe] = {}
        for name, watch in policy.spec.watch.items():
            probe = build_probe(watch, client=client)
            stack.push_async_callback(probe.aclose)
            probes[name] = (
                probe if self.metrics is None else MeteredProbe(probe, name, self.metrics)
            )
        return Healer(
            policy,
            probes=probes,
            actions=dict(drivers),
            clock=self.clock,
            events=events,
            standalone=STANDALONE_HANDLERS,
            store=self.store,
            escalate=escalation_sender(policy),
            stagger=True,
            gate=self.gate,
        )

    def _open_stack(self) -> AsyncExitStack:
        if self._stack is None:
            msg = "enter the HealerHost (async with) before starting healers"
            raise RuntimeError(msg)
        return self._stack

    def _open_events(self) -> FanOut:
        self._open_stack()
        assert self._events is not None  # set together with the stack
        return self._events

    def _forget(self, healer: Healer) -> None:
        self._healers.remove(healer)
        if self._standback is not None:
            self._standback.forget(healer)


async def _started_drivers(
    stack: AsyncExitStack, settings: Settings, targets: Mapping[str, TargetSpec], log_dir: Path
) -> dict[TargetKind, Any]:
    drivers = build_drivers(settings, targets, log_dir=log_dir)
    for driver in drivers.values():
        await driver.start(stack)
    return drivers


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
