"""A leader that dies with faults applied: its successor reverts them from the API alone.

Real parts only: operator processes with the ServiceAccount token (no shared
volume: each has a home of its own), a Deployment on the real API server, a
container on the private dockerd, a standalone ``aftershock proxy`` as the
external Toxiproxy. Processes are killed with SIGKILL: nothing of theirs runs
after it, and nothing on their disks is read again.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import httpx
import kubernetes
import pytest
from kubernetes.client import ApiException

from aftershock.operator.failover import take_over
from aftershock.operator.kube import KubeAccess
from aftershock.operator.runrecords import RUNS
from aftershock.operator.stores import operator_stores
from aftershock.operator.targetleases import CLAIMS
from aftershock.settings import Settings
from tests.e2e.operator.helpers import GROUP, NAMESPACE, ROOT, VERSION, operator_argv, wait_for
from tests.support.docker import ContainerFactory, free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]

WORKLOAD = "failover-web"
REPLICAS = 2


@pytest.fixture
def workload(installed: None, admin: Any) -> Iterator[Any]:
    """A Deployment of two replicas (no node needed: scaling changes the object)."""
    apps = kubernetes.client.AppsV1Api(admin)
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": WORKLOAD, "namespace": NAMESPACE},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": WORKLOAD}},
            "template": {
                "metadata": {"labels": {"app": WORKLOAD}},
                "spec": {"containers": [{"name": "web", "image": "aftershock-test/busybox"}]},
            },
        },
    }
    try:
        apps.create_namespaced_deployment(NAMESPACE, body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        apps.patch_namespaced_deployment(WORKLOAD, NAMESPACE, {"spec": {"replicas": REPLICAS}})
    try:
        yield apps
    finally:
        apps.delete_namespaced_deployment(WORKLOAD, NAMESPACE)


def replicas(apps: Any) -> int:
    return int(apps.read_namespaced_deployment_scale(WORKLOAD, NAMESPACE).spec.replicas or 0)


def runs(admin: Any) -> list[dict[str, Any]]:
    custom = kubernetes.client.CustomObjectsApi(admin)
    items: list[dict[str, Any]] = custom.list_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, RUNS
    )["items"]
    return items


def fault_phases(admin: Any) -> dict[str, str]:
    """Every fault record of every ExperimentRun: key -> phase."""
    return {
        f"{item['metadata']['name']}:{rec['key']}": rec["phase"]
        for item in runs(admin)
        for rec in (item.get("status") or {}).get("faults") or []
    }


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; stopped at teardown even when the test timed out."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def env_for(home: Path, docker_host: str, kubeconfig: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "AFTERSHOCK_HOME": str(home),
        "DOCKER_HOST": docker_host,
        "KUBECONFIG": str(kubeconfig),
        "AFTERSHOCK_ALLOW_NAMESPACES": NAMESPACE,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("AFTERSHOCK_ALLOW_CONTAINERS", None)
    return env


# ---------------------------------------------------------------- the leader pod dies
@pytest.mark.timeout(300)  # cron has minute granularity: the first fire is up to 60 s away
def test_the_standby_reverts_a_dead_leaders_faults_within_the_lease(
    spawned: list[subprocess.Popen[bytes]],
    admin: Any,
    clean_namespace: None,
    sa_kubeconfig: Path,
    workload: Any,
    container_factory: ContainerFactory,
    docker_host: str,
    tmp_path: Path,
) -> None:
    box = container_factory("box")
    lease_duration = 6.0
    experiment = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": "failover", "namespace": NAMESPACE},
        "spec": {
            "schedule": {"cron": "* * * * *"},
            "targets": {
                "web": {
                    "kubernetes": {"namespace": NAMESPACE, "kind": "Deployment", "name": WORKLOAD}
                },
                "box": {"docker": {"names": [box.name]}},
            },
            "method": [
                {
                    "name": "shrink",
                    "fault": "k8s.scale",
                    "target": "web",
                    "with": {"replicas": 0},
                    "for": "120s",
                },
                {"name": "freeze", "fault": "docker.pause", "target": "box", "for": "120s"},
            ],
        },
    }
    operators: dict[str, subprocess.Popen[bytes]] = {}
    logs = [(tmp_path / f"{identity}.log").open("wb") for identity in ("op-a", "op-b")]
    for identity, log in zip(("op-a", "op-b"), logs, strict=True):
        operators[identity] = subprocess.Popen(
            operator_argv(identity, sa_kubeconfig, lease_duration, free_port()),
            env=env_for(tmp_path / identity, docker_host, sa_kubeconfig),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        spawned.append(operators[identity])
    coordination = kubernetes.client.CoordinationV1Api(admin)
    try:
        custom = kubernetes.client.CustomObjectsApi(admin)
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            NAMESPACE,
            "experiments",
            experiment,
        )

        def both_applied() -> bool:
            phases = list(fault_phases(admin).values())
            return len(phases) == 2 and set(phases) == {"applied"}

        wait_for(both_applied, 100, "both faults applied")
        assert replicas(workload) == 0
        box.reload()
        assert box.status == "paused"
        holder = coordination.read_namespaced_lease("aftershock-operator", NAMESPACE)
        leader = holder.spec.holder_identity
        assert leader in operators
        operators[leader].send_signal(signal.SIGKILL)
        operators[leader].wait(timeout=10)
        killed = time.monotonic()

        def restored() -> bool:
            box.reload()
            return replicas(workload) == REPLICAS and box.status == "running"

        wait_for(restored, lease_duration + 20, "the faults reverted")
        took = time.monotonic() - killed
        assert took <= lease_duration + 5, f"reverted {took:.1f} s after the leader died"

        # the successor marks the run right after its reverts (one status write later)
        def marked() -> dict[str, Any] | None:
            (run,) = runs(admin)
            return run if run["status"].get("phase") == "Interrupted" else None

        run = wait_for(marked, 10, "the dead leader's run marked Interrupted")
        status = run["status"]
        assert status["result"]["status"] == "interrupted"
        assert leader in status["result"]["reason"]
        assert {f["phase"] for f in status["faults"]} == {"reverted"}
        assert all(f.get("revertedAt") for f in status["faults"])
        standby = next(i for i in operators if i != leader)
        lease = coordination.read_namespaced_lease("aftershock-operator", NAMESPACE)
        assert lease.spec.holder_identity == standby

        # the dead run's target leases are broken by the successor right after it marks the
        # run (a later fire may hold new ones)
        def dead_claims() -> list[str]:
            leases = coordination.list_namespaced_lease(
                NAMESPACE, label_selector="aftershock.dev/role=target-lease"
            ).items
            holders = {(lease.metadata.annotations or {}).get(CLAIMS, "") for lease in leases}
            return [h for h in holders if run["spec"]["runId"] in h]

        wait_for(lambda: not dead_claims(), 10, "the dead run's target claims broken")
        print(f"faults reverted {took:.1f} s after SIGKILL (lease {lease_duration:.0f} s)")
    finally:
        for log in logs:
            log.close()


# ---------------------------------------------------------------- SIGKILL at random moments
EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: killed, namespace: {namespace}}}
spec:
  targets:
    db: {{toxiproxy: {{api: "http://127.0.0.1:{api}", proxy: killed}}}}
    box: {{docker: {{names: ["{box}"]}}}}
    web: {{kubernetes: {{namespace: {namespace}, kind: Deployment, name: {workload}}}}}
  method:
    - {{name: slow, fault: toxiproxy.latency, target: db, with: {{latency: 300ms}}, for: 3s}}
    - {{name: freeze, fault: docker.pause, target: box, at: 500ms, for: 3s}}
    - {{name: shrink, fault: k8s.scale, target: web, with: {{replicas: 0}}, at: 1s, for: 3s}}
"""


