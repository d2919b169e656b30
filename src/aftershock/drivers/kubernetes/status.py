"""When a Kubernetes workload counts as recovered: pure predicates on API objects as JSON.

Used by the driver's reverts while it watches the API server:

* after ``k8s.deletePod``: the owner is back to as many Ready pods as it had
  (never more than it now wants), counting only pods whose ``Ready`` condition
  the kubelet reports ``True`` (a Running pod is not yet Ready) and never a pod
  being deleted (a deleted pod stays Ready while it terminates). A deleted pod
  is gone or being deleted, so a StatefulSet's replacement, which reuses its
  name, counts once it is Ready;
* after ``k8s.rolloutRestart``: the rollout has settled, as ``kubectl rollout
  status`` judges it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

__all__ = ["desired_replicas", "is_ready", "ready_pods", "ready_replicas", "rollout_settled"]


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def desired_replicas(kind: str, obj: Mapping[str, Any]) -> int:
    """How many pods the workload wants now (a DaemonSet: one per eligible node)."""
    if kind == "DaemonSet":
        return _int((obj.get("status") or {}).get("desiredNumberScheduled"))
    replicas = (obj.get("spec") or {}).get("replicas")
    return 1 if replicas is None else _int(replicas)  # the API defaults replicas to 1


def ready_replicas(kind: str, obj: Mapping[str, Any]) -> int:
    """How many Ready pods the workload's status reports."""
    status = obj.get("status") or {}
    return _int(status.get("numberReady" if kind == "DaemonSet" else "readyReplicas"))


def is_ready(pod: Mapping[str, Any]) -> bool:
    """Does the pod's ``Ready`` condition say ``True``?"""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def ready_pods(pods: Iterable[Mapping[str, Any]], exclude_uids: Collection[str] = ()) -> list[str]:
    """Names of the Ready pods that are neither being deleted nor among ``exclude_uids``."""
    names: list[str] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("uid") in exclude_uids or meta.get("deletionTimestamp"):
            continue
        if is_ready(pod):
            names.append(str(meta.get("name", "")))
    return sorted(names)


def rollout_settled(kind: str, obj: Mapping[str, Any]) -> bool:
    """Has the controller rolled every pod to the current template, and are they available?"""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    if _int(status.get("observedGeneration")) < _int(meta.get("generation")):
        return False  # the controller has not even seen the latest spec yet
    if kind == "Deployment":
        want = desired_replicas(kind, obj)
        updated = _int(status.get("updatedReplicas"))
        return (
            updated >= want
            and _int(status.get("replicas")) <= updated  # no old pods left
            and _int(status.get("availableReplicas")) >= updated
        )
    if kind == "StatefulSet":
        want = desired_replicas(kind, obj)
        revision = status.get("updateRevision")
        return (
            _int(status.get("updatedReplicas")) >= want
            and _int(status.get("readyReplicas")) >= want
            and (revision is None or status.get("currentRevision") == revision)
        )
    if kind == "DaemonSet":
        want = desired_replicas(kind, obj)
        return (
            _int(status.get("updatedNumberScheduled")) >= want
            and _int(status.get("numberAvailable")) >= want
        )
    return True  # a ReplicaSet has no rollout
