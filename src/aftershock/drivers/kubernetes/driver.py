"""Kubernetes driver: delete pods, scale, rollout-restart and cordon; and the healing actions.

Faults ``k8s.deletePod``, ``k8s.scale``, ``k8s.rolloutRestart``, ``k8s.cordon``;
actions ``k8s.rolloutRestart``, ``k8s.deletePod``, ``k8s.scale``, ``k8s.uncordon``.
Each is bound to its catalog entry in ``faults`` and ``actions``, with what it
reaches (pods, workloads, nodes), what it records in the undo record
(``undo``) and how it reverts; which objects a target selects is in ``select``.

The official client is synchronous, so every call runs in a worker thread
(``asyncio.to_thread``). Only stable APIs are used (core/v1, apps/v1 and the
``scale`` subresource). Errors are translated at the edge (``api``)
with the SDK's exception chained as the cause: an unreachable API server is
``DriverUnavailable`` (retried a few times), a refusal ``FaultInjectionFailed``
or, on revert, ``RevertFailed``; 404 on something already gone counts as
reverted, and 409 Conflicts are retried. Waits (for replacement pods, for a
rollout) watch the API server, resuming from their resourceVersion and
relisting on 410 Gone (``watch``).

Blast radius: the namespace must be allowed (``Allowlist.allows_namespace``;
an empty allowlist allows only targets named by kind and name); nodes are
cluster-scoped and not namespace-limited. Aftershock's own pod (``self_pod``,
else ``POD_NAME``/``HOSTNAME`` when running in a cluster) is never selected,
nor a workload controlling it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import stamina
import structlog
from kubernetes import client

from aftershock.drivers.bindings import params_checked
from aftershock.drivers.kubernetes import api as ops
from aftershock.drivers.kubernetes import select as sel
from aftershock.drivers.kubernetes.actions import ACTIONS
from aftershock.drivers.kubernetes.faults import FAULTS, Settle
from aftershock.drivers.kubernetes.undo import KubernetesUndo, undo_of, with_undo
from aftershock.errors import DriverUnavailable, FaultInjectionFailed, RevertFailed, TargetRefused
from aftershock.model.targets import KubernetesTarget, TargetKind, TargetSpec
from aftershock.ports import ActionRequest, FaultRequest, Handle
from aftershock.settings import Allowlist

__all__ = ["ApiFactory", "KubernetesDriver"]

T = TypeVar("T")
ApiFactory = Callable[[], client.ApiClient]
"""Builds the API client (default: ``$KUBECONFIG`` or ``~/.kube/config``, else in-cluster)."""
SETTLE_TIMEOUT: Final = 120.0
"""Seconds a revert waits for replacement pods or a rollout before it fails."""
_WHAT: Final = {"pods": "pod", "workloads": "workload", "nodes": "node"}


class KubernetesDriver:
    """Faults and healing actions on one Kubernetes cluster.

    ``api_factory`` builds the client (called once, in a worker thread, on first
    use); ``self_pod`` (``name`` or ``namespace/name``) is aftershock's own pod
    when known; ``settle_timeout`` bounds the waits of reverts.
    """

    kind: TargetKind = TargetKind.KUBERNETES
    faults = FAULTS
    actions = ACTIONS

    def __init__(
        self,
        allowlist: Allowlist,
        *,
        api_factory: ApiFactory | None = None,
        self_pod: str | None = None,
        settle_timeout: float = SETTLE_TIMEOUT,
    ) -> None:
        self._allowlist = allowlist
        self._factory = api_factory or ops.default_api
        self._self_pod = self_pod
        self._settle_timeout = settle_timeout
        self._api: client.ApiClient | None = None
        self._lock = threading.Lock()

    async def start(self, stack: AsyncExitStack) -> None:
        """Register closing the client; it is made on first use."""
        stack.push_async_callback(self.aclose)

    async def aclose(self) -> None:
        """Close the client, if one was made."""
        with self._lock:
            api, self._api = self._api, None
        if api is not None:
            await asyncio.to_thread(api.close)

    async def prepare(self, request: FaultRequest) -> Handle:
        """Select the objects and record how to undo; changes nothing."""
        name = request.target_name
        body = _resolve(request.target, name)
        handler = FAULTS.get(request.fault)
        if handler is None:
            msg = f"unknown kubernetes fault {request.fault.name!r}"
            raise FaultInjectionFailed(msg, target=name)
        self._check_allowed(body, name)
        scope = sel.check_scope(request.fault.name, handler.reach, body, target_name=name)

        def build(api: client.ApiClient) -> tuple[sel.Selection, KubernetesUndo]:
            selection = self._select(api, body, handler.reach, name=name, seed=request.seed)
            base = KubernetesUndo(
                server=str(api.configuration.host),
                namespace="" if scope == "nodes" else body.namespace,
                own=selection.own,
            )
            with params_checked(name):
                return selection, handler.planned(api, base, selection.chosen, request.params)

        selection, undo = await self._call(name, "apply", build)
        self._log(name, request.run_id).debug(
            "k8s.selected", fault=request.fault.name, objects=[c.ref for c in selection.chosen]
        )
        if selection.own:
            self._log(name, request.run_id).info("k8s.own_skipped", objects=list(selection.own))
        return Handle(
            run_id=request.run_id,
            step=request.step,
            kind=TargetKind.KUBERNETES,
            fault=request.fault.name,
            target=name,
            resources=tuple(c.ref for c in selection.chosen),
            undo=undo.to_json(),
        )

    async def inject(self, handle: Handle) -> Handle:
        """Apply the fault to every object of the handle; a retry does not hit twice."""
        handler = FAULTS.named(handle.fault)
        if handler is None:
            msg = f"unknown kubernetes fault {handle.fault!r}"
            raise FaultInjectionFailed(msg, target=handle.target)
        undo = undo_of(handle, FaultInjectionFailed)
        done = await self._call(
            handle.target, "apply", lambda api: handler.apply(api, undo, handle.run_id)
        )
        self._log(handle.target, handle.run_id).info(
            "k8s.fault_applied",
            fault=handle.fault,
            objects=list(handle.resources),
            **_hit(done),
        )
        return with_undo(handle, done)

    async def revert(self, handle: Handle) -> None:
        """Undo the fault (or wait, bounded, until the cluster has healed it); idempotent.

        Works from the handle alone: ``aftershock recover`` calls it with a handle
        read back from the journal, in a new process.
        """
        handler = FAULTS.named(handle.fault)
        if handler is None:
            raise RevertFailed(f"unknown kubernetes fault {handle.fault!r}", target=handle.target)
        undo = undo_of(handle, RevertFailed)
        stop = threading.Event()

        def restore(api: client.ApiClient) -> list[str]:
            if undo.server and undo.server != api.configuration.host:
                self._log(handle.target, handle.run_id).warning(
                    "k8s.server_differs", recorded=undo.server, now=api.configuration.host
                )
            settle = Settle(
                target=handle.target,
                deadline=time.monotonic() + self._settle_timeout,
                stop=stop,
            )
            return handler.restore(api, undo, handle.run_id, settle)

        done = await self._call(handle.target, "revert", restore, stop=stop)
        self._log(handle.target, handle.run_id).info(
            "k8s.fault_reverted", fault=handle.fault, restored=done
        )

    async def revert_from_journal(self, handle: Handle) -> None:
        """Revert a handle read back from the journal: the same as ``revert``."""
        await self.revert(handle)

    async def act(self, request: ActionRequest) -> list[str]:
        """Carry out a healing action; return the objects acted on (``Kind/namespace/name``).

        Only objects the action applies to are acted on (``k8s.uncordon`` skips
        schedulable nodes), so an empty list means "nothing needed doing". With
        ``dry_run`` the objects are returned and nothing is touched.
        """
        name = request.target_name
        body = _resolve(request.target, name)
        handler = ACTIONS.named(request.action)
        if handler is None:
            raise FaultInjectionFailed(f"unknown kubernetes action {request.action!r}", target=name)
        with params_checked(name):
            perform = handler.bound(request.params)
        self._check_allowed(body, name)
        sel.check_scope(request.action, handler.reach, body, target_name=name)

        def run(api: client.ApiClient) -> list[str]:
            selection = self._select(api, body, handler.reach, name=name, seed=None, action=True)
            if request.dry_run:
                return [c.ref for c in selection.chosen]
            stamp = datetime.now(UTC).isoformat()
            return [c.ref for c in selection.chosen if perform(api, c, stamp)]

        done = await self._call(name, "act", run)
        self._log(name, "").info(
            "k8s.action", action=request.action, objects=done, dry_run=request.dry_run
        )
        return done

    def _check_allowed(self, body: KubernetesTarget, name: str) -> None:
        if body.kind == "Node":
            return  # cluster-scoped: no namespace to limit
        named = body.selector is None and body.name is not None
        if not self._allowlist.allows_namespace(body.namespace, named=named):
            msg = f"{name}: namespace {body.namespace!r} is not in the allowlist"
            raise TargetRefused(msg)

    def _select(
        self,
        api: client.ApiClient,
        body: KubernetesTarget,
        reach: sel.Reach,
        *,
        name: str,
        seed: int | None,
        action: bool = False,
    ) -> sel.Selection:
        if reach.scope == "nodes":
            candidates = ops.list_nodes(api, body.name, body.selector)
        elif reach.scope == "pods":
            candidates = sel.match_pods(body, ops.list_pods(api, body.namespace, body.selector))
        elif body.kind in sel.WORKLOAD_KINDS:
            candidates = ops.list_workloads(
                api, body.kind, body.namespace, body.name, body.selector
            )
        else:  # the workloads controlling the matched pods
            pods = sel.match_pods(body, ops.list_pods(api, body.namespace, body.selector))
            candidates = [
                w
                for kind, wname in sorted(sel.workloads_of(pods, reach.kinds))
                for w in ops.list_workloads(api, kind, body.namespace, wname, None)
            ]
        return sel.select(
            candidates,
            mode=body.mode,
            seed=seed,
            target_name=name,
            own=None if reach.scope == "nodes" else self._own(api, body.namespace),
            eligible=reach.eligible,
            require_eligible=not action,
            what=_WHAT[reach.scope],
            where=_where(body, reach.scope),
        )

    def _own(self, api: client.ApiClient, namespace: str) -> sel.OwnPod | None:
        if self._self_pod:
            own_ns, _, own_name = self._self_pod.rpartition("/")
            own_namespace: str | None = own_ns or None
        else:
            own_namespace, found = ops.in_cluster_pod()
            if not found:
                return None
            own_name = found
        owners = ops.read_pod_chain(api, namespace, own_name) if own_namespace == namespace else ()
        return sel.OwnPod(name=own_name, namespace=own_namespace, owners=owners)

    @stamina.retry(on=DriverUnavailable, attempts=3, timeout=10)
    async def _call(
        self,
        target: str,
        phase: str,
        fn: Callable[[client.ApiClient], T],
        *,
        stop: threading.Event | None = None,
    ) -> T:
        # Retried only for an unreachable API server, and not after a long wait (the
        # timeout); every operation is idempotent.
        try:
            return await asyncio.to_thread(self._run, target, phase, fn)
        except asyncio.CancelledError:
            if stop is not None:
                stop.set()  # a waiting worker thread stops at its next watch window
            raise

    def _run(self, target: str, phase: str, fn: Callable[[client.ApiClient], T]) -> T:
        with ops.translated(phase, target, "(configuration)"):
            api = self._client()
        with ops.translated(phase, target, str(api.configuration.host)):
            return fn(api)

    def _client(self) -> client.ApiClient:
        with self._lock:
            if self._api is None:
                self._api = self._factory()
            return self._api

    @staticmethod
    def _log(target: str, run_id: str) -> Any:
        # Bound per call, not at import, so test captures and late configuration apply.
        return structlog.get_logger().bind(target=target, run_id=run_id)


def _resolve(target: TargetSpec, name: str) -> KubernetesTarget:
    if target.kubernetes is None:
        raise FaultInjectionFailed(f"not a kubernetes target ({target.kind.value})", target=name)
    return target.kubernetes


def _hit(undo: KubernetesUndo) -> dict[str, list[str]]:
    """What inject hit, for the log line (deleted pods, cordoned nodes)."""
    hit: dict[str, list[str]] = {}
    if undo.deleted is not None:
        hit["deleted"] = list(undo.deleted)
    if undo.cordoned is not None:
        hit["cordoned"] = list(undo.cordoned)
    return hit


def _where(body: KubernetesTarget, scope: sel.Scope) -> str:
    parts = [] if scope == "nodes" else [f"in namespace {body.namespace}"]
    if body.selector:
        parts.append(f"with labels {body.selector}")
    if body.name is not None:
        parts.append(f"({body.kind} {body.name})")
    return " " + " ".join(parts) if parts else ""
