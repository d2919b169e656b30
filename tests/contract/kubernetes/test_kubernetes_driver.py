"""The Kubernetes driver against a real API server: every fault and action, selection, errors.

The control plane is real (kube-apiserver, kube-controller-manager and
kube-scheduler v1.20.2): Deployments get real ReplicaSets and replacement pods
from the controllers. Tests about readiness, replacement and rollouts run their
pods on the real node (``node_kube``): busybox containers the kubelet reports
Ready from an exec readinessProbe, held non-Ready on cue by the namespace's
``Gate``. Tests about API objects only (selection, cordon, refusals) use
``kube_objects``, whose pods nothing runs. No test here needs the fake kubelet.
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
from tests.support.kube import Kube, NodeKube, eventually, is_ready

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


def _names(pods: list[dict[str, Any]]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def _running(pod: dict[str, Any]) -> bool:
    """Phase Running with every container running: started, whether Ready or not."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return (
        pod.get("status", {}).get("phase") == "Running"
        and bool(statuses)
        and all("running" in (s.get("state") or {}) for s in statuses)
    )


async def test_delete_pod_revert_waits_for_a_replacement_the_kubelet_reports_ready(
    driver: KubernetesDriver, node_kube: NodeKube
) -> None:
    kube = node_kube
    pods = await asyncio.to_thread(kube.ready_deployment, "web", replicas=3)
    # A long grace: the victim waits in its preStop hook while the gate is closed, so it
    # is terminating and still reported Ready while its replacement starts.
    held = DeletePodParams(grace=timedelta(seconds=60))
    handle = await driver.prepare(
        _request(kube.namespace, "k8s.deletePod", held, kind="Deployment", name="web")
    )
    assert len(handle.resources) == 1
    victim = handle.resources[0].rsplit("/", 1)[1]
    assert victim in pods
    assert handle.undo["owners"] == [{"kind": "Deployment", "name": "web", "ready": 3}]
    assert handle.undo["grace"] == 60
    # Journaled but never applied (a crash in between): the revert finds nothing to wait for.
    await asyncio.wait_for(driver.revert(handle), timeout=30)

    kube.gate.close()  # the replacement runs but is not Ready until the gate opens
    handle = await driver.inject(handle)
    assert handle.undo["deleted"] == [victim]

    def held_up() -> bool:
        victim_now = [p for p in kube.all_pods("app=web") if p["metadata"]["name"] == victim]
        fresh = [p for p in kube.pods("app=web") if p["metadata"]["name"] not in pods]
        return (
            len(victim_now) == 1
            and bool(victim_now[0]["metadata"].get("deletionTimestamp"))
            and is_ready(victim_now[0])
            and len(fresh) == 1
            and _running(fresh[0])
            and not is_ready(fresh[0])
        )

    await asyncio.to_thread(
        eventually, held_up, "the victim is terminating and Ready, its replacement Running"
    )
    # Three pods report Ready, one of them terminating: that one must not count.
    revert = asyncio.create_task(driver.revert(_through_json(handle)))
    await asyncio.sleep(2)
    assert not revert.done(), "revert returned before the replacement was Ready"
    assert len(kube.ready_pods("app=web")) == 2

    kube.gate.open()
    await asyncio.wait_for(revert, timeout=60)
    # The revert returned once the kubelet reported the replacement Ready.
    ready = kube.ready_pods("app=web")
    assert len(ready) == 3
    assert victim not in ready
    assert set(ready) - set(pods), "no replacement among the Ready pods"

    await asyncio.wait_for(driver.revert(handle), timeout=30)  # again: nothing to wait for


