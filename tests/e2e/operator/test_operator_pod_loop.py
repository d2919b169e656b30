"""The closed loop with the operator as pods and a real workload on the real node.

The workload is busybox ``httpd`` on host networking (127.0.0.1:WEB_PORT) with a
readinessProbe, so readiness is what the kubelet reports, not a simulation:

* an ``Experiment`` (``k8s.deletePod`` on a schedule) runs in the leader pod; its status
  shows the verdict, the recovery time measured from the real replacement, the budget;
* a ``HealingPolicy`` watching the workload's endpoint heals it when it is scaled to 0
  (an Event and a metric record it); when the replica healing it is deleted during the
  playbook's cooldown, the replica that takes the policy over does not act again.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiException

from tests.e2e.operator.helpers import GROUP, NAMESPACE, VERSION, run_kubectl, wait_for
from tests.e2e.operator.test_operator import events_about
from tests.e2e.operator.test_operator_pod import PORTS, _two_ready, operator_pods
from tests.support.docker import IMAGE as BUSYBOX
from tests.support.kube import NODE_TAINT

__all__ = ["operator_pods"]

pytestmark = [pytest.mark.kube, pytest.mark.docker, pytest.mark.slow]

WEB = "loop-web"
WEB_PORT = 18090


def web_deployment() -> dict[str, Any]:
    probe = {"httpGet": {"path": "/index.html", "port": WEB_PORT}, "periodSeconds": 1}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": WEB, "namespace": NAMESPACE},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": WEB}},
            "template": {
                "metadata": {"labels": {"app": WEB}},
                "spec": {
                    "hostNetwork": True,
                    "dnsPolicy": "Default",
                    "terminationGracePeriodSeconds": 1,
                    "nodeSelector": {NODE_TAINT["key"]: NODE_TAINT["value"]},
                    "tolerations": [{**NODE_TAINT, "operator": "Equal"}],
                    "containers": [
                        {
                            "name": "httpd",
                            "image": BUSYBOX,
                            "imagePullPolicy": "Never",
                            "command": ["httpd", "-f", "-p", f"127.0.0.1:{WEB_PORT}", "-h", "/www"],
                            "readinessProbe": probe,
                        }
                    ],
                },
            },
        },
    }


def ready_replicas(apps: Any) -> int:
    return int(apps.read_namespaced_deployment(WEB, NAMESPACE).status.ready_replicas or 0)


def answers() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{WEB_PORT}/index.html", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.fixture
def web(operator_pods: Any, admin: Any) -> Iterator[Any]:
    apps = kubernetes.client.AppsV1Api(admin)
    with contextlib.suppress(ApiException):
        apps.delete_namespaced_deployment(WEB, NAMESPACE)
    apps.create_namespaced_deployment(NAMESPACE, web_deployment())
    try:
        wait_for(lambda: ready_replicas(apps) == 1 and answers(), 180, "the workload Ready")
        yield apps
    finally:
        with contextlib.suppress(ApiException):
            apps.delete_namespaced_deployment(WEB, NAMESPACE)


def status_of(admin: Any, plural: str, name: str) -> dict[str, Any]:
    found = kubernetes.client.CustomObjectsApi(admin).get_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, plural, name
    )
    return dict(found.get("status") or {})


@pytest.mark.timeout(600)
def test_a_scheduled_delete_pod_is_measured_from_real_readiness(
    web: Any, operator_pods: Any, admin: Any
) -> None:
    wait_for(lambda: _two_ready(operator_pods), 240, "two operator pods Ready")
    url = f"http://127.0.0.1:{WEB_PORT}/index.html"
    experiment = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": "loop-delete-pod", "namespace": NAMESPACE},
        "spec": {
            "schedule": {"cron": "* * * * *"},
            "targets": {"web": {"kubernetes": {"namespace": NAMESPACE, "selector": f"app={WEB}"}}},
            "probes": {"page": {"http": {"url": url, "timeout": "1s"}, "every": "500ms"}},
            "slo": {"avail": {"probe": "page", "objective": "99%", "window": "7d"}},
            "steadyState": [{"probe": "page", "over": "2s", "expect": {"successRatio": ">= 0.9"}}],
            "method": [{"name": "kill-one", "fault": "k8s.deletePod", "target": "web"}],
            "expect": {"recoverWithin": "120s"},
        },
    }
    kubernetes.client.CustomObjectsApi(admin).create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "experiments", experiment
    )
    done = wait_for(
        lambda: (
            status_of(admin, "experiments", "loop-delete-pod").get("verdict")
            and status_of(admin, "experiments", "loop-delete-pod")
        ),
        240,
        "the scheduled run's verdict",
    )
    assert done["verdict"] == "passed", done
    assert done["recoverySeconds"] is not None and done["recoverySeconds"] > 0, done
    assert set(done["budgetSpent"]) == {"avail"}
    # the pod really was replaced, and the replacement is Ready
    pods = (
        kubernetes.client.CoreV1Api(admin)
        .list_namespaced_pod(NAMESPACE, label_selector=f"app={WEB}")
        .items
    )
    assert len([p for p in pods if p.metadata.deletion_timestamp is None]) == 1
    assert ready_replicas(web) == 1
    print(f"deletePod: recovered in {done['recoverySeconds']} s, spent {done['budgetSpent']}")


def healing_policy() -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HealingPolicy",
        "metadata": {"name": "loop-heal", "namespace": NAMESPACE},
        "spec": {
            "targets": {
                "web": {"kubernetes": {"namespace": NAMESPACE, "kind": "Deployment", "name": WEB}}
            },
            "watch": {
                "page": {
                    "http": {"url": f"http://127.0.0.1:{WEB_PORT}/index.html", "timeout": "1s"},
                    "every": "1s",
                    "unhealthyAfter": 3,
                    "target": "web",
                }
            },
            "playbooks": [
                {
                    "name": "scale-back",
                    "when": {"unhealthy": "page"},
                    "steps": [
                        {"action": "k8s.scale", "target": "web", "with": {"replicas": 1}},
                        {"action": "wait.healthy", "with": {"probe": "page", "within": "50s"}},
                    ],
                    "limits": {"maxAttempts": 1, "cooldown": "10m"},
                }
            ],
        },
    }


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and 'policy="aftershock-system/loop-heal"' in line
    )


@pytest.mark.timeout(600)
def test_the_healer_heals_and_its_successor_keeps_the_cooldown(
    web: Any, operator_pods: Any, admin: Any, kubectl: str, admin_kubeconfig: Path
) -> None:
    pods = wait_for(lambda: _two_ready(operator_pods), 240, "two operator pods Ready")
    # which pod serves /metrics where: its container's port (one of PORTS)
    ports = {p.metadata.name: int(p.spec.containers[0].ports[0].container_port) for p in pods}
    assert set(ports.values()) == set(PORTS)
    kubernetes.client.CustomObjectsApi(admin).create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "healingpolicies", healing_policy()
    )
    watcher = wait_for(
        lambda: status_of(admin, "healingpolicies", "loop-heal").get("watchedBy"),
        60,
        "a replica watching the policy",
    )
    assert watcher in ports
    wait_for(
        lambda: any(
            w.get("healthy") for w in status_of(admin, "healingpolicies", "loop-heal")["watches"]
        ),
        60,
        "the watch healthy",
    )

    # break it: the healer scales it back and it answers again
    web.patch_namespaced_deployment_scale(WEB, NAMESPACE, {"spec": {"replicas": 0}})
    wait_for(lambda: not answers(), 60, "the workload down")
    wait_for(answers, 240, "the healer to bring the workload back")
    reasons = [e["reason"] for e in events_about(admin, "loop-heal")]
    assert "HealingAction" in reasons, reasons
    # k8s.scale and wait.healthy, counted on the watching pod's /metrics
    wait_for(
        lambda: metric(ports[watcher], "aftershock_healer_actions_total") >= 2, 60, "the metric"
    )
    state = status_of(admin, "healingpolicies", "loop-heal")
    assert len(state["healing"]["playbooks"]["scale-back"]["attempts"]) == 1

    # break it again within the cooldown, and kill the replica healing it
    web.patch_namespaced_deployment_scale(WEB, NAMESPACE, {"spec": {"replicas": 0}})
    run_kubectl(
        kubectl,
        admin_kubeconfig,
        *("-n", NAMESPACE, "delete", "pod", watcher, "--grace-period=0", "--force"),
    )
    successor = wait_for(
        lambda: (
            (w := status_of(admin, "healingpolicies", "loop-heal").get("watchedBy")) != watcher
            and w
        ),
        60,
        "another replica to take the policy",
    )
    time.sleep(20)  # 20 samples unhealthy under the successor: within the cooldown it waits
    scale = web.read_namespaced_deployment_scale(WEB, NAMESPACE)
    assert int(scale.spec.replicas or 0) == 0, f"{successor} acted again within the cooldown"
    state = status_of(admin, "healingpolicies", "loop-heal")
    assert len(state["healing"]["playbooks"]["scale-back"]["attempts"]) == 1
    print(json.dumps({"watcher": watcher, "successor": successor}))
