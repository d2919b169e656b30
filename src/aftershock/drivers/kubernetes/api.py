"""The ``kubernetes`` SDK side of the Kubernetes driver: client, errors, reads and writes.

Everything here is synchronous and runs in a worker thread (``asyncio.to_thread``
in ``aftershock.drivers.kubernetes.driver``). Objects travel as the API's own JSON
(``_preload_content=False``), so what the driver records in a handle is exactly
what the server said. ``translated`` turns SDK errors into aftershock's tree:

* 5xx, 429 and connection errors → ``DriverUnavailable`` (retry later);
* 404 → ``TargetNotFound`` (the operations that may find something gone on
  revert check for 404 themselves: gone counts as reverted);
* other 4xx → ``FaultInjectionFailed`` (apply, act) or ``RevertFailed`` (revert).

The writes (with their 409 retries) are in ``changes``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Final

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from aftershock.drivers.kubernetes import select as sel
from aftershock.drivers.kubernetes.watch import json_of
from aftershock.errors import (
    AftershockError,
    DriverUnavailable,
    FaultInjectionFailed,
    RevertFailed,
    TargetNotFound,
)

__all__ = [
    "TIMEOUT",
    "apps_method",
    "default_api",
    "in_cluster_pod",
    "list_call",
    "list_nodes",
    "list_pods",
    "list_workloads",
    "one_line",
    "read",
    "read_pod_chain",
    "translated",
]

TIMEOUT: Final = (5.0, 30.0)
"""(connect, read) seconds for every single API call."""
_SA_NAMESPACE: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_SNAKE: Final = {
    "Deployment": "deployment",
    "StatefulSet": "stateful_set",
    "ReplicaSet": "replica_set",
    "DaemonSet": "daemon_set",
}


def default_api() -> client.ApiClient:
    """A client from ``$KUBECONFIG`` (or ``~/.kube/config``), else the in-cluster account."""
    loader: Any = config  # the loaders are untyped
    in_cluster = "KUBERNETES_SERVICE_HOST" in os.environ
    path = os.environ.get("KUBECONFIG")
    if not in_cluster or path:
        try:
            # The SDK reads $KUBECONFIG once, at import: read it now. Never write the file.
            api: client.ApiClient = loader.new_client_from_config(
                config_file=path or "~/.kube/config", persist_config=False
            )
        except ConfigException:
            if not in_cluster:
                raise
        else:
            return api
    configuration = client.Configuration()
    loader.load_incluster_config(client_configuration=configuration)
    return client.ApiClient(configuration)


def in_cluster_pod() -> tuple[str | None, str | None]:
    """(namespace, name) of the pod this process runs in, when it runs in a cluster."""
    if "KUBERNETES_SERVICE_HOST" not in os.environ:
        return None, None
    name = os.environ.get("POD_NAME") or os.environ.get("HOSTNAME")
    namespace = os.environ.get("POD_NAMESPACE")
    if namespace is None:
        try:
            namespace = _SA_NAMESPACE.read_text(encoding="utf-8").strip() or None
        except OSError:
            namespace = None
    return namespace, name


def one_line(exc: BaseException) -> str:
    """An exception as one bounded line, the API's own message when it sent one."""
    text = str(exc)
    if isinstance(exc, ApiException):
        try:
            body = json.loads(exc.body or "{}")
        except (TypeError, ValueError):
            body = {}
        message = body.get("message") if isinstance(body, dict) else None
        text = f"{exc.status} {message or exc.reason or 'error'}"
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


@contextmanager
def translated(phase: str, target: str, server: str) -> Iterator[None]:
    """Turn SDK errors into aftershock's tree; ``phase`` is apply, act or revert."""
    try:
        yield
    except AftershockError:
        raise
    except ApiException as exc:
        status = exc.status or 0
        text = f"Kubernetes API {server}: {one_line(exc)}"
        if status == 0 or status >= 500 or status == 429:
            raise DriverUnavailable(text, target=target) from exc
        if status == 404 and phase != "revert":
            raise TargetNotFound(text, target=target) from exc
        cls = RevertFailed if phase == "revert" else FaultInjectionFailed
        raise cls(text, target=target) from exc
    except ConfigException as exc:
        msg = f"no usable Kubernetes configuration: {one_line(exc)}"
        raise DriverUnavailable(msg, target=target) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        msg = f"Kubernetes API {server} is unreachable: {one_line(exc)}"
        raise DriverUnavailable(msg, target=target) from exc


