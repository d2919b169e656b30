"""The Kubernetes driver against a real API server: every fault and action, selection, errors.

The control plane is real (kube-apiserver and kube-controller-manager v1.20.2):
Deployments get real ReplicaSets and replacement pods from the controllers.
There is no kubelet, so the ``kube`` fixture's fake kubelet marks pods Ready.
Each fault is observed on the server, reverted, observed restored, and reverted
again: the second revert must be a harmless no-op.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
import stamina
import urllib3
from kubernetes import client, config

from aftershock.drivers.kubernetes import KubernetesDriver
from aftershock.errors import DriverUnavailable, FaultInjectionFailed, TargetNotFound, TargetRefused
from aftershock.model.actions import ACTION_TYPES
from aftershock.model.base import Spec
from aftershock.model.faults import fault_type
from aftershock.model.params import DeletePodParams, NoParams, ScaleParams
from aftershock.model.targets import KubernetesTarget, TargetSpec
from aftershock.ports import ActionDriver, ActionRequest, FaultDriver, FaultRequest, Handle
from aftershock.settings import Allowlist
from tests.support.kube import Kube, eventually

pytestmark = pytest.mark.kube

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def _factory(kubeconfig: str) -> Callable[[], client.ApiClient]:
    def build() -> client.ApiClient:
        loader: Any = config
        api: client.ApiClient = loader.new_client_from_config(config_file=kubeconfig)
        return api

    return build


@pytest.fixture
async def driver(kubeconfig: str, namespace: str) -> AsyncIterator[KubernetesDriver]:
    drv = KubernetesDriver(
        Allowlist(namespaces=(namespace,)), api_factory=_factory(kubeconfig), settle_timeout=90
    )
    try:
        yield drv
    finally:
        await drv.aclose()


def _target(namespace: str, **selector: Any) -> TargetSpec:
    return TargetSpec(kubernetes=KubernetesTarget(namespace=namespace, **selector))


def _request(
    namespace: str, fault: str, params: Spec | None = None, *, seed: int | None = 7, **sel: Any
) -> FaultRequest:
    entry = fault_type(fault)
    return FaultRequest(
        run_id="run-1",
        step="step-1",
        fault=entry,
        target_name="web",
        target=_target(namespace, **sel),
        params=params or entry.params(),
        seed=seed,
    )


def _default_params(action: str) -> Spec:
    entry = ACTION_TYPES.get(action)
    return NoParams() if entry is None else entry.params()


def _action(
    namespace: str, action: str, params: Spec | None = None, *, dry_run: bool = False, **sel: Any
) -> ActionRequest:
    return ActionRequest(
        action=action,
        target_name="web",
        target=_target(namespace, **sel),
        params=params or _default_params(action),
        dry_run=dry_run,
    )


def _through_json(handle: Handle) -> Handle:
    """The handle as ``aftershock recover`` reads it back from the journal."""
    return Handle.from_json(json.loads(json.dumps(handle.to_json())))


def test_the_driver_implements_both_ports(driver: KubernetesDriver) -> None:
    assert isinstance(driver, FaultDriver)
    assert isinstance(driver, ActionDriver)


@pytest.mark.timeout(300)
async def test_delete_pod_is_replaced_and_revert_waits_until_ready(
    driver: KubernetesDriver, kube: Kube
) -> None:
    pods = await asyncio.to_thread(kube.ready_deployment, "web", replicas=3)
    quick = DeletePodParams(grace=timedelta(seconds=0))
    handle = await driver.prepare(
        _request(kube.namespace, "k8s.deletePod", quick, kind="Deployment", name="web")
    )
    assert len(handle.resources) == 1
    victim = handle.resources[0].rsplit("/", 1)[1]
    assert victim in pods
    assert handle.undo["owners"] == [{"kind": "Deployment", "name": "web", "ready": 3}]
    assert handle.undo["grace"] == 0
    # Journaled but never applied (a crash in between): the revert finds nothing to wait for.
    await asyncio.wait_for(driver.revert(handle), timeout=30)

    kube.kubelet.pause()  # the replacement stays Pending until we say so
    handle = await driver.inject(handle)
    assert handle.undo["deleted"] == [victim]

    def replaced() -> bool:
        names = [p["metadata"]["name"] for p in kube.pods("app=web")]
        return victim not in names and len(names) == 3

    await asyncio.to_thread(eventually, replaced, "the ReplicaSet controller replaced the pod")
    assert len([p for p in kube.pods("app=web") if _ready(p)]) == 2  # the replacement is Pending

    revert = asyncio.create_task(driver.revert(_through_json(handle)))
    await asyncio.sleep(1.5)
    assert not revert.done(), "revert returned before the replacement was Ready"
    kube.kubelet.resume()
    await asyncio.wait_for(revert, timeout=90)
    assert len([p for p in kube.pods("app=web") if _ready(p)]) == 3

    await asyncio.wait_for(driver.revert(handle), timeout=30)  # again: nothing to wait for


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@pytest.mark.timeout(300)
async def test_scale_and_revert_from_the_journal_in_a_fresh_driver(
    driver: KubernetesDriver, kube: Kube, kubeconfig: str
) -> None:
    await asyncio.to_thread(kube.ready_deployment, "web", replicas=2)
    handle = await driver.prepare(
        _request(
            kube.namespace, "k8s.scale", ScaleParams(replicas=0), kind="Deployment", name="web"
        )
    )
    assert handle.resources == (f"Deployment/{kube.namespace}/web",)
    assert handle.undo["workloads"] == [{"kind": "Deployment", "name": "web", "previous": 2}]
    assert kube.read("Deployment", "web")["spec"]["replicas"] == 2  # prepare changes nothing

    handle = await driver.inject(handle)
    assert kube.read("Deployment", "web")["spec"]["replicas"] == 0
    await asyncio.to_thread(
        eventually, lambda: not kube.pods("app=web"), "the controller removed the pods"
    )

    fresh = KubernetesDriver(
        Allowlist(namespaces=(kube.namespace,)), api_factory=_factory(kubeconfig)
    )
    try:
        await fresh.revert(_through_json(handle))
    finally:
        await fresh.aclose()
    assert kube.read("Deployment", "web")["spec"]["replicas"] == 2
    await asyncio.to_thread(kube.wait_ready, "web", 2)
    await driver.revert(handle)  # again: already at 2
    assert kube.read("Deployment", "web")["spec"]["replicas"] == 2


@pytest.mark.timeout(300)
async def test_rollout_restart_makes_a_new_replicaset_and_revert_waits_for_it(
    driver: KubernetesDriver, kube: Kube
) -> None:
    await asyncio.to_thread(kube.ready_deployment, "web", replicas=2)
    before = {rs["metadata"]["name"] for rs in kube.replicasets("app=web")}
    handle = await driver.prepare(
        _request(kube.namespace, "k8s.rolloutRestart", selector="app=web")
    )
    assert handle.resources == (f"Deployment/{kube.namespace}/web",)  # the pods' owner
    stamp = handle.undo["restartedAt"]
    await driver.inject(handle)
    await driver.inject(handle)  # a retried inject: the same stamp, no second rollout
    template = kube.read("Deployment", "web")["spec"]["template"]
    assert template["metadata"]["annotations"][RESTARTED_AT] == stamp

    def new_replicaset() -> bool:
        return len({rs["metadata"]["name"] for rs in kube.replicasets("app=web")} - before) == 1

    await asyncio.to_thread(eventually, new_replicaset, "a new ReplicaSet was created")
    await asyncio.wait_for(driver.revert(_through_json(handle)), timeout=120)
    deployment = kube.read("Deployment", "web")
    assert deployment["status"]["updatedReplicas"] == 2
    assert deployment["status"]["readyReplicas"] == 2
    old = [rs for rs in kube.replicasets("app=web") if rs["metadata"]["name"] in before]
    assert [rs["spec"]["replicas"] for rs in old] == [0]
    await asyncio.wait_for(driver.revert(handle), timeout=30)


async def test_cordon_and_revert_uncordons_only_what_it_cordoned(
    driver: KubernetesDriver, kube: Kube
) -> None:
    node = f"{kube.namespace}-n1"
    kube.node(node)
    handle = await driver.prepare(_request(kube.namespace, "k8s.cordon", kind="Node", name=node))
    assert handle.resources == (f"Node/{node}",)
    handle = await driver.inject(handle)
    assert handle.undo["cordoned"] == [node]
    obj = kube.read("Node", node)
    assert obj["spec"]["unschedulable"] is True
    assert obj["metadata"]["annotations"]["aftershock.dev/cordoned-by"] == "run-1"

    # Another run's handle for the same node does not uncordon what run-1 cordoned.
    other = Handle.from_json({**handle.to_json(), "run_id": "run-2"})
    await driver.revert(other)
    assert kube.read("Node", node)["spec"]["unschedulable"] is True

    await driver.revert(_through_json(handle))
    obj = kube.read("Node", node)
    assert not obj["spec"].get("unschedulable")
    assert "aftershock.dev/cordoned-by" not in (obj["metadata"].get("annotations") or {})
    await driver.revert(handle)  # again: nothing to do

    # A node someone else cordoned is no target for the fault, and never uncordoned by it.
    await asyncio.to_thread(
        kube.core.patch_node, node, {"spec": {"unschedulable": True}}, _preload_content=False
    )
    with pytest.raises(TargetNotFound, match="not in a state"):
        await driver.prepare(_request(kube.namespace, "k8s.cordon", kind="Node", name=node))
    await driver.revert(handle)
    assert kube.read("Node", node)["spec"]["unschedulable"] is True


async def test_revert_of_something_gone_is_success(driver: KubernetesDriver, kube: Kube) -> None:
    await asyncio.to_thread(kube.ready_deployment, "web", replicas=1)
    scale = await driver.prepare(
        _request(
            kube.namespace, "k8s.scale", ScaleParams(replicas=3), kind="Deployment", name="web"
        )
    )
    delete = await driver.prepare(_request(kube.namespace, "k8s.deletePod", selector="app=web"))
    restart = await driver.prepare(
        _request(kube.namespace, "k8s.rolloutRestart", kind="Deployment", name="web")
    )
    await asyncio.to_thread(
        kube.apps.delete_namespaced_deployment, "web", kube.namespace, _preload_content=False
    )
    await asyncio.to_thread(
        eventually,
        lambda: not kube.apps.list_namespaced_deployment(kube.namespace).items,
        "the Deployment is gone",
    )
    for handle in (scale, delete, restart):
        await asyncio.wait_for(driver.revert(handle), timeout=30)


async def test_actions_and_their_dry_runs(driver: KubernetesDriver, kube: Kube) -> None:
    pods = await asyncio.to_thread(kube.ready_deployment, "web", replicas=2)
    ns = kube.namespace
    ref = f"Deployment/{ns}/web"

    # k8s.scale
    dry = _action(
        ns, "k8s.scale", ScaleParams(replicas=3), dry_run=True, kind="Deployment", name="web"
    )
    assert await driver.act(dry) == [ref]
    assert kube.read("Deployment", "web")["spec"]["replicas"] == 2
    real = _action(ns, "k8s.scale", ScaleParams(replicas=3), kind="Deployment", name="web")
    assert await driver.act(real) == [ref]
    assert kube.read("Deployment", "web")["spec"]["replicas"] == 3
    await asyncio.to_thread(kube.wait_ready, "web", 3)

    # k8s.rolloutRestart
    dry = _action(ns, "k8s.rolloutRestart", dry_run=True, kind="Deployment", name="web")
    assert await driver.act(dry) == [ref]
    annotations = kube.read("Deployment", "web")["spec"]["template"]["metadata"].get("annotations")
    assert RESTARTED_AT not in (annotations or {})
    assert await driver.act(_action(ns, "k8s.rolloutRestart", kind="Deployment", name="web")) == [
        ref
    ]
    template = kube.read("Deployment", "web")["spec"]["template"]
    assert RESTARTED_AT in template["metadata"]["annotations"]
    await asyncio.to_thread(kube.wait_ready, "web", 3, timeout=120)

    # k8s.deletePod
    pods = [p["metadata"]["name"] for p in kube.pods("app=web")]
    dry = _action(ns, "k8s.deletePod", dry_run=True, selector="app=web", mode="all")
    assert await driver.act(dry) == [f"Pod/{ns}/{p}" for p in pods]
    assert [p["metadata"]["name"] for p in kube.pods("app=web")] == pods
    quick = DeletePodParams(grace=timedelta(0))
    done = await driver.act(_action(ns, "k8s.deletePod", quick, kind="Pod", name=pods[0]))
    assert done == [f"Pod/{ns}/{pods[0]}"]
    await asyncio.to_thread(
        eventually,
        lambda: pods[0] not in [p["metadata"]["name"] for p in kube.pods("app=web")],
        "the pod is deleted",
    )

    # k8s.uncordon
    node = f"{ns}-n1"
    kube.node(node)
    assert await driver.act(_action(ns, "k8s.uncordon", kind="Node", name=node)) == []
    await asyncio.to_thread(
        kube.core.patch_node, node, {"spec": {"unschedulable": True}}, _preload_content=False
    )
    dry = _action(ns, "k8s.uncordon", dry_run=True, kind="Node", name=node)
    assert await driver.act(dry) == [f"Node/{node}"]
    assert kube.read("Node", node)["spec"]["unschedulable"] is True
    assert await driver.act(_action(ns, "k8s.uncordon", kind="Node", name=node)) == [f"Node/{node}"]
    assert not kube.read("Node", node)["spec"].get("unschedulable")


@pytest.mark.parametrize(
    ("mode", "count"), [("one", 1), ("fixed:2", 2), ("percent:40", 2), ("all", 5)]
)
async def test_selection_modes_are_reproducible_with_a_seed(
    driver: KubernetesDriver, kube: Kube, mode: str, count: int
) -> None:
    kube.kubelet.pause()  # selection does not need Ready pods
    kube.deployment("web", replicas=5)
    await asyncio.to_thread(
        eventually, lambda: len(kube.pods("app=web")) == 5, "the Deployment made 5 pods"
    )

    async def picked(seed: int) -> tuple[str, ...]:
        request = _request(
            kube.namespace, "k8s.deletePod", seed=seed, selector="app=web", mode=mode
        )
        return (await driver.prepare(request)).resources

    first = await picked(3)
    assert len(first) == count
    assert await picked(3) == first
    if count < 5:
        assert len({await picked(seed) for seed in range(8)}) > 1


async def test_own_pod_and_its_workload_are_never_selected(kube: Kube, kubeconfig: str) -> None:
    kube.kubelet.pause()
    kube.deployment("web", replicas=2)
    kube.deployment("self", replicas=1, labels={"tier": "chaos"})
    await asyncio.to_thread(
        eventually, lambda: len(kube.pods()) == 3, "the Deployments made their pods"
    )
    own = kube.pods("app=self")[0]["metadata"]["name"]
    others = {f"Pod/{kube.namespace}/{p['metadata']['name']}" for p in kube.pods("app=web")}
    drv = KubernetesDriver(
        Allowlist(namespaces=(kube.namespace,)),
        api_factory=_factory(kubeconfig),
        self_pod=f"{kube.namespace}/{own}",
    )
    try:
        for seed in range(6):
            handle = await drv.prepare(
                _request(kube.namespace, "k8s.deletePod", seed=seed, selector="app in (web,self)")
            )
            assert set(handle.resources) <= others
        assert handle.undo["own"] == [f"Pod/{kube.namespace}/{own}"]
        with pytest.raises(TargetNotFound, match="own"):
            await drv.prepare(_request(kube.namespace, "k8s.deletePod", kind="Pod", name=own))
        # Nor the Deployment that controls it, reached by its labels or through its pods.
        with pytest.raises(TargetNotFound, match="own"):
            await drv.prepare(
                _request(
                    kube.namespace, "k8s.scale", ScaleParams(replicas=0), selector="tier=chaos"
                )
            )
        with pytest.raises(TargetNotFound, match="own"):
            await drv.prepare(
                _request(kube.namespace, "k8s.rolloutRestart", kind="Deployment", name="self")
            )
    finally:
        await drv.aclose()


async def test_namespace_outside_the_allowlist_is_refused(kube: Kube, kubeconfig: str) -> None:
    elsewhere = KubernetesDriver(Allowlist(namespaces=("shop",)), api_factory=_factory(kubeconfig))
    empty = KubernetesDriver(Allowlist(), api_factory=_factory(kubeconfig))
    try:
        with pytest.raises(TargetRefused, match=f"web: namespace '{kube.namespace}'"):
            await elsewhere.prepare(_request(kube.namespace, "k8s.deletePod", selector="app=web"))
        with pytest.raises(TargetRefused):
            await elsewhere.act(_action(kube.namespace, "k8s.deletePod", kind="Pod", name="x"))
        # An empty allowlist allows what is named explicitly, never a selector.
        with pytest.raises(TargetRefused):
            await empty.prepare(_request(kube.namespace, "k8s.deletePod", selector="app=web"))
        with pytest.raises(TargetNotFound, match="no pod matches"):
            await empty.prepare(_request(kube.namespace, "k8s.deletePod", kind="Pod", name="x"))
    finally:
        await elsewhere.aclose()
        await empty.aclose()


async def test_nonsense_targets_are_named_errors(driver: KubernetesDriver, namespace: str) -> None:
    with pytest.raises(TargetNotFound, match="no workload matches"):
        await driver.prepare(
            _request(namespace, "k8s.scale", ScaleParams(replicas=1), kind="Deployment", name="x")
        )
    with pytest.raises(FaultInjectionFailed, match="needs kind: Node"):
        await driver.prepare(_request(namespace, "k8s.cordon", selector="app=web"))
    with pytest.raises(FaultInjectionFailed, match="cannot act on a DaemonSet"):
        await driver.prepare(
            _request(namespace, "k8s.scale", ScaleParams(replicas=1), kind="DaemonSet", name="x")
        )
    with pytest.raises(FaultInjectionFailed, match="400"):
        await driver.prepare(_request(namespace, "k8s.deletePod", selector="app in in (x"))


async def test_unreachable_api_server_is_driver_unavailable() -> None:
    def dead() -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = "https://127.0.0.1:1"
        configuration.retries = 0
        return client.ApiClient(configuration)

    drv = KubernetesDriver(Allowlist(namespaces=("shop",)), api_factory=dead)
    try:
        with stamina.set_testing(True, attempts=2), pytest.raises(DriverUnavailable) as info:
            await drv.prepare(_request("shop", "k8s.deletePod", selector="app=web"))
    finally:
        await drv.aclose()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("web: ")
    assert "https://127.0.0.1:1" in message
    assert isinstance(info.value.__cause__, urllib3.exceptions.HTTPError)


async def test_the_default_client_comes_from_kubeconfig(
    kube: Kube, kubeconfig: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    kube.deployment("web", replicas=1)
    drv = KubernetesDriver(Allowlist(namespaces=(kube.namespace,)))
    try:
        request = _action(
            kube.namespace, "k8s.rolloutRestart", dry_run=True, kind="Deployment", name="web"
        )
        assert await drv.act(request) == [f"Deployment/{kube.namespace}/web"]
    finally:
        await drv.aclose()
