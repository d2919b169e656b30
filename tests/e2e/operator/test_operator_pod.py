"""The operator as real pods: deploy/ through ``tests/e2e/operator/overlay`` on a real node.

The image is deploy/Dockerfile built by ``scripts/image.sh`` (no registry), the pods run on
the kubelet of ``scripts/kube.sh node`` (hostNetwork), authenticate with the operator
ServiceAccount's mounted token, and are probed on the operator's own ``/healthz`` and
``/readyz``. The overlay runs two Deployments of one replica each, one health port each, that
compete for the Lease as deploy/'s two replicas do.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client import ApiException

from tests.e2e.operator.helpers import DEPLOY, NAMESPACE, run_kubectl, wait_for

pytestmark = [pytest.mark.kube, pytest.mark.docker, pytest.mark.slow]

OVERLAY = Path(__file__).parent / "overlay"
IMAGE = "aftershock/aftershock:test"
"""The tag the overlay runs; scripts/image.sh's default."""
DEPLOYMENTS = ("aftershock-operator", "aftershock-operator-b")
PORTS = (18080, 18081)
"""The health ports the overlay gives the two Deployments, on the node's loopback."""
BROKEN_PORT = 18082
SELECTOR = "app.kubernetes.io/name=aftershock,app.kubernetes.io/component=operator"
LEASE = "aftershock-operator"
BROKEN = "aftershock-broken-settings"
BROKEN_LABELS = {"app.kubernetes.io/name": "aftershock-e2e"}
"""Not the Deployments' labels: no ReplicaSet adopts the broken pod."""
BROKEN_SELECTOR = "app.kubernetes.io/name=aftershock-e2e"


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ready(pod: Any) -> bool:
    conditions = pod.status.conditions or []
    return pod.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in conditions
    )


def _two_ready(core: Any, *, without: str | None = None) -> list[Any] | None:
    """The operator pods when there are exactly two, both Running and Ready (and neither is
    the pod ``without``)."""
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=SELECTOR).items
    if len(pods) != 2 or any(p.metadata.name == without for p in pods):
        return None
    if all(_ready(p) and p.metadata.deletion_timestamp is None for p in pods):
        return sorted(pods, key=lambda p: p.metadata.name)
    return None


def _holder(leases: Any) -> str | None:
    try:
        lease = leases.read_namespaced_lease(LEASE, NAMESPACE)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    holder: str | None = lease.spec.holder_identity
    return holder


def _holder_among(leases: Any, names: set[str]) -> str | None:
    holder = _holder(leases)
    return holder if holder in names else None


def _log_records(kubectl: str, kubeconfig: Path, pod: str) -> list[dict[str, Any]]:
    """The pod's log as JSON records; every line but the start-up banner must be JSON."""
    text = run_kubectl(kubectl, kubeconfig, "-n", NAMESPACE, "logs", pod).stdout
    records, other = [], []
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        if line.startswith("{"):
            record = json.loads(line)
            assert isinstance(record, dict), line
            assert {"event", "level", "timestamp"} <= record.keys(), line
            records.append(record)
        else:
            other.append(line)
    assert [line.split(";")[0] for line in other] == [f"aftershock operator {pod} in {NAMESPACE}"]
    return records


def _crash_looping(core: Any) -> Any:
    """The broken pod's container status once it has restarted and waits in CrashLoopBackOff."""
    for status in core.read_namespaced_pod(BROKEN, NAMESPACE).status.container_statuses or []:
        waiting = status.state.waiting
        if status.restart_count >= 1 and waiting and waiting.reason == "CrashLoopBackOff":
            return status
    return None


def _no_pods(core: Any, selector: str) -> bool:
    """No pod matches, not even one being deleted (its containers may still run)."""
    return not core.list_namespaced_pod(NAMESPACE, label_selector=selector).items


def _delete_operator_pods(core: Any, kubectl: str, kubeconfig: Path) -> None:
    """Delete the overlay's Deployments and wait until none of their pods is left."""
    run_kubectl(
        kubectl,
        kubeconfig,
        *("-n", NAMESPACE, "delete", "deployment", *DEPLOYMENTS, "--ignore-not-found"),
    )
    wait_for(lambda: _no_pods(core, SELECTOR), 150, "the operator pods to be gone")


def _delete_broken_pod(core: Any) -> None:
    with contextlib.suppress(ApiException):
        core.delete_namespaced_pod(BROKEN, NAMESPACE, grace_period_seconds=0)
    wait_for(lambda: _no_pods(core, BROKEN_SELECTOR), 60, f"{BROKEN} to be gone")


