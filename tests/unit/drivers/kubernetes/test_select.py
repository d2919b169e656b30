"""Kubernetes target selection and recovery rules without a cluster: pure functions on API JSON."""

from __future__ import annotations

import random
from typing import Any

import pytest

from aftershock.drivers.kubernetes.actions import ACTIONS
from aftershock.drivers.kubernetes.faults import FAULTS
from aftershock.drivers.kubernetes.select import (
    Candidate,
    OwnPod,
    Reach,
    check_scope,
    match_pods,
    node_candidate,
    owner_chain,
    pick_count,
    pod_candidate,
    select,
    selector_string,
    workload_candidate,
    workloads_of,
)
from aftershock.drivers.kubernetes.status import (
    desired_replicas,
    ready_pods,
    ready_replicas,
    rollout_settled,
)
from aftershock.errors import FaultInjectionFailed, TargetNotFound
from aftershock.model.targets import KubernetesTarget


def _ref(kind: str, name: str) -> dict[str, Any]:
    return {"kind": kind, "name": name, "controller": True, "apiVersion": "apps/v1", "uid": "u"}


def _pod(
    name: str,
    *,
    owner: tuple[str, str] | None = ("ReplicaSet", "web-5f7"),
    ready: bool = True,
    **meta: Any,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": f"uid-{name}",
            "labels": {"app": "web"},
            "ownerReferences": [_ref(*owner)] if owner else [],
            **meta,
        },
        "spec": {"nodeName": "n1"},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


RS = {"web-5f7": ("Deployment", "web"), "lone-1": None}


def _fleet(count: int) -> list[Candidate]:
    return [pod_candidate(_pod(f"web-{i}"), RS) for i in range(count)]


@pytest.mark.parametrize(
    ("mode", "total", "expected"),
    [
        ("one", 4, 1),
        ("all", 4, 4),
        ("fixed:2", 4, 2),
        ("fixed:9", 4, 4),
        ("percent:50", 4, 2),
        ("percent:50", 3, 2),  # rounds up
        ("percent:1", 3, 1),  # at least one
        ("percent:100", 7, 7),
        ("one", 0, 0),
        ("all", 0, 0),
    ],
)
def test_pick_count(mode: str, total: int, expected: int) -> None:
    assert pick_count(mode, total) == expected


REACH: dict[str, Reach] = {
    entry.name: handler.reach for entry, handler in [*FAULTS.items(), *ACTIONS.items()]
}
"""Each Kubernetes fault and action (by name) and what it reaches, as the driver binds them."""


def _scope(operation: str, target: KubernetesTarget) -> str:
    return check_scope(operation, REACH[operation], target, target_name="t")


def test_scope_of_each_operation() -> None:
    pods = KubernetesTarget(namespace="shop", selector="app=web")
    node = KubernetesTarget(kind="Node", name="n1")
    daemon = KubernetesTarget(namespace="shop", kind="DaemonSet", name="agent")
    assert _scope("k8s.deletePod", pods) == "pods"
    assert _scope("k8s.deletePod", node) == "pods"  # the pods on that node
    assert _scope("k8s.scale", pods) == "workloads"  # their controllers
    assert _scope("k8s.rolloutRestart", daemon) == "workloads"
    assert _scope("k8s.cordon", node) == "nodes"
    assert _scope("k8s.uncordon", node) == "nodes"
    with pytest.raises(FaultInjectionFailed, match=r"t: k8s\.cordon acts on nodes"):
        _scope("k8s.cordon", pods)
    with pytest.raises(FaultInjectionFailed, match="cannot act on a DaemonSet"):
        _scope("k8s.scale", daemon)
    with pytest.raises(FaultInjectionFailed, match="cannot act on a Node"):
        _scope("k8s.rolloutRestart", node)
    assert REACH["k8s.cordon"].eligible(Candidate(kind="Node", name="n"))
    assert not REACH["k8s.uncordon"].eligible(Candidate(kind="Node", name="n"))
    assert not REACH["k8s.deletePod"].eligible(Candidate(kind="Pod", name="p", terminating=True))


def test_owner_chain_follows_replicasets_to_their_deployment() -> None:
    assert owner_chain(_pod("a"), RS) == (("ReplicaSet", "web-5f7"), ("Deployment", "web"))
    assert owner_chain(_pod("b", owner=("ReplicaSet", "lone-1")), RS) == (("ReplicaSet", "lone-1"),)
    assert owner_chain(_pod("c", owner=("StatefulSet", "db")), RS) == (("StatefulSet", "db"),)
    assert owner_chain(_pod("d", owner=None), RS) == ()
    not_controller = _pod("e", owner=None)
    not_controller["metadata"]["ownerReferences"] = [
        {**_ref("ReplicaSet", "x"), "controller": False}
    ]
    assert owner_chain(not_controller, RS) == ()


