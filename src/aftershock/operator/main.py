"""``run_operator``: leader election, then kopf, the scheduler and the health server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, Final

import kopf
import structlog

from aftershock.observability.health import HealthServer
from aftershock.operator.failover import take_over
from aftershock.operator.handlers import OperatorState, build_registry, wait_any
from aftershock.operator.kube import KubeAccess
from aftershock.operator.leader import LeaseElector
from aftershock.operator.metrics import OperatorMetrics
from aftershock.operator.schedulestore import KubeScheduleStore
from aftershock.operator.shards import Membership, ShardedHealers
from aftershock.scheduling.blocking import in_thread
from aftershock.scheduling.scheduler import ChaosScheduler
from aftershock.settings import Settings

__all__ = ["LEASE_NAME", "kopf_settings", "run_operator"]

SWEEP_SECONDS = 30.0
"""How often a leader retries reverts that failed when it took over."""

LEASE_NAME = "aftershock-operator"
"""The ``coordination.k8s.io/v1`` Lease the replicas compete for."""

_log = structlog.get_logger("aftershock.operator")


class _NotKopfs(Collection["asyncio.Task[Any]"]):
    """The tasks kopf must leave alone when it stops: every task not running kopf's code.

    ``kopf.operator()`` cancels *every* task created after it started, since it
    cannot tell its own apart; in a process that also runs the scheduler, the
    runs, the lease loop and the health server, that would cancel them all.
    """

    def __contains__(self, task: object) -> bool:
        get_coro = getattr(task, "get_coro", None)
        code = getattr(get_coro() if get_coro else None, "cr_code", None)
        return code is None or "kopf" not in Path(code.co_filename).parts

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(())

    def __len__(self) -> int:
        return 0


KOPF_WORKERS: Final = 64
"""How many resources kopf handles at once."""
KOPF_WORKER_IDLE: Final = 0.2
"""How long a worker waits for another event of its resource (kopf's default: 5 s)."""


def kopf_settings() -> kopf.OperatorSettings:
    """kopf configured for least privilege and no peering.

    No scanning of CRDs and namespaces at cluster scope (nothing to discover),

    Progress and the diff base live in ``aftershock.dev/`` annotations, and kopf
    posts no ``core/v1`` events of its own (the operator posts ``events.k8s.io/v1``
    events itself). No handler needs a finalizer; ``aftershock.dev/operator`` is the
    name kopf removes from resources an earlier version marked with it.

    At most ``KOPF_WORKERS`` resources are handled at once, each worker waiting
    ``KOPF_WORKER_IDLE`` seconds for more events of its resource before it ends:
    a burst of resources costs bounded memory, and the workers go round quickly.
    """
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False
    # No cluster-wide CRD and namespace scanning: the resources and the one namespace are
    # known, and scanning would need list/watch on CRDs and namespaces at cluster scope.
    settings.scanning.disabled = True
    settings.persistence.finalizer = "aftershock.dev/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="aftershock.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="aftershock.dev", key="last-handled-configuration"
    )
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
    settings.queueing.worker_limit = KOPF_WORKERS
    settings.queueing.idle_timeout = KOPF_WORKER_IDLE
    return settings


async def _lead(
    state: OperatorState,
    elector: LeaseElector,
    stop: asyncio.Event,
) -> None:
    """One leadership term: take over, read the lever, schedule, run kopf until it ends."""
    settings = state.settings
    await take_over(state.stores, settings)
    await state.sync_lever()
    scheduler = ChaosScheduler(
        settings=settings,
        run=state.run_scheduled,
        store=KubeScheduleStore(state.kube, state.namespace),
        admission=state.admission,
        blocking=in_thread,  # API calls: kopf's handlers and the lease go on meanwhile
    )
    await scheduler.start()
    state.scheduler = scheduler
    term_over = asyncio.Event()

    async def watch_term() -> None:
        await wait_any(stop.wait(), elector.following.wait())
        term_over.set()

    watcher = asyncio.create_task(watch_term())
    sweeper = asyncio.create_task(_sweep(state, term_over))
    try:
        root_tasks = await kopf.spawn_tasks(
            registry=build_registry(state),
            settings=kopf_settings(),
            clusterwide=False,
            namespaces=[state.namespace],
            standalone=True,
            stop_flag=term_over,
        )
        await kopf.run_tasks(root_tasks, ignored=_NotKopfs())
    finally:
        for task in (watcher, sweeper):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        state.scheduler = None
        state.references.clear()
        await scheduler.stop()
    if not term_over.is_set():
        stop.set()  # kopf ended on its own (a signal): the whole operator stops


