"""The Kubernetes driver's world: a real API server, a namespace, a Deployment and a Node.

The control plane is real (``tests.support.kube``); there is no kubelet, so the
``kube`` fixture's fake kubelet marks pods Ready. The Node is an API object of
this test only (nothing runs on it): ``k8s.cordon`` acts on it. The snapshot is
every Deployment, ReplicaSet and Pod of the namespace and the Node, each with
its uid and resourceVersion, so that any write the driver makes shows.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from aftershock.drivers.kubernetes import KubernetesDriver
from aftershock.model.params import DeletePodParams, NoParams, ScaleParams
from aftershock.model.targets import KubernetesTarget, TargetSpec
from aftershock.ports import Handle
from aftershock.settings import Allowlist
from tests.contract.drivers.world import FaultCase, Snapshot, World
from tests.support.kube import Kube, eventually

__all__ = ["KubernetesWorld"]

REPLICAS = 2


def _factory(kubeconfig: str) -> Callable[[], client.ApiClient]:
    def build() -> client.ApiClient:
        loader: Any = config
        api: client.ApiClient = loader.new_client_from_config(config_file=kubeconfig)
        return api

    return build


def _ident(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "uid": meta["uid"],
        "resourceVersion": meta["resourceVersion"],
        "deleting": "deletionTimestamp" in meta,
    }


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class KubernetesWorld(World):
    """One namespace of the local API server (``kube`` fixture) and one Node."""

    name: ClassVar[str] = "kubernetes"
    marks: ClassVar[tuple[pytest.MarkDecorator, ...]] = (pytest.mark.kube,)
    restore_timeout: ClassVar[float] = 60.0
    faults: ClassVar[tuple[FaultCase, ...]] = (
        # Every write bumps resourceVersion: a revert restores what the objects say, not it.
        FaultCase(fault="k8s.cordon", params=NoParams(), identical_after_revert=False),
        FaultCase(fault="k8s.scale", params=ScaleParams(replicas=1), identical_after_revert=False),
        FaultCase(
            fault="k8s.deletePod",
            params=DeletePodParams(grace=timedelta(0)),
            identical_after_revert=False,
        ),
    )

    def __init__(self, kube: Kube, kubeconfig: str) -> None:
        self.kube = kube
        self.kubeconfig = kubeconfig
        self.node = f"ast-node-{secrets.token_hex(4)}"

    @classmethod
    def build(cls, request: pytest.FixtureRequest) -> KubernetesWorld:
        return cls(request.getfixturevalue("kube"), request.getfixturevalue("kubeconfig"))

    async def setup(self, stack: AsyncExitStack) -> None:
        await asyncio.to_thread(self.kube.node, self.node)
        await asyncio.to_thread(self.kube.ready_deployment, "web", replicas=REPLICAS)
        driver = KubernetesDriver(
            Allowlist(namespaces=(self.kube.namespace,)),
            api_factory=_factory(self.kubeconfig),
            settle_timeout=60,
        )
        await self.launch(driver, stack)

    def _read(self) -> dict[str, Any]:
        kube = self.kube
        listers = {
            "Deployment": kube.apps.list_namespaced_deployment,
            "ReplicaSet": kube.apps.list_namespaced_replica_set,
            "Pod": kube.core.list_namespaced_pod,
        }
        found: list[tuple[str, dict[str, Any]]] = []
        for kind, lister in listers.items():
            response: Any = lister(kube.namespace, _preload_content=False)
            try:
                items = json.loads(response.data)["items"]
            finally:
                response.release_conn()
            found += [(kind, obj) for obj in items]
        found.append(("Node", kube.read("Node", self.node)))
        return {
            f"{kind}/{obj['metadata']['name']}": {**_ident(obj), "view": _view(kind, obj)}
            for kind, obj in found
        }

    async def snapshot(self) -> Snapshot:
        return await asyncio.to_thread(self._read)

    def shape(self, snapshot: Snapshot) -> Snapshot:
        # Replaced pods have new names: they are counted, not named.
        shape: dict[str, Any] = {"ready pods": 0}
        for key, seen in snapshot.items():
            if key.startswith("Pod/"):
                shape["ready pods"] += int(not seen["deleting"] and seen["view"]["ready"])
            else:
                shape[key] = {"uid": seen["uid"], **seen["view"]}
        return shape

    async def quiet(self) -> None:
        """Until two reads a moment apart agree: the controllers have finished reacting."""
        deadline = time.monotonic() + 30
        last = await self.snapshot()
        while True:
            await asyncio.sleep(0.3)  # the interval over which "no change" is judged
            now = await self.snapshot()
            if now == last:
                return
            assert time.monotonic() < deadline, "the namespace kept changing for 30s"
            last = now

    def target(self, case: FaultCase) -> TargetSpec:
        if case.fault == "k8s.cordon":
            body = KubernetesTarget(kind="Node", name=self.node)
        else:
            body = KubernetesTarget(
                namespace=self.kube.namespace, kind="Deployment", name="web", mode="one"
            )
        return TargetSpec(kubernetes=body)

    async def vanish(self, handle: Handle) -> None:
        kube = self.kube

        def delete() -> None:
            if handle.fault == "k8s.cordon":
                kube.core.delete_node(self.node)
                eventually(lambda: _absent(lambda: kube.read("Node", self.node)), "node gone")
            else:
                kube.apps.delete_namespaced_deployment(
                    "web", kube.namespace, propagation_policy="Foreground"
                )
                eventually(
                    lambda: _absent(lambda: kube.read("Deployment", "web")), "Deployment gone"
                )

        await asyncio.to_thread(delete)

    def fresh_config(self) -> Mapping[str, Any]:
        return {"kind": "kubernetes", "namespace": self.kube.namespace}

    def fresh_env(self) -> Mapping[str, str]:
        return {"KUBECONFIG": self.kubeconfig}


def _view(kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """What of an object a revert must bring back (its uid aside)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "Pod":
        return {"ready": _ready(obj)}
    if kind == "Node":
        return {
            "unschedulable": bool(spec.get("unschedulable")),
            "annotations": obj["metadata"].get("annotations") or {},
            "taints": spec.get("taints") or [],
        }
    return {"replicas": spec.get("replicas"), "ready": status.get("readyReplicas")}


def _absent(read: Callable[[], object]) -> bool:
    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False
