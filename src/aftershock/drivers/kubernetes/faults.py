"""Each Kubernetes fault and action: what its undo record holds, how it applies and reverts.

Synchronous, in a worker thread. The undo record is plain JSON and holds
everything a revert needs, so ``aftershock recover`` reverts from the journal
alone in a new process:

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

import math
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aftershock.drivers.kubernetes import api as ops
from aftershock.drivers.kubernetes import changes, status
from aftershock.drivers.kubernetes import select as sel
from aftershock.drivers.kubernetes.watch import NotReached, watch_until
from aftershock.errors import RevertFailed
from aftershock.model.params import DeletePodParams, ScaleParams
from aftershock.ports import Handle

__all__ = ["act", "apply", "grace_seconds", "plan", "restore"]


def grace_seconds(params: object) -> int | None:
    """Whole seconds of grace (rounded up) from ``DeletePodParams``; ``None``: the pod's own."""
    if isinstance(params, DeletePodParams) and params.grace is not None:
        return max(0, math.ceil(params.grace.total_seconds()))
    return None


def _replicas(params: object) -> int:
    if not isinstance(params, ScaleParams):
        msg = "k8s.scale needs with: {replicas: N}"
        raise ValueError(msg)
    return params.replicas


def plan(
    api: client.ApiClient,
    fault: str,
    namespace: str,
    chosen: Sequence[sel.Candidate],
    params: object,
) -> dict[str, Any]:
    """The fault-specific part of the undo record, read from the cluster; changes nothing."""
    if fault == "k8s.deletePod":
        owners: dict[str, dict[str, Any]] = {}
        for pod in chosen:
            top = pod.top_owner
            if (
                top is not None
                and top[0] in sel.WORKLOAD_KINDS
                and f"{top[0]}/{top[1]}" not in owners
            ):
                obj = ops.read(api, top[0], namespace, top[1])
                ready = status.ready_replicas(top[0], obj) if obj is not None else 0
                owners[f"{top[0]}/{top[1]}"] = {"kind": top[0], "name": top[1], "ready": ready}
        pods = [
            {
                "name": p.name,
                "uid": p.uid,
                "owner": f"{p.top_owner[0]}/{p.top_owner[1]}" if p.top_owner else None,
            }
            for p in chosen
        ]
        return {
            "grace": grace_seconds(params),
            "pods": pods,
            "owners": list(owners.values()),
            "orphans": [p["name"] for p in pods if p["owner"] not in owners],
        }
    if fault == "k8s.scale":
        workloads = [
            {
                "kind": w.kind,
                "name": w.name,
                "previous": changes.replicas_of(api, w.kind, namespace, w.name),
            }
            for w in chosen
        ]
        return {"replicas": _replicas(params), "workloads": workloads}
    if fault == "k8s.rolloutRestart":
        return {
            "restartedAt": datetime.now(UTC).isoformat(),
            "workloads": [{"kind": w.kind, "name": w.name} for w in chosen],
        }
    # k8s.cordon
    return {"nodes": [{"name": n.name, "wasUnschedulable": n.unschedulable} for n in chosen]}


def apply(api: client.ApiClient, handle: Handle) -> dict[str, Any]:
    """Apply the fault; return what to add to the undo record (what was actually hit)."""
    undo, namespace = handle.undo, str(handle.undo.get("namespace", ""))
    if handle.fault == "k8s.deletePod":
        grace = undo.get("grace")
        deleted = [
            p["name"]
            for p in undo.get("pods") or []
            if changes.delete_pod(api, namespace, p["name"], p["uid"], grace)
        ]
        return {"deleted": deleted}
    if handle.fault == "k8s.scale":
        for w in undo.get("workloads") or []:
            changes.set_replicas(api, w["kind"], namespace, w["name"], int(undo["replicas"]))
        return {}
    if handle.fault == "k8s.rolloutRestart":
        for w in undo.get("workloads") or []:
            changes.restart(api, w["kind"], namespace, w["name"], str(undo["restartedAt"]))
        return {}
    cordoned = [
        n["name"]
        for n in undo.get("nodes") or []
        if not n.get("wasUnschedulable")
        and changes.set_cordon(api, n["name"], cordon=True, run_id=handle.run_id)
    ]
    return {"cordoned": cordoned}


