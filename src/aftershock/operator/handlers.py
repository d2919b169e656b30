"""The operator's handlers: kopf's for ``Experiment`` and the lever ConfigMap, and the
healer loop of one ``HealingPolicy``.

kopf's handlers are registered on an explicit ``kopf.OperatorRegistry`` built per
leadership term by :func:`build_registry`; nothing touches kopf's global
default registry. kopf runs only while this replica holds the lease (see
``operator/__init__.py``), so the handlers need no leader checks of their own;
the scheduled run re-checks, because a run may fire just as leadership is lost.
HealingPolicies are healed on every replica, each its shard
(``operator.shards`` calls :meth:`OperatorState.heal`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

import kopf
import structlog

from aftershock import runtime
from aftershock.errors import AftershockError, BudgetExhausted, ExperimentInvalid
from aftershock.model import Experiment, HealingPolicy
from aftershock.model.schema import GROUP, VERSION
from aftershock.observability.audit import LoggedAudit
from aftershock.observability.metrics import HealerMetrics
from aftershock.operator.healerevents import PolicyEvents
from aftershock.operator.healerstate import KubeStateStore
from aftershock.operator.kube import KubeAccess
from aftershock.operator.metrics import OperatorMetrics
from aftershock.operator.resources import (
    PHASES,
    Validation,
    errored_status,
    healer_status,
    invalid_status,
    refused_status,
    run_status,
    valid_status,
    validate_resource,
)
from aftershock.operator.stores import OperatorStores, operator_stores
from aftershock.runtime import Admission, HealerHost, RunOutcome
from aftershock.settings import Settings

__all__ = ["LEVER_CONFIGMAP", "OperatorState", "Scheduler", "build_registry", "resource_key"]

LEVER_CONFIGMAP: Final = "aftershock-lever"
"""The kill switch in the cluster: ``data.engaged: "true"`` in the operator's namespace."""

EXPERIMENTS: Final = "experiments"
POLICIES: Final = "healingpolicies"

_log = structlog.get_logger("aftershock.operator")


class Scheduler(Protocol):
    """What the handlers need of ``scheduling.ChaosScheduler``."""

    async def upsert_async(self, key: str, experiment: Experiment) -> datetime | None:
        """Add or replace a job (its store's I/O off the event loop); the next fire time."""

    async def remove_async(self, key: str) -> None:
        """Forget a job (its store's I/O off the event loop)."""

    def next_run(self, key: str) -> datetime | None:
        """The next fire time of a job."""


def _split_path(path: str) -> tuple[str | int, ...]:
    return tuple(path.split(".")) if path else ()


def resource_key(namespace: str, name: str) -> str:
    """The scheduler key of a resource: ``namespace/name``."""
    return f"{namespace}/{name}"


def _reference(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {k: meta.get(k) for k in ("name", "namespace", "uid")},
    }


