"""The Kubernetes driver against kmock: the failures a real API server will not produce on cue.

kmock serves the Kubernetes API over HTTP on 127.0.0.1; the driver talks to it
with the official client, as it would to a cluster. Each test scripts one
misbehaviour — a 409 Conflict, a watch dropped mid-event, a 410 Gone — and
checks from the requests kmock received that the driver re-read and re-applied,
resumed from the last resourceVersion, or relisted.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kmock
import pytest
import stamina
from kubernetes import client
from structlog.testing import capture_logs

from aftershock.drivers.kubernetes import KubernetesDriver
from aftershock.errors import DriverUnavailable, FaultInjectionFailed, RevertFailed
from aftershock.model.params import DeletePodParams
from aftershock.model.targets import KubernetesTarget, TargetKind, TargetSpec
from aftershock.ports import ActionRequest, Handle
from aftershock.settings import Allowlist

pytestmark = pytest.mark.kmock(cls=kmock.KubernetesScaffold)

NS = "shop"
DEPLOYMENT = f"/apis/apps/v1/namespaces/{NS}/deployments/web"
SCALE = f"{DEPLOYMENT}/scale"


def _driver(server: kmock.KubernetesScaffold, *, settle: float) -> KubernetesDriver:
    def api() -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = str(server.url).rstrip("/")
        return client.ApiClient(configuration)

    return KubernetesDriver(Allowlist(namespaces=(NS,)), api_factory=api, settle_timeout=settle)


@pytest.fixture
async def driver(kmock: kmock.KubernetesScaffold) -> AsyncIterator[KubernetesDriver]:
    drv = _driver(kmock, settle=20)
    try:
        yield drv
    finally:
        await drv.aclose()


@pytest.fixture
async def impatient_driver(kmock: kmock.KubernetesScaffold) -> AsyncIterator[KubernetesDriver]:
    """A short settle timeout, for a revert that must give up."""
    drv = _driver(kmock, settle=2.5)
    try:
        yield drv
    finally:
        await drv.aclose()


def _handle(fault: str, **undo: Any) -> Handle:
    return Handle(
        run_id="run-1",
        step="step-1",
        kind=TargetKind.KUBERNETES,
        fault=fault,
        target="web",
        resources=(f"Deployment/{NS}/web",),
        undo={"server": "", "namespace": NS, **undo},
    )


def _scale(version: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": "web", "namespace": NS, "resourceVersion": version},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas},
    }


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


def _fail(view: Any, status: dict[str, Any]) -> None:
    """Answer the requests of ``view`` with this Status and its code."""
    view << status["code"] << kmock.data(status)


CONFLICT = _status(
    409, "Conflict", 'Operation cannot be fulfilled on deployments.apps "web": object changed'
)


def _scale_handle() -> Handle:
    workloads = [{"kind": "Deployment", "name": "web", "previous": 3}]
    return _handle("k8s.scale", replicas=0, workloads=workloads)


async def test_conflict_on_cue_is_retried_with_a_fresh_read(
    kmock: kmock.KubernetesScaffold, driver: KubernetesDriver
) -> None:
    versions = iter(["5", "6"])
    kmock[f"get {SCALE}"] << (lambda: _scale(next(versions), 3))
    _fail(kmock[f"patch {SCALE}"][:1], CONFLICT)  # the first patch only
    kmock[f"patch {SCALE}"] << (lambda req: _scale("7", req.data["spec"]["replicas"]))

    await driver.inject(_scale_handle())

    patches = [r.data for r in kmock[f"patch {SCALE}"]]
    # The same change twice, each time locked to the version just read: re-read, re-applied.
    assert patches == [
        {"spec": {"replicas": 0}, "metadata": {"resourceVersion": "5"}},
        {"spec": {"replicas": 0}, "metadata": {"resourceVersion": "6"}},
    ]
    assert len(kmock[f"get {SCALE}"]) == 2


async def test_conflict_every_time_gives_up_with_a_named_error(
    kmock: kmock.KubernetesScaffold, driver: KubernetesDriver
) -> None:
    kmock[f"get {SCALE}"] << (lambda: _scale("5", 1))
    _fail(kmock[f"patch {SCALE}"], CONFLICT)

    with pytest.raises(FaultInjectionFailed, match=r"^web: .*409 Operation cannot be fulfilled"):
        await driver.inject(_scale_handle())
    assert len(kmock[f"patch {SCALE}"]) == 5  # bounded
    with pytest.raises(RevertFailed, match="409") as info:
        await driver.revert(_scale_handle())
    assert "\n" not in str(info.value)
    assert len(kmock[f"patch {SCALE}"]) == 10


def _pod(name: str, version: str, *, ready: bool) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "resourceVersion": version,
            "labels": {"app": "web"},
        },
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def _event(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def _delete_handle() -> Handle:
    """web-a of Deployment web (2 Ready before) was deleted; web-c replaces it."""
    return _handle(
        "k8s.deletePod",
        grace=None,
        pods=[{"name": "web-a", "uid": "uid-web-a", "owner": "Deployment/web"}],
        owners=[{"kind": "Deployment", "name": "web", "ready": 2}],
        orphans=[],
    )


def _serve_deployment(kmock: kmock.KubernetesScaffold) -> None:
    kmock[f"get {DEPLOYMENT}"] << {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS, "resourceVersion": "9"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
        "status": {"replicas": 2, "readyReplicas": 1},
    }


def _watch_log(kmock: kmock.KubernetesScaffold) -> list[str | None]:
    return [r.params.get("resourceVersion") for r in kmock["watch v1/pods"]]


async def test_dropped_watch_resumes_from_its_resource_version(
    kmock: kmock.KubernetesScaffold, driver: KubernetesDriver
) -> None:
    _serve_deployment(kmock)
    kmock["list v1/pods"] << {
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {"resourceVersion": "10"},
        "items": [_pod("web-b", "8", ready=True), _pod("web-c", "10", ready=False)],
    }
    scripted: dict[str, Callable[[], tuple[bytes, ...]]] = {
        # One event, then the connection is cut in the middle of the next one.
        "10": lambda: (_event("MODIFIED", _pod("web-c", "11", ready=False)), b'{"type": "MODI'),
        # The resumed watch carries on from 11 and sees the replacement become Ready.
        "11": lambda: (_event("MODIFIED", _pod("web-c", "12", ready=True)),),
    }
    kmock["watch v1/pods"] << (lambda req: scripted[req.params["resourceVersion"]]())

    with capture_logs() as logs:
        await driver.revert(_delete_handle())

    assert _watch_log(kmock) == ["10", "11"]
    assert len(kmock["list v1/pods"]) == 1  # resumed, not relisted
    watch = next(iter(kmock["watch v1/pods"]))
    assert watch.params["labelSelector"] == "app=web"
    assert watch.params["allowWatchBookmarks"] == "true"
    reverted = [e for e in logs if e["event"] == "k8s.fault_reverted"]
    assert reverted[0]["restored"] == [f"Deployment/{NS}/web"]


@pytest.mark.parametrize("how", ["error event", "response status"])
async def test_gone_forces_a_relist(
    kmock: kmock.KubernetesScaffold, driver: KubernetesDriver, how: str
) -> None:
    _serve_deployment(kmock)
    listed = iter(["10", "20"])
    kmock["list v1/pods"] << (
        lambda: {
            "apiVersion": "v1",
            "kind": "PodList",
            "metadata": {"resourceVersion": next(listed)},
            "items": [_pod("web-b", "8", ready=True), _pod("web-c", "9", ready=False)],
        }
    )
    gone = _status(410, "Expired", "too old resource version: 10 (15)")
    stale = kmock["watch v1/pods", kmock.params({"resourceVersion": "10"})]
    if how == "error event":
        stale << (json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n",)
    else:
        _fail(stale, gone)
    kmock["watch v1/pods", kmock.params({"resourceVersion": "20"})] << (
        _event("MODIFIED", _pod("web-c", "21", ready=True)),
    )

    await driver.revert(_delete_handle())

    assert len(kmock["list v1/pods"]) == 2  # relisted after the 410
    assert _watch_log(kmock) == ["10", "20"]  # and watched from the new list's version


async def test_a_replacement_that_never_gets_ready_fails_the_revert_in_time(
    kmock: kmock.KubernetesScaffold, impatient_driver: KubernetesDriver
) -> None:
    _serve_deployment(kmock)
    kmock["list v1/pods"] << {
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {"resourceVersion": "10"},
        "items": [_pod("web-b", "8", ready=True), _pod("web-c", "10", ready=False)],
    }
    kmock["watch v1/pods"] << (b"",)  # nothing happens, window after window

    with pytest.raises(RevertFailed, match="has not replaced its deleted pods"):
        await impatient_driver.revert(_delete_handle())
    resumed = _watch_log(kmock)
    assert set(resumed) == {"10"}  # every window resumed from the one version it had
    assert 2 <= len(resumed) <= 20  # and without hammering a server that ends watches at once


async def test_no_kubernetes_configuration_is_driver_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    drv = KubernetesDriver(Allowlist(namespaces=(NS,)))
    request = ActionRequest(
        action="k8s.deletePod",
        target_name="web",
        target=TargetSpec(kubernetes=KubernetesTarget(namespace=NS, selector="app=web")),
        params=DeletePodParams(),
    )
    try:
        with stamina.set_testing(True, attempts=1), pytest.raises(DriverUnavailable) as info:
            await drv.act(request)
    finally:
        await drv.aclose()
    assert str(info.value).startswith("web: no usable Kubernetes configuration")