def restore(
    api: client.ApiClient, handle: Handle, *, timeout: float, stop: threading.Event
) -> list[str]:
    """Undo the fault (or wait out its effect); return what was restored. Gone counts as done."""
    undo, namespace = handle.undo, str(handle.undo.get("namespace", ""))
    deadline = time.monotonic() + timeout
    done: list[str] = []
    if handle.fault == "k8s.deletePod":
        for owner in undo.get("owners") or []:
            if _wait_replaced(api, handle, owner, deadline, stop):
                done.append(f"{owner['kind']}/{namespace}/{owner['name']}")
    elif handle.fault == "k8s.scale":
        for w in undo.get("workloads") or []:
            previous = w.get("previous")
            if previous is not None and _gone_ok(
                changes.set_replicas, api, w["kind"], namespace, w["name"], int(previous)
            ):
                done.append(f"{w['kind']}/{namespace}/{w['name']}")
    elif handle.fault == "k8s.rolloutRestart":
        for w in undo.get("workloads") or []:
            kind, name = w["kind"], w["name"]
            _wait(
                api,
                handle,
                kind=kind,
                namespace=namespace,
                predicate=lambda objs, kind=kind, name=name: (
                    name not in objs or status.rollout_settled(kind, objs[name])
                ),
                failure=f"{kind}/{namespace}/{name}: the rollout has not settled",
                deadline=deadline,
                stop=stop,
                field_selector=f"metadata.name={name}",
            )
            done.append(f"{kind}/{namespace}/{name}")
    else:
        for n in undo.get("nodes") or []:
            if not n.get("wasUnschedulable") and changes.set_cordon(
                api, n["name"], cordon=False, run_id=handle.run_id
            ):
                done.append(f"Node/{n['name']}")
    return done


def _gone_ok(fn: Any, *args: Any) -> bool:
    try:
        return bool(fn(*args))
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


def _wait_replaced(
    api: client.ApiClient,
    handle: Handle,
    owner: dict[str, Any],
    deadline: float,
    stop: threading.Event,
) -> bool:
    namespace = str(handle.undo.get("namespace", ""))
    kind, name = owner["kind"], owner["name"]
    obj = ops.read(api, kind, namespace, name)
    if obj is None:
        return False  # the owner is gone: nothing will come back, nothing to wait for
    need = min(int(owner.get("ready") or 0), status.desired_replicas(kind, obj))
    selector = sel.selector_string((obj.get("spec") or {}).get("selector"))
    # A deleted pod is gone or terminating, so it never counts; one the inject never
    # reached (a crash in between) still counts, and rightly so.
    _wait(
        api,
        handle,
        kind="Pod",
        namespace=namespace,
        predicate=lambda objs: len(status.ready_pods(objs.values())) >= need,
        failure=f"{kind}/{namespace}/{name} has not replaced its deleted pods: "
        f"fewer than {need} Ready",
        deadline=deadline,
        stop=stop,
        label_selector=selector or None,
    )
    return True


def _wait(
    api: client.ApiClient,
    handle: Handle,
    *,
    kind: str,
    namespace: str,
    predicate: Any,
    failure: str,
    deadline: float,
    stop: threading.Event,
    **selectors: Any,
) -> None:
    try:
        watch_until(
            ops.list_call(api, kind, namespace),
            predicate,
            timeout=max(0.0, deadline - time.monotonic()),
            stop=stop,
            **selectors,
        )
    except NotReached as exc:
        raise RevertFailed(f"{failure} ({exc})", target=handle.target) from exc


def act(
    api: client.ApiClient, action: str, chosen: Sequence[sel.Candidate], params: object
) -> list[str]:
    """Carry out a healing action on the chosen objects; return the refs acted on."""
    done: list[str] = []
    stamp = datetime.now(UTC).isoformat()
    for c in chosen:
        if action == "k8s.deletePod":
            hit = changes.delete_pod(api, c.namespace, c.name, c.uid, grace_seconds(params))
        elif action == "k8s.scale":
            changes.set_replicas(api, c.kind, c.namespace, c.name, _replicas(params))
            hit = True
        elif action == "k8s.rolloutRestart":
            changes.restart(api, c.kind, c.namespace, c.name, stamp)
            hit = True
        else:
            hit = changes.uncordon(api, c.name)
        if hit:
            done.append(c.ref)
    return done