def test_pod_candidate_reads_readiness_deletion_and_node() -> None:
    pod = pod_candidate(_pod("a"), RS)
    assert (pod.ref, pod.uid, pod.ready, pod.terminating, pod.node) == (
        "Pod/shop/a",
        "uid-a",
        True,
        False,
        "n1",
    )
    assert pod.top_owner == ("Deployment", "web")
    assert not pod_candidate(_pod("b", ready=False), RS).ready
    assert pod_candidate(_pod("c", deletionTimestamp="2024-01-01T00:00:00Z"), RS).terminating
    finished = _pod("d")
    finished["status"]["phase"] = "Succeeded"
    assert pod_candidate(finished, RS).terminating


def test_workload_and_node_candidates() -> None:
    rs = workload_candidate("ReplicaSet", _pod("web-5f7", owner=("Deployment", "web")))
    assert (rs.ref, rs.top_owner) == ("ReplicaSet/shop/web-5f7", ("Deployment", "web"))
    node = node_candidate({"metadata": {"name": "n1"}, "spec": {"unschedulable": True}})
    assert (node.ref, node.unschedulable, node.namespace) == ("Node/n1", True, "")
    assert not node_candidate({"metadata": {"name": "n2"}}).unschedulable


def test_match_pods_by_kind_and_name() -> None:
    pods = [
        *_fleet(2),
        pod_candidate(_pod("db-0", owner=("StatefulSet", "db")), RS),
        pod_candidate(_pod("lone", owner=None), RS),
    ]

    def names(**target: Any) -> list[str]:
        body = KubernetesTarget(namespace="shop", **target)
        return [p.name for p in match_pods(body, pods)]

    assert names(kind="Deployment", name="web") == ["web-0", "web-1"]
    assert names(kind="ReplicaSet", name="web-5f7") == ["web-0", "web-1"]
    assert names(kind="StatefulSet", name="db") == ["db-0"]
    assert names(kind="Pod", name="lone") == ["lone"]
    assert names(kind="Node", name="n1") == ["web-0", "web-1", "db-0", "lone"]
    assert names(kind="Deployment", name="other") == []
    assert names(selector="app=web") == ["web-0", "web-1", "db-0", "lone"]  # the server filtered


def test_workloads_of_the_pods_keeps_only_the_kinds_asked_for() -> None:
    pods = [*_fleet(2), pod_candidate(_pod("agent-x", owner=("DaemonSet", "agent")), RS)]
    pods.append(pod_candidate(_pod("lone", owner=None), RS))
    assert workloads_of(pods, {"Deployment", "StatefulSet", "ReplicaSet"}) == {
        ("Deployment", "web"): "shop"
    }
    assert set(workloads_of(pods, {"Deployment", "DaemonSet"})) == {
        ("Deployment", "web"),
        ("DaemonSet", "agent"),
    }


def _chosen(candidates: list[Candidate], **kw: Any) -> list[str]:
    kw.setdefault("seed", 1)
    kw.setdefault("mode", "one")
    return [c.name for c in select(candidates, target_name="web", **kw).chosen]


def test_a_seed_reproduces_the_selection_whatever_the_listing_order() -> None:
    fleet = _fleet(6)
    shuffled = fleet[:]
    random.Random(0).shuffle(shuffled)
    for mode in ("one", "fixed:3", "percent:50"):
        assert _chosen(fleet, mode=mode, seed=42) == _chosen(shuffled, mode=mode, seed=42)
    assert len({tuple(_chosen(fleet, seed=s)) for s in range(12)}) > 1
    assert _chosen(fleet, mode="all") == [f"web-{i}" for i in range(6)]