@dataclass(slots=True, kw_only=True)
class OperatorState:
    """The collaborators the handlers share (kopf's during one leadership term)."""

    kube: KubeAccess
    settings: Settings
    namespace: str
    identity: str
    metrics: OperatorMetrics
    is_leader: Callable[[], bool]
    scheduler: Scheduler | None = None
    references: dict[str, dict[str, Any]] = field(default_factory=dict)
    healers: dict[str, str] = field(default_factory=dict)
    on_run: Callable[[str, str], None] | None = None
    """Test hook: called with (key, run id) when a run finishes."""
    admission: Admission = field(init=False)
    """The admission step of every run the operator starts (and of its scheduler)."""
    healer_metrics: HealerMetrics = field(init=False)
    """The healers' metrics, on the operator's registry: served on its ``/metrics``."""
    healer_host: HealerHost | None = None
    """The host of this replica's healers (see :meth:`healing_term`)."""
    policy_events: PolicyEvents | None = None
    """The healers' Events (and their last action, recovery)."""
    shards: Any = None
    """This replica's ``ShardedHealers`` (members, owned policies), once started."""
    stores: OperatorStores = field(init=False)
    """The lever, ledger, run registry, fault records and target leases, in the API."""

    def __post_init__(self) -> None:
        self.stores = operator_stores(self.kube, self.namespace, self.identity)
        self.admission = Admission(self.settings, stores=self.stores.ports())
        self.healer_metrics = HealerMetrics(self.metrics.registry)

    @contextlib.asynccontextmanager
    async def healing_term(self) -> AsyncIterator[HealerHost]:
        """Host this replica's healers; closing it stops every one of them.

        The same host as ``aftershock heal`` (audit log, metrics, target leases),
        with the healing state in each HealingPolicy's status (it survives a pod
        restart and a new leader) and every action an Event on its policy.
        """
        events = PolicyEvents(self.event)
        async with events.running():
            host = HealerHost.for_operator(
                self.settings,
                metrics=self.healer_metrics,
                leases=self.stores.leases,
                store=KubeStateStore(self.kube, self.namespace),
                sinks=(events, LoggedAudit()),
            )
            async with host:
                self.healer_host, self.policy_events = host, events
                try:
                    yield host
                finally:
                    self.healer_host = self.policy_events = None

    async def event(self, body: Mapping[str, Any], type_: str, reason: str, note: str) -> None:
        """Post a Kubernetes Event; never fail the caller over it."""
        try:
            await self.kube.post_event(
                body, type_=type_, reason=reason, action=reason, note=note, instance=self.identity
            )
        except (AftershockError, LookupError, RuntimeError) as exc:
            _log.warning("cannot post event", reason=reason, error=str(exc))

    # ------------------------------------------------------------ experiments
    async def experiment_changed(self, body: Mapping[str, Any]) -> None:
        """Validate; report; (re)schedule or unschedule."""
        meta = body.get("metadata") or {}
        namespace, name = str(meta["namespace"]), str(meta["name"])
        key = resource_key(namespace, name)
        generation = meta.get("generation")
        checked = validate_resource(body, kind="Experiment", allow=self.settings.allow)
        if not isinstance(checked.document, Experiment):
            await self._unschedule(key)
            self.metrics.invalid.labels(kind="Experiment").inc()
            await self.kube.patch_status(
                EXPERIMENTS, namespace, name, invalid_status(checked, generation=generation)
            )
            await self.event(body, "Warning", "Invalid", checked.message)
            return
        experiment = checked.document
        self.references[key] = _reference(body)
        next_run = None
        if experiment.spec.schedule is not None and self.scheduler is not None:
            try:
                next_run = await self.scheduler.upsert_async(key, experiment)
            except ExperimentInvalid as exc:
                rejected = Validation(
                    None, [(_split_path(p.path), p.message) for p in exc.problems]
                )
                await self._unschedule(key)
                await self.kube.patch_status(
                    EXPERIMENTS, namespace, name, invalid_status(rejected, generation=generation)
                )
                await self.event(body, "Warning", "Invalid", rejected.message)
                return
        else:
            await self._unschedule(key)
        self.metrics.scheduled.set(len(self.references))
        phase = "Scheduled" if next_run is not None else "Idle"
        await self.kube.patch_status(
            EXPERIMENTS,
            namespace,
            name,
            valid_status(phase=phase, next_run=next_run, generation=generation),
        )

    async def experiment_deleted(self, namespace: str, name: str) -> None:
        """Stop the schedule of a deleted resource."""
        await self._unschedule(resource_key(namespace, name))

    async def _unschedule(self, key: str) -> None:
        self.references.pop(key, None)
        if self.scheduler is not None:
            await self.scheduler.remove_async(key)
        self.metrics.scheduled.set(len(self.references))

    async def run_scheduled(self, key: str, experiment: Experiment) -> str | RunOutcome:
        """The scheduler's job: run in-process, then write status and an event."""
        if not self.is_leader():
            _log.warning("not the leader any more; run skipped", key=key)
            return "skipped: not the leader"
        namespace, _, name = key.partition("/")
        body = self.references.get(key) or {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Experiment",
            "metadata": {"name": name, "namespace": namespace},
        }
        await self.kube.patch_status(EXPERIMENTS, namespace, name, {"phase": "Running"})
        next_run = None
        try:
            outcome = await runtime.run_experiment(
                experiment, settings=self.settings, admission=self.admission
            )
        except BudgetExhausted as exc:
            next_run = self._next_run(key)
            self.metrics.runs.labels(phase="Aborted").inc()
            status = refused_status(str(exc), next_run=next_run)
            await self.kube.patch_status(EXPERIMENTS, namespace, name, status)
            await self.event(body, "Warning", "Refused", str(exc))
            return f"refused: {exc}"
        except AftershockError as exc:
            next_run = self._next_run(key)
            self.metrics.runs.labels(phase="Errored").inc()
            await self.kube.patch_status(
                EXPERIMENTS, namespace, name, errored_status(str(exc), next_run=next_run)
            )
            await self.event(body, "Warning", "Errored", str(exc))
            return f"error: {exc}"
        result = outcome.result
        phase = PHASES[result.status]
        self.metrics.runs.labels(phase=phase).inc()
        next_run = self._next_run(key)
        status = run_status(result, next_run=next_run, journal=str(outcome.journal))
        await self.kube.patch_status(EXPERIMENTS, namespace, name, status)
        spent = ", ".join(f"{k} {v}" for k, v in status["budgetSpent"].items()) or "none"
        note = f"run {result.run_id}: {result.status.value}; budget spent: {spent}"
        if result.reason:
            note += f"; {result.reason}"
        await self.event(body, "Normal" if phase == "Succeeded" else "Warning", phase, note)
        if self.on_run is not None:
            self.on_run(key, result.run_id)
        return outcome

    def _next_run(self, key: str) -> datetime | None:
        return None if self.scheduler is None else self.scheduler.next_run(key)

    # ------------------------------------------------------------ healing policies
    async def heal(self, body: Mapping[str, Any], stopped: Any) -> None:
        """Run a policy's healer until the resource goes away; restart it on spec changes."""
        meta = body.get("metadata") or {}
        namespace, name = str(meta["namespace"]), str(meta["name"])
        key = resource_key(namespace, name)
        while not stopped:
            digest = _digest(body.get("spec"))
            checked = validate_resource(body, kind="HealingPolicy", allow=self.settings.allow)
            generation = meta.get("generation")
            if not isinstance(checked.document, HealingPolicy):
                self.metrics.invalid.labels(kind="HealingPolicy").inc()
                await self.kube.patch_status(
                    POLICIES, namespace, name, invalid_status(checked, generation=generation)
                )
                await self.event(body, "Warning", "Invalid", checked.message)
                await _until_changed(body, digest, stopped)
                continue
            await self.kube.patch_status(
                POLICIES,
                namespace,
                name,
                valid_status(phase="Healing", next_run=None, generation=generation),
            )
            self.healers[key] = digest
            self.metrics.healers.set(len(self.healers))
            try:
                await self._run_healer(checked.document, body, digest, stopped)
            finally:
                self.healers.pop(key, None)
                self.metrics.healers.set(len(self.healers))

    async def _run_healer(
        self, policy: HealingPolicy, body: Mapping[str, Any], digest: str, stopped: Any
    ) -> None:
        host = self.healer_host
        if host is None:
            msg = "healers run only inside OperatorState.healing_term"
            raise RuntimeError(msg)
        meta = body.get("metadata") or {}
        namespace, name = str(meta["namespace"]), str(meta["name"])
        async with host.healing(policy) as healer:
            _log.info("healer started", policy=policy.metadata.name)
            written: dict[str, Any] | None = None
            while not stopped and _digest(body.get("spec")) == digest:
                events = self.policy_events
                now = healer_status(
                    healer.status(),
                    watched_by=self.identity,
                    last_action=events.last_action.get(healer.key) if events else None,
                    last_recovery=events.last_recovery.get(healer.key) if events else None,
                )
                if now != written:
                    # a merge patch keeps keys it does not name: name the ended ones as null
                    ended = set((written or {}).get("standingBack") or {}) - set(
                        now["standingBack"]
                    )
                    patch = {**now, "standingBack": {**now["standingBack"], **dict.fromkeys(ended)}}
                    try:
                        await self.kube.patch_status(POLICIES, namespace, name, patch)
                        written = now
                    except (AftershockError, LookupError, RuntimeError) as exc:
                        _log.warning("cannot write the healer's status", error=str(exc))
                await stopped.wait(2.0)

    # ------------------------------------------------------------ the lever
    async def sync_lever(self) -> None:
        """Read the ConfigMap (absent = released); the watch follows it afterwards."""
        data = await self.kube.read_configmap_data(self.namespace, LEVER_CONFIGMAP)
        self.lever_changed(data)

    def lever_changed(self, data: Mapping[str, str] | None) -> None:
        """Engage or release the kill switch from the ConfigMap's data."""
        self.stores.lever.follow(data)


