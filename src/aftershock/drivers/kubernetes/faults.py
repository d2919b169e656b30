"""The Kubernetes faults: each catalog entry bound to what it records, applies and reverts.

Synchronous, in a worker thread. The undo record (``undo``) holds everything a
revert needs, so ``aftershock recover`` reverts from the journal alone in a
new process:

``k8s.deletePod``
    the pods (name, uid, owner) and each owner's Ready count before. Revert
    waits (bounded) until every owner has as many Ready pods again (never more
    than it now wants), not counting pods being deleted; the controller makes
    the replacements. A pod without a controller is not replaced by
    anyone: its revert has nothing to wait for (logged as ``orphans``).
``k8s.scale``
    each workload's replica count before; revert restores it.
``k8s.rolloutRestart``
    the ``restartedAt`` stamp (fixed at prepare, so a retried inject does not
    roll twice). A restart cannot be undone (the old pods are gone by design);
    revert waits, bounded, until the rollout has settled (``kubectl rollout
    status``) and fails if it does not, so a stuck rollout is reported.
``k8s.cordon``
    the nodes and whether they were already unschedulable; inject marks the
    node with the run id, and revert uncordons only nodes carrying that mark.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, Generic, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aftershock.drivers.bindings import Bindings, fault_handlers
from aftershock.drivers.kubernetes import api as ops
from aftershock.drivers.kubernetes import changes, status
from aftershock.drivers.kubernetes import select as sel
from aftershock.drivers.kubernetes.undo import (
    KubernetesUndo,
    NodeMark,
    OwnerReady,
    PodRef,
    WorkloadRef,
)
from aftershock.drivers.kubernetes.watch import NotReached, Predicate, watch_until
from aftershock.errors import FaultInjectionFailed, RevertFailed
from aftershock.model import faults as f
from aftershock.model.base import Spec
from aftershock.model.params import DeletePodParams, NoParams, ScaleParams
from aftershock.model.targets import TargetKind

__all__ = ["FAULTS", "ClusterFault", "Settle"]

P = TypeVar("P", bound=Spec)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settle:
    """What a revert waits within: its target (for errors), a deadline, a stop flag."""

    target: str
    deadline: float
    """On the ``time.monotonic`` scale."""
    stop: threading.Event


Plan = Callable[[client.ApiClient, KubernetesUndo, Sequence[sel.Candidate], P], KubernetesUndo]
"""Read what the revert will need from the cluster into the record; changes nothing."""
Apply = Callable[[client.ApiClient, KubernetesUndo, str], KubernetesUndo]
"""``(api, undo, run id)``: apply the fault; the record, with what was actually hit."""
Restore = Callable[[client.ApiClient, KubernetesUndo, str, Settle], list[str]]
"""``(api, undo, run id, settle)``: undo the fault (or wait it out); what was restored."""


@dataclass(frozen=True, slots=True)
class ClusterFault(Generic[P]):
    """A fault on the objects a target selects."""

    fault: f.FaultType[P]
    reach: sel.Reach
    plan: Plan[P]
    apply: Apply
    restore: Restore

    def planned(
        self,
        api: client.ApiClient,
        base: KubernetesUndo,
        chosen: Sequence[sel.Candidate],
        params: Spec,
    ) -> KubernetesUndo:
        """The undo record of this fault on ``chosen``, with ``params``."""
        return self.plan(api, base, chosen, self.fault.parse(params))


# ---------------------------------------------------------------- k8s.deletePod
def _plan_delete(
    api: client.ApiClient,
    base: KubernetesUndo,
    chosen: Sequence[sel.Candidate],
    params: DeletePodParams,
) -> KubernetesUndo:
    owners: dict[str, OwnerReady] = {}
    for pod in chosen:
        top = pod.top_owner
        if top is not None and top[0] in sel.WORKLOAD_KINDS and f"{top[0]}/{top[1]}" not in owners:
            obj = ops.read(api, top[0], base.namespace, top[1])
            ready = status.ready_replicas(top[0], obj) if obj is not None else 0
            owners[f"{top[0]}/{top[1]}"] = OwnerReady(kind=top[0], name=top[1], ready=ready)
    pods = tuple(
        PodRef(
            name=p.name,
            uid=p.uid,
            owner=f"{p.top_owner[0]}/{p.top_owner[1]}" if p.top_owner else None,
        )
        for p in chosen
    )
    return replace(
        base,
        grace=changes.grace_seconds(params.grace),
        pods=pods,
        owners=tuple(owners.values()),
        orphans=tuple(p.name for p in pods if p.owner not in owners),
    )


def _delete(api: client.ApiClient, undo: KubernetesUndo, run_id: str) -> KubernetesUndo:
    deleted = tuple(
        p.name
        for p in undo.pods
        if changes.delete_pod(api, undo.namespace, p.name, p.uid, undo.grace)
    )
    return replace(undo, deleted=deleted)


def _await_replaced(
    api: client.ApiClient, undo: KubernetesUndo, run_id: str, settle: Settle
) -> list[str]:
    return [
        f"{owner.kind}/{undo.namespace}/{owner.name}"
        for owner in undo.owners
        if _wait_replaced(api, undo.namespace, owner, settle)
    ]


def _wait_replaced(
    api: client.ApiClient, namespace: str, owner: OwnerReady, settle: Settle
) -> bool:
    obj = ops.read(api, owner.kind, namespace, owner.name)
    if obj is None:
        return False  # the owner is gone: nothing will come back, nothing to wait for
    need = min(owner.ready, status.desired_replicas(owner.kind, obj))
    selector = sel.selector_string((obj.get("spec") or {}).get("selector"))
    # A deleted pod is gone or terminating, so it never counts; one the inject never
    # reached (a crash in between) still counts, and rightly so.
    _wait(
        api,
        settle,
        kind="Pod",
        namespace=namespace,
        predicate=lambda objs: len(status.ready_pods(objs.values())) >= need,
        failure=f"{owner.kind}/{namespace}/{owner.name} has not replaced its deleted pods: "
        f"fewer than {need} Ready",
        label_selector=selector or None,
    )
    return True


# ---------------------------------------------------------------- k8s.scale
def _plan_scale(
    api: client.ApiClient,
    base: KubernetesUndo,
    chosen: Sequence[sel.Candidate],
    params: ScaleParams,
) -> KubernetesUndo:
    workloads = tuple(
        WorkloadRef(
            kind=w.kind,
            name=w.name,
            previous=changes.replicas_of(api, w.kind, base.namespace, w.name),
        )
        for w in chosen
    )
    return replace(base, replicas=params.replicas, workloads=workloads)


def _scale(api: client.ApiClient, undo: KubernetesUndo, run_id: str) -> KubernetesUndo:
    if undo.replicas is None:
        msg = "the undo record has no replica count to scale to"
        raise FaultInjectionFailed(msg)
    for w in undo.workloads:
        changes.set_replicas(api, w.kind, undo.namespace, w.name, undo.replicas)
    return undo


def _scale_back(
    api: client.ApiClient, undo: KubernetesUndo, run_id: str, settle: Settle
) -> list[str]:
    done: list[str] = []
    for w in undo.workloads:
        if w.previous is not None and _gone_ok(
            changes.set_replicas, api, w.kind, undo.namespace, w.name, w.previous
        ):
            done.append(f"{w.kind}/{undo.namespace}/{w.name}")
    return done


# ---------------------------------------------------------------- k8s.rolloutRestart
def _plan_restart(
    api: client.ApiClient,
    base: KubernetesUndo,
    chosen: Sequence[sel.Candidate],
    params: NoParams,
) -> KubernetesUndo:
    return replace(
        base,
        restarted_at=datetime.now(UTC).isoformat(),
        workloads=tuple(WorkloadRef(kind=w.kind, name=w.name) for w in chosen),
    )


def _restart(api: client.ApiClient, undo: KubernetesUndo, run_id: str) -> KubernetesUndo:
    stamp = undo.restarted_at or datetime.now(UTC).isoformat()
    for w in undo.workloads:
        changes.restart(api, w.kind, undo.namespace, w.name, stamp)
    return undo


def _await_rollout(
    api: client.ApiClient, undo: KubernetesUndo, run_id: str, settle: Settle
) -> list[str]:
    done: list[str] = []
    for w in undo.workloads:
        kind, name, namespace = w.kind, w.name, undo.namespace
        _wait(
            api,
            settle,
            kind=kind,
            namespace=namespace,
            predicate=_settled(kind, name),
            failure=f"{kind}/{namespace}/{name}: the rollout has not settled",
            field_selector=f"metadata.name={name}",
        )
        done.append(f"{kind}/{namespace}/{name}")
    return done


def _settled(kind: str, name: str) -> Predicate:
    def settled(objs: Mapping[str, dict[str, Any]]) -> bool:
        return name not in objs or status.rollout_settled(kind, objs[name])

    return settled


# ---------------------------------------------------------------- k8s.cordon
def _plan_cordon(
    api: client.ApiClient,
    base: KubernetesUndo,
    chosen: Sequence[sel.Candidate],
    params: NoParams,
) -> KubernetesUndo:
    nodes = tuple(NodeMark(name=n.name, was_unschedulable=n.unschedulable) for n in chosen)
    return replace(base, nodes=nodes)


def _cordon(api: client.ApiClient, undo: KubernetesUndo, run_id: str) -> KubernetesUndo:
    cordoned = tuple(
        n.name
        for n in undo.nodes
        if not n.was_unschedulable and changes.set_cordon(api, n.name, cordon=True, run_id=run_id)
    )
    return replace(undo, cordoned=cordoned)


def _uncordon(
    api: client.ApiClient, undo: KubernetesUndo, run_id: str, settle: Settle
) -> list[str]:
    return [
        f"Node/{n.name}"
        for n in undo.nodes
        if not n.was_unschedulable and changes.set_cordon(api, n.name, cordon=False, run_id=run_id)
    ]


# ---------------------------------------------------------------- helpers
def _gone_ok(fn: Any, *args: Any) -> bool:
    try:
        return bool(fn(*args))
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


def _wait(
    api: client.ApiClient,
    settle: Settle,
    *,
    kind: str,
    namespace: str,
    predicate: Predicate,
    failure: str,
    **selectors: Any,
) -> None:
    try:
        watch_until(
            ops.list_call(api, kind, namespace),
            predicate,
            timeout=max(0.0, settle.deadline - time.monotonic()),
            stop=settle.stop,
            **selectors,
        )
    except NotReached as exc:
        raise RevertFailed(f"{failure} ({exc})", target=settle.target) from exc


FAULTS: Final[Bindings[f.FaultType[Any], ClusterFault[Any]]] = fault_handlers(
    TargetKind.KUBERNETES,
    ClusterFault(f.K8S_DELETE_POD, sel.PODS, _plan_delete, _delete, _await_replaced),
    ClusterFault(f.K8S_SCALE, sel.SCALABLE_WORKLOADS, _plan_scale, _scale, _scale_back),
    ClusterFault(
        f.K8S_ROLLOUT_RESTART, sel.RESTARTABLE_WORKLOADS, _plan_restart, _restart, _await_rollout
    ),
    ClusterFault(f.K8S_CORDON, sel.SCHEDULABLE_NODES, _plan_cordon, _cordon, _uncordon),
)
"""Every Kubernetes fault of the catalog, bound to what it does."""