async def _sweep(state: OperatorState, term_over: asyncio.Event) -> None:
    """Retry, every ``SWEEP_SECONDS``, what an earlier take-over could not revert."""
    while not term_over.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(term_over.wait(), timeout=SWEEP_SECONDS)
            return
        try:
            await take_over(state.stores, state.settings)
        except Exception:  # noqa: BLE001 - logged; the next sweep tries again
            _log.exception("take-over sweep failed")


async def run_operator(
    *,
    namespace: str,
    settings: Settings,
    identity: str,
    stop: asyncio.Event,
    kubeconfig: Path | None = None,
    health_listen: tuple[str, int] | None = ("0.0.0.0", 8080),  # noqa: S104 - a pod's port
    lease_duration: float = 15.0,
    renew_every: float = 5.0,
    on_ready: Callable[[tuple[str, int] | None], None] | None = None,
    on_state: Callable[[OperatorState], Any] | None = None,
) -> None:
    """Run the operator in ``namespace`` until ``stop`` is set.

    Every replica runs the lease loop, the health server and the healers of its
    shard of the HealingPolicies (``operator.shards``); only the lease holder
    runs kopf (experiments, the lever) and the scheduler. Everything that must outlive the
    process is in the API (``operator.stores``, ``operator.schedulestore``).
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    kube = KubeAccess(kubeconfig)
    metrics = OperatorMetrics()
    elector = LeaseElector(
        kube,
        namespace=namespace,
        name=LEASE_NAME,
        identity=identity,
        lease_duration=lease_duration,
        renew_every=renew_every,
        renew_deadline=lease_duration * 2 / 3,
    )
    state = OperatorState(
        kube=kube,
        settings=settings,
        namespace=namespace,
        identity=identity,
        metrics=metrics,
        is_leader=elector.leading.is_set,
    )
    if on_state is not None:
        on_state(state)
    shards = ShardedHealers(
        kube,
        Membership(kube, namespace, identity, lease_duration=lease_duration),
        state.heal,
        namespace=namespace,
        sync_every=min(2.0, renew_every),
    )
    state.shards = shards
    server = HealthServer(
        status=lambda: {
            "identity": identity,
            "leader": elector.leading.is_set(),
            "holder": elector.holder,
            "scheduled": len(state.references),
            "healers": len(state.healers),
            "members": shards.members,
            "shard": shards.owned,
        },
        ready=lambda: elector.contacted,
        metrics=metrics.render,
    )
    address = await server.start(*health_listen) if health_listen is not None else None
    election = asyncio.create_task(elector.run(stop))

    async def heal_shard() -> None:
        async with state.healing_term():
            await shards.run(stop)

    healing = asyncio.create_task(heal_shard(), name="aftershock-shard")
    if on_ready is not None:
        on_ready(address)
    _log.info("operator started", namespace=namespace, identity=identity, listen=address)
    try:
        while not stop.is_set():
            await wait_any(stop.wait(), elector.leading.wait())
            if stop.is_set():
                break
            metrics.leader.set(1)
            try:
                await _lead(state, elector, stop)
            except Exception:  # noqa: BLE001 - see below; logged with its traceback
                # A failed term (API down, a crash in kopf) must not end the process:
                # it keeps the lease loop alive and tries again while it still leads.
                _log.exception("leadership term failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=renew_every)
            finally:
                metrics.leader.set(0)
    finally:
        stop.set()
        await election
        await healing
        if health_listen is not None:
            await server.close()
        kube.close()