def _digest(spec: Any) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


async def _until_changed(body: Mapping[str, Any], digest: str, stopped: Any) -> None:
    """kopf keeps ``body`` current for daemons: poll it for a new spec or the stop."""
    while not stopped and _digest(body.get("spec")) == digest:
        await stopped.wait(2.0)


def build_registry(state: OperatorState) -> kopf.OperatorRegistry:
    """A fresh registry with every handler of the operator bound to ``state``."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.AiohttpSession:
        return state.kube.kopf_session()

    @kopf.on.resume(GROUP, VERSION, EXPERIMENTS, registry=registry)
    @kopf.on.create(GROUP, VERSION, EXPERIMENTS, registry=registry)
    @kopf.on.update(GROUP, VERSION, EXPERIMENTS, registry=registry)
    async def experiment_changed(body: kopf.Body, **_: Any) -> None:
        await state.experiment_changed(body)

    def is_deletion(event: Mapping[str, Any], **_: Any) -> bool:
        return event.get("type") == "DELETED"

    # The watch's DELETED event, not a finalizer: an Experiment can be deleted while no
    # operator runs, and a fire missed this way finds no object to record it on (the
    # schedule's anchor lives in the Experiment's status), so it runs nothing.
    @kopf.on.event(GROUP, VERSION, EXPERIMENTS, registry=registry, when=is_deletion)
    async def experiment_deleted(namespace: str | None, name: str, **_: Any) -> None:
        await state.experiment_deleted(namespace or state.namespace, name)

    def is_lever(name: str, **_: Any) -> bool:
        return name == LEVER_CONFIGMAP

    @kopf.on.event("v1", "configmaps", registry=registry, when=is_lever)
    def lever_changed(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        deleted = event.get("type") == "DELETED"
        state.lever_changed(None if deleted else body.get("data"))

    del login, experiment_changed, experiment_deleted, lever_changed
    return registry


async def wait_any(*waits: Awaitable[Any]) -> None:
    """Return when the first of several awaitables is done; cancel the rest."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