async def test_delete_pod_revert_tells_a_statefulsets_replacement_from_the_pod_it_replaces(
    driver: KubernetesDriver, node_kube: NodeKube
) -> None:
    kube = node_kube
    await asyncio.to_thread(kube.statefulset, "db", replicas=2)

    def both_ready() -> bool:
        status = kube.read("StatefulSet", "db").get("status") or {}
        return status.get("readyReplicas") == 2 and len(kube.ready_pods("app=db")) == 2

    await asyncio.to_thread(eventually, both_ready, "the StatefulSet has 2 Ready pods")
    # The victim is held in its preStop hook for its 3 s grace, then killed; only when it is
    # gone does the StatefulSet make its replacement, under the same name.
    short = DeletePodParams(grace=timedelta(seconds=3))
    handle = await driver.prepare(
        _request(kube.namespace, "k8s.deletePod", short, kind="StatefulSet", name="db")
    )
    victim = handle.resources[0].rsplit("/", 1)[1]
    uid = kube.read("Pod", victim)["metadata"]["uid"]
    assert handle.undo["owners"] == [{"kind": "StatefulSet", "name": "db", "ready": 2}]

    kube.gate.close()
    handle = await driver.inject(handle)
    assert handle.undo["deleted"] == [victim]
    revert = asyncio.create_task(driver.revert(_through_json(handle)))

    def replaced() -> bool:
        pod = [p for p in kube.pods("app=db") if p["metadata"]["name"] == victim]
        return len(pod) == 1 and pod[0]["metadata"]["uid"] != uid and _running(pod[0])

    await asyncio.to_thread(eventually, replaced, f"a new {victim} is Running")
    await asyncio.sleep(1)
    assert not revert.done(), "revert returned before the replacement was Ready"
    assert not is_ready(kube.read("Pod", victim))

    kube.gate.open()
    await asyncio.wait_for(revert, timeout=60)
    replacement = kube.read("Pod", victim)
    assert replacement["metadata"]["uid"] != uid
    assert is_ready(replacement)
    assert len(kube.ready_pods("app=db")) == 2
    await asyncio.wait_for(driver.revert(handle), timeout=30)  # again: nothing to wait for


async def test_scale_and_revert_from_the_journal_in_a_fresh_driver(
    driver: KubernetesDriver, node_kube: NodeKube, kubeconfig: str
) -> None:
    kube = node_kube
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
        eventually, lambda: not kube.pods("app=web"), "the controller deletes the pods"
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
    assert len(kube.ready_pods("app=web")) == 2
    await driver.revert(handle)  # again: already at 2
    assert kube.read("Deployment", "web")["spec"]["replicas"] == 2


@pytest.mark.parametrize(
    ("strategy", "surge"),
    [
        # Old pods go only as new ones turn Ready: the rollout is not over while any is not.
        pytest.param(None, 1, id="rolling-update"),
        # Every old pod goes first, then the new ones start: only their readiness is left.
        pytest.param({"type": "Recreate"}, 2, id="recreate"),
    ],
)
async def test_rollout_restart_revert_waits_until_the_new_replicasets_pods_are_ready(
    driver: KubernetesDriver, node_kube: NodeKube, strategy: dict[str, Any] | None, surge: int
) -> None:
    kube = node_kube
    old_pods = set(
        await asyncio.to_thread(kube.ready_deployment, "web", replicas=2, strategy=strategy)
    )
    before = {rs["metadata"]["name"] for rs in kube.replicasets("app=web")}
    handle = await driver.prepare(
        _request(kube.namespace, "k8s.rolloutRestart", selector="app=web")
    )
    assert handle.resources == (f"Deployment/{kube.namespace}/web",)  # the pods' owner
    stamp = handle.undo["restartedAt"]
    kube.gate.close()  # the new ReplicaSet's pods run but are not Ready until it opens
    await driver.inject(handle)
    await driver.inject(handle)  # a retried inject: the same stamp, no second rollout
    template = kube.read("Deployment", "web")["spec"]["template"]
    assert template["metadata"]["annotations"][RESTARTED_AT] == stamp

    def started() -> bool:
        new = {rs["metadata"]["name"] for rs in kube.replicasets("app=web")} - before
        fresh = [p for p in kube.pods("app=web") if p["metadata"]["name"] not in old_pods]
        return (
            len(new) == 1
            and len(fresh) == surge
            and all(_running(p) and not is_ready(p) for p in fresh)
        )

    await asyncio.to_thread(eventually, started, f"{surge} new pod(s) Running, not Ready")
    still = set(kube.ready_pods("app=web"))
    revert = asyncio.create_task(driver.revert(_through_json(handle)))
    await asyncio.sleep(2)
    assert not revert.done(), "revert returned before the new ReplicaSet's pods were Ready"
    assert still == (old_pods if strategy is None else set())
    assert set(kube.ready_pods("app=web")) == still

    kube.gate.open()
    await asyncio.wait_for(revert, timeout=90)
    (new_rs,) = {rs["metadata"]["name"] for rs in kube.replicasets("app=web")} - before
    live = kube.pods("app=web")
    owners = {ref["name"] for p in live for ref in p["metadata"].get("ownerReferences") or []}
    assert owners == {new_rs}
    assert len(live) == 2
    assert all(is_ready(p) for p in live)
    deployment = kube.read("Deployment", "web")
    assert deployment["status"]["updatedReplicas"] == 2
    assert deployment["status"]["readyReplicas"] == 2
    old = [rs for rs in kube.replicasets("app=web") if rs["metadata"]["name"] in before]
    assert [rs["spec"]["replicas"] for rs in old] == [0]
    await asyncio.wait_for(driver.revert(handle), timeout=30)


