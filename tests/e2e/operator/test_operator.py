"""The operator against the real API server, authenticated as its own ServiceAccount.

Install is ``kubectl apply -k deploy/``; the operator runs in-process with the
ServiceAccount's token, so a rule missing from deploy/rbac.yaml fails a test.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiException

from aftershock import runtime
from aftershock.model import Experiment
from aftershock.operator.handlers import resource_key
from tests.e2e.operator.helpers import (
    DEPLOY,
    GROUP,
    NAMESPACE,
    VERSION,
    await_for,
    run_kubectl,
)
from tests.support.docker import free_port

pytestmark = [pytest.mark.kube, pytest.mark.slow]


def experiment(
    name: str, *, cron: str | None = "* * * * *", broken: bool = False
) -> dict[str, Any]:
    """An Experiment on a local http.server behind the embedded proxy."""
    svc, front = free_port(), free_port()
    step: dict[str, Any] = {
        "name": "slow",
        "fault": "toxiproxy.latency",
        "target": "front",
        "with": {"latency": "300ms"},
        "for": "2s",
    }
    if broken:
        step["with"] = {"jitter": "10ms"}
    spec: dict[str, Any] = {
        "targets": {
            "svc": {
                "process": {
                    "command": [
                        sys.executable,
                        "-m",
                        "http.server",
                        str(svc),
                        "--bind",
                        "127.0.0.1",
                    ],
                    "ready": f"127.0.0.1:{svc}",
                }
            },
            "front": {
                "toxiproxy": {
                    "api": "embedded",
                    "proxy": "front",
                    "listen": f"127.0.0.1:{front}",
                    "upstream": f"127.0.0.1:{svc}",
                }
            },
        },
        "probes": {
            "web": {
                "http": {"url": f"http://127.0.0.1:{front}/", "timeout": "1s"},
                "every": "200ms",
            }
        },
        "slo": {"avail": {"probe": "web", "objective": "99%", "latency": "150ms", "window": "7d"}},
        "steadyState": [
            {"probe": "web", "over": "1s", "expect": {"successRatio": ">= 0.9", "p95": "< 100ms"}}
        ],
        "method": [step],
        "expect": {"recoverWithin": "10s"},
    }
    if cron is not None:
        spec["schedule"] = {"cron": cron}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def custom(admin: Any) -> Any:
    return kubernetes.client.CustomObjectsApi(admin)


def status_of(admin: Any, name: str, plural: str = "experiments") -> dict[str, Any]:
    try:
        body = custom(admin).get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, name)
    except ApiException as exc:
        if exc.status == 404:
            return {}
        raise
    return dict(body.get("status") or {})


def events_about(admin: Any, name: str) -> list[dict[str, Any]]:
    """events.k8s.io/v1 events about an object (raw JSON: core events lack eventTime)."""
    response = kubernetes.client.EventsV1Api(admin).list_namespaced_event(
        NAMESPACE, _preload_content=False
    )
    items = json.loads(response.data)["items"]
    return [e for e in items if (e.get("regarding") or {}).get("name") == name]


def create(admin: Any, body: dict[str, Any], plural: str = "experiments") -> None:
    custom(admin).create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, body)


def test_manifests_render_and_the_server_accepts_them(
    kubectl: str, admin_kubeconfig: Path, installed: None
) -> None:
    rendered = run_kubectl(kubectl, admin_kubeconfig, "kustomize", str(DEPLOY)).stdout
    kinds = [
        line.split(":", 1)[1].strip() for line in rendered.splitlines() if line.startswith("kind:")
    ]
    for kind in (
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "Role",
        "ClusterRole",
        "Deployment",
    ):
        assert kind in kinds
    assert "'*'" not in rendered and '"*"' not in rendered
    assert "secrets" not in rendered and "cluster-admin" not in rendered
    run_kubectl(kubectl, admin_kubeconfig, "apply", "-k", str(DEPLOY), "--dry-run=server")
    example = DEPLOY / "examples" / "toxiproxy.yaml"
    run_kubectl(kubectl, admin_kubeconfig, "apply", "-f", str(example), "--dry-run=server")


async def test_invalid_experiment_gets_a_condition_naming_the_field(
    admin: Any, replicas: Any
) -> None:
    replica = replicas("op-a")
    await await_for(lambda: replica.leading, 30, "the replica to lead")
    await asyncio.to_thread(create, admin, experiment("broken", broken=True))
    status = await await_for(
        lambda: status_of(admin, "broken").get("conditions") and status_of(admin, "broken"),
        30,
        "the Valid condition",
    )
    (valid,) = status["conditions"]
    assert valid["type"] == "Valid"
    assert valid["status"] == "False"
    assert valid["reason"] == "Invalid"
    assert "spec.method[0].with.latency: required field is missing" in valid["message"]
    assert status["phase"] == "Invalid"
    events = await asyncio.to_thread(events_about, admin, "broken")
    assert any(e["type"] == "Warning" and e["reason"] == "Invalid" for e in events)


@pytest.mark.timeout(200)  # cron has minute granularity: the first fire is up to 60 s away
async def test_a_scheduled_run_reports_and_only_the_leader_runs_it(
    admin: Any, replicas: Any
) -> None:
    first, second = replicas("op-a"), replicas("op-b")
    await await_for(lambda: first.leading or second.leading, 30, "a leader")
    await asyncio.to_thread(create, admin, experiment("weekly"))
    scheduled = await await_for(
        lambda: status_of(admin, "weekly").get("nextRun") and status_of(admin, "weekly"),
        30,
        "status.nextRun",
    )
    assert scheduled["phase"] == "Scheduled"
    assert scheduled["conditions"][0]["status"] == "True"
    done = await await_for(
        lambda: status_of(admin, "weekly").get("verdict") and status_of(admin, "weekly"),
        100,
        "a run",
    )
    assert done["verdict"] == "passed", done
    assert done["phase"] == "Succeeded"
    assert done["lastRun"] and done["nextRun"]
    assert set(done["budgetSpent"]) == {"avail"}
    assert done["budgetSpent"]["avail"].endswith("%")
    assert done["recoverySeconds"] is not None
    leader, standby = (first, second) if first.leading else (second, first)
    key = resource_key(NAMESPACE, "weekly")
    assert [k for k, _ in leader.runs] == [key]
    assert standby.runs == []
    journals = list((leader.settings.home / "journal").glob("*.jsonl"))
    assert len(journals) == 1
    lease = kubernetes.client.CoordinationV1Api(admin).read_namespaced_lease(
        "aftershock-operator", NAMESPACE
    )
    assert lease.spec.holder_identity == leader.identity
    events = await asyncio.to_thread(events_about, admin, "weekly")
    assert any(e["reason"] == "Succeeded" and e["type"] == "Normal" for e in events)

    # deleting the resource stops its schedule (the watch's DELETED event)
    await asyncio.to_thread(
        custom(admin).delete_namespaced_custom_object,
        GROUP,
        VERSION,
        NAMESPACE,
        "experiments",
        "weekly",
    )
    await await_for(lambda: not status_of(admin, "weekly"), 30, "the resource to be gone")
    assert leader.state is not None and leader.state.scheduler is not None
    assert leader.state.scheduler.next_run(key) is None


async def test_the_standby_takes_over_when_the_leader_stops(admin: Any, replicas: Any) -> None:
    first, second = replicas("op-a"), replicas("op-b")
    await await_for(lambda: first.leading or second.leading, 30, "a leader")
    leader, standby = (first, second) if first.leading else (second, first)
    await asyncio.sleep(2)
    assert not standby.leading
    await asyncio.to_thread(create, admin, experiment("handover"))
    await await_for(lambda: status_of(admin, "handover").get("nextRun"), 30, "status.nextRun")
    await leader.close()
    await await_for(lambda: standby.leading, 20, "the standby to take the lease")
    assert standby.state is not None
    await await_for(
        lambda: (
            standby.state is not None
            and standby.state.scheduler is not None
            and standby.state.scheduler.next_run(resource_key(NAMESPACE, "handover"))
        ),
        30,
        "the new leader to schedule the experiment (kopf resume)",
    )
    lease = kubernetes.client.CoordinationV1Api(admin).read_namespaced_lease(
        "aftershock-operator", NAMESPACE
    )
    assert lease.spec.holder_identity == standby.identity


async def test_the_lever_configmap_engages_and_releases_the_kill_switch(
    admin: Any, replicas: Any
) -> None:
    replica = replicas("op-a")
    await await_for(lambda: replica.leading, 30, "the replica to lead")
    core = kubernetes.client.CoreV1Api(admin)
    body = {"metadata": {"name": "aftershock-lever"}, "data": {"engaged": "true"}}
    await asyncio.to_thread(core.create_namespaced_config_map, NAMESPACE, body)
    assert replica.state is not None
    lever = replica.state.admission.stores.lever
    await await_for(lever.engaged, 20, "the lever to engage")
    # The ConfigMap alone: no file mirrors it, and the admission refuses on it.
    assert not runtime.lever_engaged(replica.settings)
    assert not (replica.settings.home / "lever").exists()
    now = datetime.now(UTC)
    gated = Experiment.model_validate(experiment("gated"))
    assert replica.state.admission.check(gated, now).kill_switch
    await asyncio.to_thread(
        core.patch_namespaced_config_map,
        "aftershock-lever",
        NAMESPACE,
        {"data": {"engaged": "false"}},
    )
    await await_for(lambda: not lever.engaged(), 20, "the lever to release")


async def test_a_missing_rbac_rule_is_caught(
    admin: Any, replicas: Any, short_rbac_kubeconfig: Path
) -> None:
    """The reason these tests use the SA token: without experiments/status nothing is reported."""
    replica = replicas("op-short", short_rbac_kubeconfig)
    await await_for(lambda: replica.leading, 30, "the replica to lead")
    await asyncio.to_thread(create, admin, experiment("unreported", broken=True))
    await asyncio.sleep(8)
    assert "conditions" not in status_of(admin, "unreported")