@pytest.fixture
def operator_pods(
    kube_node: str,
    aftershock_image: str,
    kubectl: str,
    admin_kubeconfig: Path,
    admin: Any,
    clean_namespace: None,
) -> Iterator[Any]:
    """``kubectl apply -k overlay``; afterwards no operator pod runs and deploy/ is as
    ``installed`` leaves it (its Deployment's pods Pending: they do not tolerate the node)."""
    assert aftershock_image == IMAGE, (
        f"the overlay runs {IMAGE}, scripts/image.sh built {aftershock_image}"
    )
    core = kubernetes.client.CoreV1Api(admin)
    _delete_operator_pods(core, kubectl, admin_kubeconfig)  # left by an interrupted run
    busy = [port for port in PORTS if _listening(port)]
    assert not busy, f"127.0.0.1 ports {busy} are taken; the overlay's pods need them"
    run_kubectl(kubectl, admin_kubeconfig, "apply", "-k", str(OVERLAY))
    try:
        yield core
    finally:
        # No operator pod may outlive the test: later tests run their own replicas and
        # compete for the same Lease.
        _delete_operator_pods(core, kubectl, admin_kubeconfig)
        run_kubectl(kubectl, admin_kubeconfig, "apply", "-k", str(DEPLOY))


@pytest.mark.timeout(600)
def test_two_operator_pods_one_leader_and_failover(
    operator_pods: Any, kubectl: str, admin_kubeconfig: Path, admin: Any
) -> None:
    core = operator_pods
    leases = kubernetes.client.CoordinationV1Api(admin)
    pods = wait_for(lambda: _two_ready(core), 240, "two Running and Ready operator pods")
    for pod in pods:
        assert pod.spec.node_name is not None
        assert pod.spec.host_network is True
        assert pod.spec.containers[0].image == IMAGE
        (status,) = pod.status.container_statuses
        assert status.ready and status.state.running is not None
        assert status.image_id, "the container runs from an image the node has"
    names = {p.metadata.name for p in pods}
    holder = wait_for(lambda: _holder_among(leases, names), 60, "one of the pods to hold the Lease")

    # Each pod logs JSON; exactly one of them became leader, the Lease's holder.
    records = {name: _log_records(kubectl, admin_kubeconfig, name) for name in names}
    assert all(any(r["event"] == "operator started" for r in rs) for rs in records.values())
    leaders = {
        name for name, rs in records.items() if any(r["event"] == "became leader" for r in rs)
    }
    assert leaders == {holder}

    # The leader dies at once; the other takes the Lease within its duration (+5 s), and
    # the leader's Deployment brings a new pod back Ready, as a standby.
    lease_seconds = leases.read_namespaced_lease(LEASE, NAMESPACE).spec.lease_duration_seconds
    (other,) = names - {holder}
    started = time.monotonic()
    run_kubectl(
        kubectl,
        admin_kubeconfig,
        *("-n", NAMESPACE, "delete", "pod", holder, "--grace-period=0", "--force"),
    )
    wait_for(lambda: _holder(leases) == other, lease_seconds + 5, f"{other} to take the Lease")
    took = time.monotonic() - started
    print(f"the Lease moved to {other} {took:.1f} s after {holder} was deleted")
    pods = wait_for(
        lambda: _two_ready(core, without=holder),
        180,
        "a new operator pod Ready in place of the deleted leader",
    )
    (new,) = {p.metadata.name for p in pods} - {other}
    assert _holder(leases) == other
    assert not any(
        r["event"] == "became leader" for r in _log_records(kubectl, admin_kubeconfig, new)
    )


@pytest.mark.timeout(300)
def test_a_broken_setting_crash_loops_with_its_reason(
    kube_node: str,
    aftershock_image: str,
    kubectl: str,
    admin_kubeconfig: Path,
    admin: Any,
    installed: None,
) -> None:
    """An operator pod whose settings ``load_settings`` rejects exits with a one-line reason,
    again at every restart."""
    assert aftershock_image == IMAGE
    rendered = run_kubectl(kubectl, admin_kubeconfig, "kustomize", str(OVERLAY)).stdout
    (deployment,) = [
        d
        for d in yaml.safe_load_all(rendered)
        if d and d["kind"] == "Deployment" and d["metadata"]["name"] == DEPLOYMENTS[0]
    ]
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    container["args"] = ["operator", "--listen", f"127.0.0.1:{BROKEN_PORT}"]
    container["ports"][0]["containerPort"] = BROKEN_PORT
    container["env"].append({"name": "AFTERSHOCK_ALLOW_LABELS", "value": "tier"})
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": BROKEN, "labels": BROKEN_LABELS},
        "spec": spec,
    }
    core = kubernetes.client.CoreV1Api(admin)
    _delete_broken_pod(core)  # left by an interrupted run
    core.create_namespaced_pod(NAMESPACE, pod)
    try:
        status = wait_for(lambda: _crash_looping(core), 180, f"{BROKEN} to crash-loop")
        assert status.last_state.terminated.exit_code == 2
        log = run_kubectl(
            kubectl, admin_kubeconfig, "-n", NAMESPACE, "logs", "--previous", BROKEN
        ).stdout
        assert log.splitlines() == [
            "error: invalid label selector 'tier': expected key=value[,key=value]"
        ]
    finally:
        _delete_broken_pod(core)
