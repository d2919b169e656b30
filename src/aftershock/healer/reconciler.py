"""The healer: watch, decide, remediate, escalate; one ``Healer`` per policy.

One ``Sampler`` per watch feeds its ``Watch`` (a slow endpoint delays no other
watch; with a shared ``SampleGate`` an overloaded process samples them in
turn). A sample that changes a watch's verdict or phase wakes the reconcile
loop at once; other samples wake it at most once per shortest sampling period
(a round costs time in proportion to the playbooks, and a healer watching a
thousand endpoints must not pay it a thousand times a second). The loop also
wakes itself when a backoff, a ``when.for`` or a breaker's reset falls due. Each round decides,
for every playbook that applies (declaration order), through ``decide``; the
first one let through on a target starts an attempt as its own task (one
attempt at a time per target), and the attempt's outcome feeds the gates.
Attempts that only *did* something (no ``wait.healthy``) are judged when their
backoff runs out: healthy by then is a success, else a failure for the breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from functools import partial

from aftershock.errors import ConfigError
from aftershock.healer import events as ev
from aftershock.healer.attempts import Attempts
from aftershock.healer.decisions import DecisionLog, PauseBoard, decide, given_up
from aftershock.healer.escalation import EscalateFn, Escalator
from aftershock.healer.incidents import Incident, IncidentBook, healing_result
from aftershock.healer.matching import Match, matching, next_due
from aftershock.healer.remediate import PlaybookRunner, StandaloneAction
from aftershock.healer.state import BreakerPhase, BreakerState, MemoryStateStore, StateStore
from aftershock.healer.status import HealerStatus, build_status
from aftershock.healer.throttling import Decision, Throttler
from aftershock.healer.timing import sleep_or_wake
from aftershock.healer.watch import Phase, Transition, Watch
from aftershock.model.policy import HealingPolicy
from aftershock.model.results import HealingResult
from aftershock.model.targets import TargetKind
from aftershock.ports import ActionDriver, Clock, EventSink, Probe, ProbeResult
from aftershock.sampling import SampleGate, Sampler

__all__ = ["Healer"]


class Healer:
    """Heals the targets of one ``HealingPolicy`` through injected collaborators.

    ``probes`` maps each watch name to its probe; ``actions`` maps a target kind
    to the driver that carries out its actions; ``standalone`` maps ``http.call``
    and ``command`` to callables. ``store`` keeps the throttling state across
    restarts (in memory when omitted, and always in a dry run); ``escalate``
    receives an ``Escalation`` when the healer gives up on a target;
    ``fault_of(target)`` may name the fault behind an incident. ``gate`` is
    shared by the samplers of every healer in a process (``HealerHost`` owns
    it) so that an overloaded process delays samples in turn.

    Each sample reaches its watch once, through the sampler's ``on_sample``;
    nothing reads a sampler's series back, so each keeps ``sample_capacity``
    samples (the newest only, by default). Keeping 100 per watch made every
    full garbage collection of a process watching thousands of endpoints walk
    hundreds of thousands of samples, a pause long enough to time out every
    check in flight.
    """

    def __init__(
        self,
        policy: HealingPolicy,
        *,
        probes: Mapping[str, Probe],
        actions: Mapping[TargetKind, ActionDriver],
        clock: Clock,
        events: EventSink,
        standalone: Mapping[str, StandaloneAction] | None = None,
        store: StateStore | None = None,
        escalate: EscalateFn | None = None,
        rng: random.Random | None = None,
        fault_of: Callable[[str], str | None] | None = None,
        sample_capacity: int = 1,
        incident_capacity: int = 1000,
        stagger: bool = False,
        gate: SampleGate | None = None,
    ) -> None:
        spec = policy.spec
        missing = sorted(set(spec.watch) - set(probes))
        if missing:
            msg = f"policy {policy.metadata.name}: no probe for watch(es) {', '.join(missing)}"
            raise ConfigError(msg)
        ns = policy.metadata.namespace
        self.policy = policy
        self._stagger = stagger
        self._gate = gate
        self._sweep = min((w.every.total_seconds() for w in spec.watch.values()), default=1.0)
        self._next_sweep = float("-inf")
        self.key = f"{ns}/{policy.metadata.name}" if ns else policy.metadata.name
        """The policy's name (``namespace/name`` in a cluster): the key of its state."""
        self.dry_run = spec.dry_run
        self.running = False
        self._clock = clock
        self._probes = probes
        self._sample_capacity = sample_capacity
        emit = self._emit = ev.Emitter(events, clock, self.key)
        self.watches: dict[str, Watch] = {
            name: Watch(
                name, w, clock=clock, on_transition=self._transitioned, on_health=self._flipped
            )
            for name, w in spec.watch.items()
        }
        # A dry run keeps its bookkeeping in memory: it must not spend the real policy's limits.
        self.throttler = Throttler(
            self.key,
            spec,
            MemoryStateStore() if store is None or self.dry_run else store,
            rng or random.Random(),
            on_breaker=self._breaker_changed,
            on_error=lambda exc: emit(ev.STATE_ERROR, error=str(exc)),
        )
        self.escalator = Escalator(emit, escalate, dry_run=self.dry_run)
        self.book = IncidentBook(emit, fault_of=fault_of, capacity=incident_capacity)
        self._log = DecisionLog(emit)
        self._wakeup = asyncio.Event()
        self.attempts = Attempts(
            runner=PlaybookRunner(
                spec,
                actions=actions,
                standalone=standalone or {},
                clock=clock,
                watches=self.watches,
                emit=emit,
                dry_run=self.dry_run,
            ),
            throttler=self.throttler,
            escalator=self.escalator,
            watches=self.watches,
            log=self._log,
            emit=emit,
            wakeup=self._wakeup,
        )
        self.paused_targets = PauseBoard(emit)
        self._stop = asyncio.Event()
        self._main: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Sample, decide and heal until ``stop`` is set (or the task is cancelled)."""
        stop = stop or self._stop
        samplers = [
            Sampler(
                self._probes[name],
                watch.spec.every,
                clock=self._clock,
                name=f"{self.key}/{name}",
                capacity=self._sample_capacity,
                on_sample=partial(self._sampled, name),
                gate=self._gate,
            )
            for name, watch in self.watches.items()
        ]
        self.running = True
        try:
            for index, sampler in enumerate(samplers):
                # Spread first samples over the period so many watches do not all
                # probe in the same instant of every second.
                sampler.start(index * sampler.every / len(samplers) if self._stagger else 0.0)
            while not stop.is_set():
                self._wakeup.clear()
                await sleep_or_wake(self._clock, self._reconcile(), self._wakeup, stop)
        finally:
            self.running = False
            for sampler in samplers:
                sampler.cancel()
            await asyncio.gather(*(sampler.stop() for sampler in samplers))
            await self.attempts.cancel()
            await self.escalator.drain()

    def start(self) -> None:
        """Run in a background task; ``await stop()`` ends it."""
        if self._main is None or self._main.done():
            self._stop.clear()
            self._main = asyncio.get_running_loop().create_task(self.run(self._stop))

    async def stop(self) -> None:
        """Stop sampling and cancel attempts in flight; idempotent."""
        self._stop.set()
        main, self._main = self._main, None
        if main is not None:
            await main

    async def __aenter__(self) -> Healer:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ pause / reset

    def pause(self, targets: Iterable[str], why: str = "") -> None:
        """Stand back on ``targets`` (nestable): decisions are logged, not acted on."""
        self.paused_targets.pause(targets, why)

    def resume(self, targets: Iterable[str]) -> None:
        """End one ``pause`` of ``targets``."""
        self.paused_targets.resume(targets)
        self._wakeup.set()

    @contextlib.asynccontextmanager
    async def paused(self, targets: Iterable[str]) -> AsyncIterator[None]:
        """Stand back on ``targets`` for the block; attempts already running finish first."""
        names = set(targets)
        self.pause(names)
        try:
            running = {task for name, task in self.attempts.busy.items() if name in names}
            if running:
                await asyncio.wait(running)
            yield
        finally:
            self.resume(names)

    def reset(self, target: str) -> None:
        """Manual reset: close the target's breaker and take it out of ``escalated``."""
        self.throttler.close(target)
        for name, watch in self.watches.items():
            if target not in {watch.target, name}:
                continue
            incident = self.book.open.get(name)
            if incident is not None:
                incident.escalated = False
                incident.given_up.clear()
            watch.reset()
        self._log.forget()
        self._wakeup.set()

    # ------------------------------------------------------------------ views

    @property
    def incidents(self) -> list[Incident]:
        """Recent incidents, oldest first (open ones included)."""
        return list(self.book.recent)

    def status(self) -> HealerStatus:
        """A snapshot for ``/healthz`` and metrics."""
        return build_status(
            policy=self.key,
            spec=self.policy.spec,
            running=self.running,
            dry_run=self.dry_run,
            watches=self.watches,
            throttler=self.throttler,
            incidents=self.book,
            busy=set(self.attempts.busy),
            paused=self.paused_targets.names(),
            standing_back=self.paused_targets.reasons(),
            now=self._clock.now().timestamp(),
        )

    def healing_result(self, since: float, expected: str | None) -> HealingResult:
        """Whether ``expected`` (any playbook if None) acted after ``since`` (monotonic).

        Makes the healer a ``HealingObserver`` for an experiment run in-process.
        """
        return healing_result(self.attempts.acted, self.book.recent, since, expected)

    # ------------------------------------------------------------------ watches

    def _sampled(self, name: str, result: ProbeResult) -> None:
        watch = self.watches[name]
        before = (watch.healthy, watch.phase)
        watch.observe(result)
        now = self._clock.monotonic()
        if (watch.healthy, watch.phase) != before or now >= self._next_sweep:
            self._next_sweep = now + self._sweep
            self._wakeup.set()

    def _transitioned(self, change: Transition) -> None:
        incident = self.book.open.get(change.watch)
        self._emit(ev.TRANSITION, **change.fields(), incident=incident.id if incident else None)

    def _flipped(self, watch: Watch, healthy: bool) -> None:
        self._log.forget(watch.name)
        if not healthy:
            self.book.opened(watch.name, watch.target, watch.first_failure)
            return
        self.attempts.restored(watch.name)
        self.book.closed(watch.name)

    def _breaker_changed(self, target: str, breaker: BreakerState, old: BreakerPhase) -> None:
        self._emit(
            ev.BREAKER,
            target=target,
            failures=breaker.failures,
            **{"from": old.value, "to": breaker.phase.value},
        )

    # ------------------------------------------------------------------ deciding

    def _reconcile(self) -> float | None:
        """One round of decisions; returns the seconds until something falls due."""
        mono, now = self._clock.monotonic(), self._clock.now().timestamp()
        dues = self.attempts.judge(now)
        for playbook in self.policy.spec.playbooks:
            watch = self.watches.get(playbook.when.unhealthy)
            cooldown = playbook.limits.cooldown.total_seconds()
            if watch is not None and watch.healthy and mono - watch.since >= cooldown:
                self.throttler.relax(playbook)  # healthy for a whole cooldown: start afresh
        since = {name: w.unhealthy_since for name, w in self.watches.items()}
        if (due := next_due(self.policy.spec, since, mono)) is not None:
            dues.append(due - mono)
        decided: set[str] = set()
        paused = self.paused_targets.names()
        for match in matching(self.policy.spec, since, mono):
            busy = match.targets & self.attempts.busy.keys()
            if match.target in decided or busy or match.probe in self.attempts.pending:
                continue
            incident = self.book.open.get(match.probe)
            permit = decide(
                match, incident=incident, paused=paused, throttler=self.throttler, now=now
            )
            if permit.allowed:
                self.attempts.start(match, incident, permit, now)
            else:
                self._log.say(match, permit, incident=incident)
            if permit.decision in {Decision.ACT, Decision.PAUSED, Decision.ESCALATED}:
                decided.add(match.target)
            elif permit.decision is Decision.BREAKER_OPEN:
                decided.add(match.target)
                self.watches[match.probe].enter(Phase.ESCALATED, "breaker open")
            elif permit.reason == "max-attempts" and self._failing(match):
                self._exhausted(match, incident)
            if permit.until is not None:
                dues.append(permit.until - now)
        return max(min(dues), 0.001) if dues else None

    def _failing(self, match: Match) -> bool:
        return self.throttler.throttle(match.playbook.name).state.failures > 0

    def _exhausted(self, match: Match, incident: Incident | None) -> None:
        """Every attempt of the window is used up and the last failed: ``onFailure``."""
        on_failure = match.playbook.on_failure
        if on_failure == "retry" or incident is None:
            return
        incident.given_up.add(match.playbook.name)
        if on_failure == "escalate":
            self.attempts.escalate(match, incident, "attempts-exhausted", "maxAttempts used up")
        else:
            self._log.say(match, given_up(match), incident=incident)