def test_own_pod_and_the_workloads_controlling_it_are_never_chosen() -> None:
    fleet = _fleet(3)
    own = OwnPod(name="web-1", namespace="shop", owners=(("ReplicaSet", "web-5f7"),))
    for seed in range(10):
        assert "web-1" not in _chosen(fleet, seed=seed, own=own)
    selection = select(fleet, mode="all", seed=1, target_name="web", own=own)
    assert selection.own == ("Pod/shop/web-1",)
    # A namesake in another namespace is not us; without a namespace any namesake is.
    elsewhere = OwnPod(name="web-1", namespace="other")
    assert "web-1" in _chosen(fleet, mode="all", own=elsewhere)
    assert "web-1" not in _chosen(fleet, mode="all", own=OwnPod(name="web-1"))

    deployments = [
        workload_candidate("Deployment", {"metadata": {"name": n, "namespace": "shop"}})
        for n in ("web", "api")
    ]
    controlling = OwnPod(
        name="web-1", namespace="shop", owners=(("ReplicaSet", "web-5f7"), ("Deployment", "web"))
    )
    assert _chosen(deployments, mode="all", own=controlling) == ["api"]
    with pytest.raises(TargetNotFound, match="aftershock's own"):
        select(deployments[:1], mode="all", seed=1, target_name="web", own=controlling)


def test_eligibility_and_what_is_left_when_nothing_is() -> None:
    fleet = [*_fleet(2), pod_candidate(_pod("web-x", deletionTimestamp="now"), RS)]

    def live(candidate: Candidate) -> bool:
        return not candidate.terminating

    assert _chosen(fleet, mode="all", eligible=live) == ["web-0", "web-1"]
    going = [fleet[2]]
    with pytest.raises(
        TargetNotFound, match=r"web: 1 pod\(s\) matched but none is usable: 1 not in a state"
    ):
        select(going, mode="all", seed=1, target_name="web", eligible=live, what="pod")
    nothing = select(
        going, mode="all", seed=1, target_name="web", eligible=live, require_eligible=False
    )
    assert (nothing.chosen, nothing.ineligible) == ((), ("Pod/shop/web-x",))
    with pytest.raises(TargetNotFound, match="no pod matches in namespace shop"):
        select([], mode="one", seed=1, target_name="web", what="pod", where=" in namespace shop")


def test_selector_string_from_a_workload_selector() -> None:
    selector = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["web", "api"]},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "team", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    assert selector_string(selector) == "a=1,b=2,tier in (web,api),env notin (dev),team,!legacy"
    assert selector_string(None) == ""


def _workload(kind: str, generation: int, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "generation": generation},
        "spec": {"replicas": 2},
        "status": status,
    }


def test_rollout_settled_like_kubectl_rollout_status() -> None:
    done = {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
    assert rollout_settled("Deployment", _workload("Deployment", 2, **done))
    # The controller has not seen the new template yet: stale status says nothing.
    assert not rollout_settled("Deployment", _workload("Deployment", 3, **done))
    old_pods_left = {**done, "replicas": 3}
    assert not rollout_settled("Deployment", _workload("Deployment", 2, **old_pods_left))
    unavailable = {**done, "availableReplicas": 1}
    assert not rollout_settled("Deployment", _workload("Deployment", 2, **unavailable))

    sts = {"observedGeneration": 1, "updatedReplicas": 2, "readyReplicas": 2}
    assert rollout_settled("StatefulSet", _workload("StatefulSet", 1, **sts))
    revisions = {**sts, "currentRevision": "a", "updateRevision": "b"}
    assert not rollout_settled("StatefulSet", _workload("StatefulSet", 1, **revisions))

    ds = {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3}
    assert rollout_settled("DaemonSet", _workload("DaemonSet", 1, **ds, numberAvailable=3))
    assert not rollout_settled("DaemonSet", _workload("DaemonSet", 1, **ds, numberAvailable=2))


def test_replica_counts() -> None:
    deployment = _workload("Deployment", 1, readyReplicas=1)
    assert (
        desired_replicas("Deployment", deployment),
        ready_replicas("Deployment", deployment),
    ) == (
        2,
        1,
    )
    assert desired_replicas("Deployment", {"spec": {}}) == 1  # the API's default
    assert desired_replicas("Deployment", {"spec": {"replicas": 0}}) == 0
    daemon = {"status": {"desiredNumberScheduled": 4, "numberReady": 3}}
    assert (desired_replicas("DaemonSet", daemon), ready_replicas("DaemonSet", daemon)) == (4, 3)


def test_ready_pods_skips_the_deleted_uids_and_terminating_pods() -> None:
    pods = [
        _pod("web-0"),
        _pod("web-1", ready=False),
        _pod("web-2", deletionTimestamp="now"),
        _pod("web-3"),
    ]
    assert ready_pods(pods) == ["web-0", "web-3"]
    # A StatefulSet's replacement has the same name but a new uid: it counts.
    assert ready_pods(pods, {"uid-web-0"}) == ["web-3"]
