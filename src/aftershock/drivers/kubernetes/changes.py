"""The writes of the Kubernetes driver: scale, restart, delete, cordon; 409 Conflicts retried.

Synchronous, in a worker thread, like ``api``. A read-modify-write
sends the read's ``resourceVersion`` back, so a concurrent writer makes it fail
with 409 Conflict instead of being overwritten; ``update_with_retry`` then
re-reads and re-applies, a bounded number of times. Every write is idempotent:
writing the state that is already there changes nothing, so a retried inject or
a second revert is harmless.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aftershock.drivers.kubernetes.api import TIMEOUT, apps_method
from aftershock.drivers.kubernetes.watch import json_of

__all__ = [
    "CORDONED_BY",
    "RESTARTED_AT",
    "delete_pod",
    "grace_seconds",
    "replicas_of",
    "restart",
    "set_cordon",
    "set_replicas",
    "uncordon",
    "update_with_retry",
]

RESTARTED_AT: Final = "kubectl.kubernetes.io/restartedAt"
"""The pod-template annotation ``kubectl rollout restart`` sets; so does ``k8s.rolloutRestart``."""
CORDONED_BY: Final = "aftershock.dev/cordoned-by"
"""Node annotation naming the run that cordoned it, so only that run's revert uncordons it."""
CONFLICT_ATTEMPTS: Final = 5


def update_with_retry(
    read_fn: Callable[[], dict[str, Any]],
    change: Callable[[dict[str, Any]], dict[str, Any] | None],
    write: Callable[[dict[str, Any]], object],
    *,
    attempts: int = CONFLICT_ATTEMPTS,
) -> bool:
    """Read, change, write with the read's resourceVersion; on 409 Conflict start over.

    ``change`` returns a merge patch (``_locked`` adds the read's resourceVersion,
    which makes the server refuse it with 409 if the object changed since), or
    ``None`` when nothing needs writing. Returns whether something was written;
    the last 409 is raised when every attempt lost the race.
    """
    for attempt in range(attempts):
        current = read_fn()
        patch = change(current)
        if patch is None:
            return False
        try:
            write(_locked(patch, current))
        except ApiException as exc:
            if exc.status != 409 or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))  # someone else just wrote: let them finish
            continue
        return True
    return False  # pragma: no cover - the loop returns or raises


def _locked(patch: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    version = (current.get("metadata") or {}).get("resourceVersion")
    metadata = {**(patch.get("metadata") or {}), "resourceVersion": version}
    return {**patch, "metadata": metadata}


_MERGE: Final = "application/merge-patch+json"


def _read_scale(api: client.ApiClient, kind: str, namespace: str, name: str) -> dict[str, Any]:
    return json_of(
        apps_method(api, "read_namespaced", kind, "_scale")(
            name, namespace, _preload_content=False, _request_timeout=TIMEOUT
        )
    )


def set_replicas(
    api: client.ApiClient, kind: str, namespace: str, name: str, replicas: int
) -> bool:
    """Scale through the ``scale`` subresource (409 retried); whether anything changed."""

    def change(scale: dict[str, Any]) -> dict[str, Any] | None:
        if (scale.get("spec") or {}).get("replicas") == replicas:
            return None
        return {"spec": {"replicas": replicas}}

    def write(patch: dict[str, Any]) -> object:
        return json_of(
            apps_method(api, "patch_namespaced", kind, "_scale")(
                name,
                namespace,
                patch,
                _content_type=_MERGE,
                _preload_content=False,
                _request_timeout=TIMEOUT,
            )
        )

    return update_with_retry(lambda: _read_scale(api, kind, namespace, name), change, write)


def replicas_of(api: client.ApiClient, kind: str, namespace: str, name: str) -> int | None:
    """The replica count a workload's ``scale`` subresource reports; ``None`` when it is gone."""
    try:
        scale = _read_scale(api, kind, namespace, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return int((scale.get("spec") or {}).get("replicas") or 0)


def restart(api: client.ApiClient, kind: str, namespace: str, name: str, stamp: str) -> None:
    """Roll every pod of a workload, as ``kubectl rollout restart`` does.

    The same ``stamp`` twice is a no-op, so a retried inject does not roll twice.
    """
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    json_of(
        apps_method(api, "patch_namespaced", kind)(
            name,
            namespace,
            patch,
            _content_type=_MERGE,
            _preload_content=False,
            _request_timeout=TIMEOUT,
        )
    )


def grace_seconds(grace: timedelta | None) -> int | None:
    """Whole seconds of a deletion's grace, rounded up; ``None``: each pod's own."""
    return None if grace is None else max(0, math.ceil(grace.total_seconds()))


def delete_pod(
    api: client.ApiClient, namespace: str, name: str, uid: str, grace: int | None
) -> bool:
    """Delete one pod, only if it still is the one selected (uid); whether it was deleted.

    A pod already gone, or replaced by a namesake (a StatefulSet's), is left alone.
    """
    options = client.V1DeleteOptions(
        grace_period_seconds=grace,
        preconditions=client.V1Preconditions(uid=uid) if uid else None,
    )
    try:
        json_of(
            client.CoreV1Api(api).delete_namespaced_pod(
                name, namespace, body=options, _preload_content=False, _request_timeout=TIMEOUT
            )
        )
    except ApiException as exc:
        if exc.status in {404, 409}:  # 409: the uid precondition failed
            return False
        raise
    return True


def _node_change(api: client.ApiClient, name: str, change: Callable[..., Any]) -> bool:
    core = client.CoreV1Api(api)

    def read_node() -> dict[str, Any]:
        return json_of(core.read_node(name, _preload_content=False, _request_timeout=TIMEOUT))

    def write(patch: dict[str, Any]) -> object:
        return json_of(
            core.patch_node(
                name, patch, _content_type=_MERGE, _preload_content=False, _request_timeout=TIMEOUT
            )
        )

    return update_with_retry(read_node, change, write)


def _mark(node: dict[str, Any]) -> Any:
    return ((node.get("metadata") or {}).get("annotations") or {}).get(CORDONED_BY)


def set_cordon(api: client.ApiClient, name: str, *, cordon: bool, run_id: str) -> bool:
    """Cordon a schedulable node, marking it as this run's; or uncordon a node this run cordoned.

    Whether anything changed. A node gone counts as uncordoned; a node someone
    else cordoned (no mark, or another run's) is left alone.
    """

    def change(node: dict[str, Any]) -> dict[str, Any] | None:
        unschedulable = bool((node.get("spec") or {}).get("unschedulable"))
        if cordon:
            if unschedulable:
                return None  # already cordoned, by someone else: not ours to undo
            return {
                "spec": {"unschedulable": True},
                "metadata": {"annotations": {CORDONED_BY: run_id}},
            }
        if _mark(node) != run_id:
            return None
        return {"spec": {"unschedulable": False}, "metadata": {"annotations": {CORDONED_BY: None}}}

    try:
        return _node_change(api, name, change)
    except ApiException as exc:
        if exc.status == 404 and not cordon:
            return False
        raise


def uncordon(api: client.ApiClient, name: str) -> bool:
    """Make a node schedulable (a healing action: whoever cordoned it); drop our mark."""

    def change(node: dict[str, Any]) -> dict[str, Any] | None:
        if not (node.get("spec") or {}).get("unschedulable"):
            return None
        patch: dict[str, Any] = {"spec": {"unschedulable": False}}
        if _mark(node) is not None:
            patch["metadata"] = {"annotations": {CORDONED_BY: None}}
        return patch

    return _node_change(api, name, change)