def apps_method(
    api: client.ApiClient, verb: str, kind: str, suffix: str = ""
) -> Callable[..., Any]:
    method: Callable[..., Any] = getattr(client.AppsV1Api(api), f"{verb}_{_SNAKE[kind]}{suffix}")
    return method


def read(api: client.ApiClient, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """An object as JSON, ``None`` when it does not exist."""
    raw: Any
    try:
        if kind == "Pod":
            raw = client.CoreV1Api(api).read_namespaced_pod(
                name, namespace, _preload_content=False, _request_timeout=TIMEOUT
            )
        elif kind == "Node":
            raw = client.CoreV1Api(api).read_node(
                name, _preload_content=False, _request_timeout=TIMEOUT
            )
        else:
            raw = apps_method(api, "read_namespaced", kind)(
                name, namespace, _preload_content=False, _request_timeout=TIMEOUT
            )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return json_of(raw)


def list_call(api: client.ApiClient, kind: str, namespace: str) -> Callable[..., Any]:
    """The ``list_*`` method for ``kind``, bound to ``namespace`` (none for nodes)."""
    if kind == "Node":
        method: Callable[..., Any] = client.CoreV1Api(api).list_node
        return method
    if kind == "Pod":
        return partial(client.CoreV1Api(api).list_namespaced_pod, namespace)
    return partial(apps_method(api, "list_namespaced", kind), namespace)


def _items(call: Callable[..., Any], selector: str | None) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"label_selector": selector} if selector else {}
    data = json_of(call(**kwargs, _preload_content=False, _request_timeout=TIMEOUT))
    return list(data.get("items") or [])


def _replicaset_owners(api: client.ApiClient, namespace: str) -> dict[str, sel.Ref | None]:
    owners: dict[str, sel.Ref | None] = {}
    for rs in _items(list_call(api, "ReplicaSet", namespace), None):
        candidate = sel.workload_candidate("ReplicaSet", rs)
        owners[candidate.name] = candidate.top_owner
    return owners


def list_pods(api: client.ApiClient, namespace: str, selector: str | None) -> list[sel.Candidate]:
    """Pods in ``namespace`` matching ``selector``, each with its controller chain."""
    pods = _items(list_call(api, "Pod", namespace), selector)
    chains = _replicaset_owners(api, namespace) if pods else {}
    return [sel.pod_candidate(p, chains) for p in pods]


def read_pod_chain(api: client.ApiClient, namespace: str, name: str) -> tuple[sel.Ref, ...]:
    """The controller chain of one pod (empty when it does not exist)."""
    pod = read(api, "Pod", namespace, name)
    if pod is None:
        return ()
    return sel.owner_chain(pod, _replicaset_owners(api, namespace))


def list_workloads(
    api: client.ApiClient, kind: str, namespace: str, name: str | None, selector: str | None
) -> list[sel.Candidate]:
    """Workloads of ``kind``: the one named (none if absent), or those matching ``selector``."""
    if name is not None:
        obj = read(api, kind, namespace, name)
        found = [obj] if obj is not None else []
        if selector:  # both given: the named one must also match
            names = {_name(o) for o in _items(list_call(api, kind, namespace), selector)}
            found = [o for o in found if _name(o) in names]
    else:
        found = _items(list_call(api, kind, namespace), selector)
    return [sel.workload_candidate(kind, o) for o in found]


def list_nodes(
    api: client.ApiClient, name: str | None, selector: str | None
) -> list[sel.Candidate]:
    """Nodes: the one named (none if absent), or those matching ``selector``."""
    if name is None:
        found = _items(list_call(api, "Node", ""), selector)
    else:
        obj = read(api, "Node", "", name)
        found = [obj] if obj is not None else []
        if selector:
            names = {_name(o) for o in _items(list_call(api, "Node", ""), selector)}
            found = [o for o in found if _name(o) in names]
    return [sel.node_candidate(o) for o in found]


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))