@pytest.mark.timeout(400)
def test_sigkilled_leaders_leave_no_fault_behind(
    spawned: list[subprocess.Popen[bytes]],
    admin: Any,
    clean_namespace: None,
    sa_kubeconfig: Path,
    workload: Any,
    container_factory: ContainerFactory,
    docker_client: docker.DockerClient,
    docker_host: str,
    tmp_path: Path,
) -> None:
    env = env_for(tmp_path / "home", docker_host, sa_kubeconfig)
    api = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aftershock", "proxy", "--listen", f"127.0.0.1:{api}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    spawned.append(server)
    base = f"http://127.0.0.1:{api}"
    try:
        wait_for(lambda: _answers(base), 15, "the external proxy server")
        httpx.post(
            f"{base}/proxies",
            json={"name": "killed", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"},
        ).raise_for_status()
        box = container_factory("box")
        exp = tmp_path / "killed.yaml"
        exp.write_text(
            EXPERIMENT.format(api=api, box=box.name, namespace=NAMESPACE, workload=WORKLOAD)
        )
        rnd = random.Random(20261204)
        kube = KubeAccess(sa_kubeconfig)
        settings = Settings(home=tmp_path / "successor")
        applied_seen = 0
        for round_ in range(20):
            log = (tmp_path / f"leader-{round_}.log").open("wb")
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.e2e.operator.leader_run",
                    str(sa_kubeconfig),
                    NAMESPACE,
                    f"leader-{round_}",
                    str(exp),
                ],
                env={**env, "AFTERSHOCK_HOME": str(tmp_path / f"leader-{round_}")},
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=log,
            )
            spawned.append(child)
            assert child.stdout is not None
            first = child.stdout.readline()
            assert first.startswith(b"holder "), (tmp_path / f"leader-{round_}.log").read_text()
            time.sleep(rnd.uniform(0.0, 4.5))
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            child.stdout.close()
            log.close()
            before = fault_phases(admin)
            applied_seen += sum(1 for phase in before.values() if phase == "applied")
            successor = operator_stores(kube, NAMESPACE, f"successor-{round_}")
            report = asyncio.run(take_over(successor, settings))
            assert all(a.ok for a in report.actions), report.actions
            # the world: nothing left applied
            assert httpx.get(f"{base}/proxies/killed/toxics").json() == []
            box.reload()
            assert box.status == "running", f"round {round_}: {box.status}"
            assert replicas(workload) == REPLICAS, f"round {round_}"
            # the records: every intent has its revert
            after = fault_phases(admin)
            assert set(after.values()) <= {"reverted"}, after
            for item in runs(admin):
                assert item["status"]["phase"] in {"Interrupted", "Finished"}, item["status"]
        kube.close()
        intents = len(fault_phases(admin))
        assert applied_seen >= 5, f"only {applied_seen} faults were applied at a kill"
        assert intents >= 20, f"only {intents} faults got as far as an intent"
        print(f"20 SIGKILLs: {applied_seen} applied faults and {intents} fault records reverted")
    finally:
        server.terminate()
        server.wait(timeout=10)


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/version", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_ended_runs_past_the_retention_are_pruned_and_running_ones_never(
    admin: Any, clean_namespace: None, sa_kubeconfig: Path
) -> None:
    custom = kubernetes.client.CustomObjectsApi(admin)
    now = datetime.now(UTC)
    old = (now - timedelta(days=100)).isoformat()
    recent = (now - timedelta(days=3)).isoformat()
    for name, phase, finished in [
        ("old-finished", "Finished", old),
        ("old-interrupted", "Interrupted", old),
        ("recent-finished", "Finished", recent),
        ("old-running", "Running", old),
    ]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ExperimentRun",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"runId": name, "experiment": "x", "holder": "gone/0"},
        }
        created = custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, RUNS, body)
        created["status"] = {"phase": phase, "result": {"finishedAt": finished}}
        custom.replace_namespaced_custom_object_status(
            GROUP, VERSION, NAMESPACE, RUNS, name, created
        )
    kube = KubeAccess(sa_kubeconfig)
    try:
        objects = operator_stores(kube, NAMESPACE, "pruner").objects
        assert sorted(objects.prune(now)) == ["old-finished", "old-interrupted"]
    finally:
        kube.close()
    left = sorted(i["metadata"]["name"] for i in runs(admin))
    assert left == ["old-running", "recent-finished"]