async def test_cordon_and_revert_uncordons_only_what_it_cordoned(
    driver: KubernetesDriver, kube_objects: Kube
) -> None:
    kube = kube_objects
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


async def test_revert_of_something_gone_is_success(
    driver: KubernetesDriver, node_kube: NodeKube
) -> None:
    kube = node_kube
    (pod,) = await asyncio.to_thread(kube.ready_deployment, "web", replicas=1)
    ns = kube.namespace
    scale = await driver.prepare(
        _request(ns, "k8s.scale", ScaleParams(replicas=3), kind="Deployment", name="web")
    )
    quick = DeletePodParams(grace=timedelta(0))
    delete = await driver.prepare(_request(ns, "k8s.deletePod", quick, selector="app=web"))
    assert delete.undo["owners"] == [{"kind": "Deployment", "name": "web", "ready": 1}]
    restart = await driver.prepare(
        _request(ns, "k8s.rolloutRestart", kind="Deployment", name="web")
    )
    kube.gate.close()  # no replacement turns Ready: only the owner being gone ends the waits
    delete = await driver.inject(delete)
    assert delete.undo["deleted"] == [pod]
    scale = await driver.inject(scale)
    restart = await driver.inject(restart)
    await asyncio.to_thread(
        kube.apps.delete_namespaced_deployment, "web", ns, _preload_content=False
    )
    await asyncio.to_thread(
        eventually,
        lambda: not kube.apps.list_namespaced_deployment(ns).items,
        "the Deployment is gone",
    )
    for handle in (scale, delete, restart):
        await asyncio.wait_for(driver.revert(handle), timeout=30)
    assert not kube.ready_pods("app=web")


async def test_actions_and_their_dry_runs(driver: KubernetesDriver, node_kube: NodeKube) -> None:
    kube = node_kube
    await asyncio.to_thread(kube.ready_deployment, "web", replicas=1)
    ns = kube.namespace
    ref = f"Deployment/{ns}/web"

    # k8s.scale
    dry = _action(
        ns, "k8s.scale", ScaleParams(replicas=2), dry_run=True, kind="Deployment", name="web"
    )
    assert await driver.act(dry) == [ref]
    assert kube.read("Deployment", "web")["spec"]["replicas"] == 1
    real = _action(ns, "k8s.scale", ScaleParams(replicas=2), kind="Deployment", name="web")
    assert await driver.act(real) == [ref]
    assert kube.read("Deployment", "web")["spec"]["replicas"] == 2
    await asyncio.to_thread(kube.wait_ready, "web", 2)

    # k8s.rolloutRestart
    before = set(_names(kube.pods("app=web")))
    dry = _action(ns, "k8s.rolloutRestart", dry_run=True, kind="Deployment", name="web")
    assert await driver.act(dry) == [ref]
    annotations = kube.read("Deployment", "web")["spec"]["template"]["metadata"].get("annotations")
    assert RESTARTED_AT not in (annotations or {})
    assert await driver.act(_action(ns, "k8s.rolloutRestart", kind="Deployment", name="web")) == [
        ref
    ]
    template = kube.read("Deployment", "web")["spec"]["template"]
    assert RESTARTED_AT in template["metadata"]["annotations"]
    await asyncio.to_thread(kube.wait_ready, "web", 2)
    assert not before & set(kube.ready_pods("app=web")), "the restart replaced every pod"

    # k8s.deletePod: pods still terminating after the rollout are no targets
    pods = _names(kube.pods("app=web"))
    dry = _action(ns, "k8s.deletePod", dry_run=True, selector="app=web", mode="all")
    assert await driver.act(dry) == [f"Pod/{ns}/{p}" for p in pods]
    assert _names(kube.pods("app=web")) == pods
    quick = DeletePodParams(grace=timedelta(0))
    done = await driver.act(_action(ns, "k8s.deletePod", quick, kind="Pod", name=pods[0]))
    assert done == [f"Pod/{ns}/{pods[0]}"]
    await asyncio.to_thread(
        eventually,
        lambda: pods[0] not in _names(kube.all_pods("app=web")),
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
    driver: KubernetesDriver, kube_objects: Kube, mode: str, count: int
) -> None:
    kube = kube_objects  # selection does not need running pods
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


async def test_own_pod_and_its_workload_are_never_selected(
    kube_objects: Kube, kubeconfig: str
) -> None:
    kube = kube_objects
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


async def test_namespace_outside_the_allowlist_is_refused(
    kube_objects: Kube, kubeconfig: str
) -> None:
    kube = kube_objects
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
    kube_objects: Kube, kubeconfig: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube = kube_objects
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
