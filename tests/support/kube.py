"""Pytest plugin: a real Kubernetes API server for tests that need one.

``kubeconfig`` is the path of a kubeconfig whose server answers: ``$KUBECONFIG``
when it does, otherwise the control plane started by ``scripts/kube.sh``
(kube-apiserver, kube-controller-manager and etcd v1.20.2 on 127.0.0.1; started
here when running as root — building it takes minutes the first time, which is
done before the per-test timeout starts, see ``pytest_runtest_protocol``).
Without a server the test is skipped with the reason, unless
``AFTERSHOCK_REQUIRE_KUBE=1`` (CI), where it fails: CI never passes by skipping.

Pods that need no kubelet: ``kube_objects`` (helpers on the test's namespace,
no kubelet for its pods, which stay Pending) is for tests about API objects only
(selection, refusals). ``kube`` adds a fake kubelet (``FakeKubelet``) that marks
every new pod of the namespace Running and Ready through the status subresource,
so ReplicaSets count Ready replicas and rollouts progress without any container;
``pause()`` keeps new pods Pending, ``resume()``.

Fixtures: ``kubeconfig`` and ``kube_api`` (session), ``namespace`` (a fresh
namespace, deleted after the test), ``kube_objects`` and ``kube`` (helpers on
that namespace: Deployments, Nodes — deleted after the test —, waiting).

A real node, for tests that run pods for real: ``kube_node`` (session) is the
name of a Ready node started by ``scripts/kube.sh node`` (kube-scheduler and a
kubelet with dockershim on the Docker daemon of ``docker_host``, on this host;
no CNI, so hostNetwork pods only), and ``aftershock_image`` the aftershock image
built on that daemon by ``scripts/image.sh``. The node is tainted
``aftershock.dev/node=e2e:NoSchedule``: only pods that tolerate it run there
(``node_pod_spec``), every other pod stays Pending. Both are started, or built,
before the per-test timeout like the control plane; without them the test
skips, and fails under ``AFTERSHOCK_REQUIRE_KUBE=1``.

``node_kube`` runs its Deployments' pods on that node: busybox containers whose
readiness the kubelet reports from an exec probe. Their readiness is held on cue
by a ``Gate`` (a directory of this host the pods mount): a new pod turns Ready
only once the gate is open, and a pod being deleted waits in its preStop hook
until it is open — terminating, and still Ready, for its grace period.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.support.docker import IMAGE as BUSYBOX

__all__ = [
    "NODE_LABEL",
    "NODE_TAINT",
    "FakeKubelet",
    "Gate",
    "Kube",
    "NodeKube",
    "deployment_body",
    "eventually",
    "is_ready",
    "mark_ready",
    "node_container",
    "node_pod_spec",
]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(os.environ.get("AFTERSHOCK_KUBE_SCRIPT") or ROOT / "scripts" / "kube.sh")
IMAGE_SCRIPT = ROOT / "scripts" / "image.sh"
START_TIMEOUT = 1200
"""Seconds the first build and start may take (measured: about 4 minutes on 2 cores)."""
NODE_LABEL = ("aftershock.dev/node", "e2e")
"""The label (and the NoSchedule taint) of the node ``scripts/kube.sh node`` starts."""
NODE_TAINT = {"key": "aftershock.dev/node", "value": "e2e", "effect": "NoSchedule"}
_STATE: dict[str, tuple[str | None, str]] = {}


def _api(kubeconfig: str) -> client.ApiClient:
    loader: Any = config
    api: client.ApiClient = loader.new_client_from_config(config_file=kubeconfig)
    return api


def _close(api: client.ApiClient) -> None:
    closer: Any = api  # ApiClient.close is untyped
    closer.close()


def _why_not(kubeconfig: str) -> str | None:
    """``None`` when the server of ``kubeconfig`` answers, else why not (one line)."""
    if not Path(kubeconfig).is_file():
        return f"{kubeconfig} does not exist"
    try:
        api = _api(kubeconfig)
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        return " ".join(str(exc).split())
    try:
        client.VersionApi(api).get_code(_request_timeout=(3, 5))
    except Exception as exc:  # noqa: BLE001
        return " ".join(str(exc).split())[:300]
    finally:
        _close(api)
    return None


def _start() -> tuple[str | None, str]:
    """Run the start script; return (kubeconfig path or None, why not)."""
    try:
        done = subprocess.run(
            ["bash", str(SCRIPT)],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{SCRIPT}: {exc}"
    for line in done.stdout.splitlines():
        if done.returncode == 0 and line.startswith("KUBECONFIG="):
            return line.partition("=")[2].strip(), ""
    tail = " | ".join(done.stderr.strip().splitlines()[-5:])
    return None, f"{SCRIPT} exited {done.returncode}: {tail}"


def _resolve() -> tuple[str | None, str]:
    """The kubeconfig of a server that answers, or why there is none; computed once."""
    if "result" in _STATE:
        return _STATE["result"]
    reasons: list[str] = []
    env = os.environ.get("KUBECONFIG")
    result: tuple[str | None, str] | None = None
    if env:
        why = _why_not(env)
        if why is None:
            result = (env, "")
        else:
            reasons.append(f"KUBECONFIG={env} does not answer: {why}")
    if result is None:
        if os.geteuid() != 0:
            reasons.append("not root, so no control plane can be built and started")
        elif not SCRIPT.is_file():
            reasons.append(f"the start script {SCRIPT} was not found")
        else:
            path, detail = _start()
            why = _why_not(path) if path else detail
            if path and why is None:
                result = (path, "")
            else:
                reasons.append(why or detail)
    _STATE["result"] = result or (None, "; ".join(reasons))
    return _STATE["result"]


def _script_line(argv: list[str], key: str, env: Mapping[str, str]) -> tuple[str | None, str]:
    """Run a start or build script; return (the value of its ``key=`` line or None, why not)."""
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
            env={**os.environ, **env},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{' '.join(argv)}: {exc}"
    for line in done.stdout.splitlines():
        if done.returncode == 0 and line.startswith(f"{key}="):
            return line.partition("=")[2].strip(), ""
    tail = " | ".join(done.stderr.strip().splitlines()[-5:])
    return None, f"{' '.join(argv[1:])} exited {done.returncode}: {tail}"


def _ready_node(kubeconfig: str) -> str | None:
    """The name of a Ready node carrying the test node's label, if one answers now."""
    api = _api(kubeconfig)
    try:
        key, value = NODE_LABEL
        nodes = _json(
            client.CoreV1Api(api).list_node(
                label_selector=f"{key}={value}", _preload_content=False, _request_timeout=10
            )
        )
    except Exception:  # noqa: BLE001 - no answer means no node
        return None
    finally:
        _close(api)
    for node in nodes.get("items") or []:
        conditions = (node.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            return str(node["metadata"]["name"])
    return None


def _resolve_node(docker_host: str | None) -> tuple[str | None, str]:
    """The test node's name, started when needed, or why there is none; computed once."""
    key = f"node {docker_host}"
    if key in _STATE:
        return _STATE[key]
    kubeconfig, why = _resolve()
    result: tuple[str | None, str]
    if kubeconfig is None:
        result = (None, f"no API server: {why}")
    elif os.geteuid() != 0:
        name = _ready_node(kubeconfig)
        result = (name, "") if name else (None, "not root, so no kubelet can be started")
    else:
        env = {"KUBECONFIG": kubeconfig, **({"DOCKER_HOST": docker_host} if docker_host else {})}
        name, why = _script_line(["bash", str(SCRIPT), "node"], "NODE", env)
        if name is not None and _ready_node(kubeconfig) is None:
            name, why = None, f"scripts/kube.sh node printed NODE={name}, but it is not Ready"
        result = (name, why)
    _STATE[key] = result
    return result


def _resolve_image(docker_host: str | None) -> tuple[str | None, str]:
    """The tag of the aftershock image built by scripts/image.sh, or why not; computed once."""
    key = f"image {docker_host}"
    if key not in _STATE:
        env = {"DOCKER_HOST": docker_host} if docker_host else {}
        _STATE[key] = _script_line(["bash", str(IMAGE_SCRIPT)], "IMAGE", env)
    return _STATE[key]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Start the control plane (and the node, and build the image) before pytest-timeout arms
    the per-test timer.

    The first builds take minutes; they belong to the session, not to whichever
    test happens to need them first.
    """
    names = getattr(item, "fixturenames", ())
    if "kubeconfig" in names:
        _resolve()
    if "kube_node" in names or "aftershock_image" in names:
        docker_host = _docker_url()
        if "kube_node" in names:
            _resolve_node(docker_host)
        if "aftershock_image" in names:
            _resolve_image(docker_host)
    return (yield)


def _docker_url() -> str | None:
    """``$DOCKER_HOST``, else the private dockerd's URL: what ``docker_host`` will pick when
    it answers (both scripts start that dockerd when it does not run)."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    url, _ = _script_line(["bash", str(ROOT / "scripts" / "dockerd.sh"), "env"], "DOCKER_HOST", {})
    return url


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    """The path of a kubeconfig whose API server answers (skip, or fail in CI, without one)."""
    path, reason = _resolve()
    if path is None:
        message = f"Kubernetes API server not available: {reason}"
        if os.environ.get("AFTERSHOCK_REQUIRE_KUBE") == "1":
            pytest.fail(f"{message} (AFTERSHOCK_REQUIRE_KUBE=1)", pytrace=False)
        pytest.skip(message)
    return path


def _unavailable(message: str) -> None:
    if os.environ.get("AFTERSHOCK_REQUIRE_KUBE") == "1":
        pytest.fail(f"{message} (AFTERSHOCK_REQUIRE_KUBE=1)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def kube_node(kubeconfig: str, docker_host: str) -> str:
    """The name of a Ready node whose kubelet runs pods on ``docker_host`` (skip, or fail
    in CI, without one). Pods need hostNetwork and a toleration of ``NODE_TAINT``."""
    name, reason = _resolve_node(docker_host)
    if name is None:
        _unavailable(f"no Kubernetes node: {reason}")
    assert name is not None
    return name


@pytest.fixture(scope="session")
def aftershock_image(docker_host: str) -> str:
    """The aftershock image (deploy/Dockerfile), built on ``docker_host`` by scripts/image.sh."""
    tag, reason = _resolve_image(docker_host)
    if tag is None:
        _unavailable(f"the aftershock image could not be built: {reason}")
    assert tag is not None
    return tag


@pytest.fixture(scope="session")
def kube_api(kubeconfig: str) -> Iterator[client.ApiClient]:
    """An API client on ``kubeconfig`` (the admin token), closed at the end of the session."""
    api = _api(kubeconfig)
    try:
        yield api
    finally:
        _close(api)


def _json(response: Any) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(response.data)
    finally:
        response.release_conn()
    return data


def eventually(check: Callable[[], bool], what: str, *, timeout: float = 60) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting until {what}")
        time.sleep(0.2)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kube_api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace for one test (with its default ServiceAccount), deleted after it."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:30].strip("-")
    name = f"ast-{slug}-{secrets.token_hex(3)}"
    core = client.CoreV1Api(kube_api)
    body: Any = {"metadata": {"name": name, "labels": {"aftershock.test": "1"}}}
    _json(core.create_namespace(body, _preload_content=False))
    try:
        # Pods are refused until the controller-manager has made the default ServiceAccount.
        eventually(
            lambda: bool(
                _json(core.list_namespaced_service_account(name, _preload_content=False))["items"]
            ),
            f"namespace {name} has its default ServiceAccount",
        )
        yield name
    finally:
        with contextlib.suppress(ApiException):
            _json(core.delete_namespace(name, _preload_content=False))


def mark_ready(core: client.CoreV1Api, pod: Mapping[str, Any]) -> None:
    """Act as the kubelet: report the pod Running with every container ready."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta, spec = pod["metadata"], pod.get("spec") or {}
    kinds = ("PodScheduled", "Initialized", "ContainersReady", "Ready")
    status = {
        "phase": "Running",
        "startTime": now,
        "conditions": [{"type": t, "status": "True", "lastTransitionTime": now} for t in kinds],
        "containerStatuses": [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": "",
                "ready": True,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            }
            for c in spec.get("containers") or []
        ],
    }
    _json(
        core.patch_namespaced_pod_status(
            meta["name"], meta["namespace"], {"status": status}, _preload_content=False
        )
    )


def is_ready(pod: Mapping[str, Any]) -> bool:
    """Does the pod's ``Ready`` condition say ``True`` (what the kubelet reports)?"""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class FakeKubelet:
    """A thread that marks every pod of one namespace Ready soon after it appears."""

    def __init__(self, kubeconfig: str, namespace: str, *, interval: float = 0.2) -> None:
        self.namespace = namespace
        self.interval = interval
        self._paused = threading.Event()
        self._round = threading.Lock()
        self._api = _api(kubeconfig)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"kubelet-{namespace}", daemon=True)

    def start(self) -> FakeKubelet:
        """Start marking pods."""
        self._thread.start()
        return self

    def pause(self) -> None:
        """From now on new pods stay Pending (to observe a fault before it heals)."""
        self._paused.set()
        with self._round:  # a round that started before the pause has finished
            pass

    def resume(self) -> None:
        """Mark pods Ready again."""
        self._paused.clear()

    def stop(self) -> None:
        """Stop, and close the client."""
        self._stop.set()
        self._thread.join(timeout=10)
        _close(self._api)

    def _run(self) -> None:
        core = client.CoreV1Api(self._api)
        while not self._stop.wait(self.interval):
            with self._round:
                if not self._paused.is_set():
                    self._mark_round(core)

    def _mark_round(self, core: client.CoreV1Api) -> None:
        try:
            pods = _json(core.list_namespaced_pod(self.namespace, _preload_content=False))
        except Exception:  # noqa: BLE001 - the namespace may be going away
            return
        for pod in pods.get("items") or []:
            if is_ready(pod) or pod["metadata"].get("deletionTimestamp"):
                continue
            with contextlib.suppress(Exception):  # deleted or changed meanwhile: next round
                mark_ready(core, pod)


def deployment_body(
    name: str,
    pod_spec: Mapping[str, Any],
    *,
    replicas: int,
    labels: Mapping[str, str] | None = None,
    namespace: str | None = None,
    strategy: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A Deployment of ``replicas`` pods labelled ``app=<name>`` (and ``labels``); its
    ``strategy`` defaults to the API's (a rolling update, 25% surge, 25% unavailable)."""
    pod_labels = {"app": name, **(labels or {})}
    metadata: dict[str, Any] = {"name": name, "labels": pod_labels}
    if namespace is not None:
        metadata["namespace"] = namespace
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": pod_labels}, "spec": dict(pod_spec)},
    }
    if strategy is not None:
        spec["strategy"] = dict(strategy)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def node_container(name: str, command: Sequence[str], **extra: Any) -> dict[str, Any]:
    """A container of the busybox test image, which is never pulled (it is imported into
    the node's Docker daemon); ``extra`` adds fields (probes, mounts, lifecycle)."""
    return {
        "name": name,
        "image": BUSYBOX,
        "imagePullPolicy": "Never",
        "command": list(command),
        **extra,
    }


def node_pod_spec(
    containers: Sequence[Mapping[str, Any]],
    *,
    volumes: Sequence[Mapping[str, Any]] = (),
    grace: int = 1,
) -> dict[str, Any]:
    """A pod spec that runs on the test node: it selects the node's label and tolerates its
    taint, and uses the host's network (there is no CNI); no ServiceAccount token."""
    key, value = NODE_LABEL
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "hostNetwork": True,
        "dnsPolicy": "Default",
        "terminationGracePeriodSeconds": grace,
        "nodeSelector": {key: value},
        "tolerations": [{**NODE_TAINT, "operator": "Equal"}],
        "containers": [dict(c) for c in containers],
    }
    if volumes:
        spec["volumes"] = [dict(v) for v in volumes]
    return spec


class Gate:
    """A directory of this host, mounted into node pods at ``MOUNT``, holding their
    readiness on cue (the node's kubelet runs on this host, so it sees the directory).

    A pod of ``GATED_COMMAND`` turns Ready only once the gate is open, and stays
    Ready when it closes again; the ``PRE_STOP`` hook of a pod being deleted waits
    until the gate is open (bounded by the pod's grace period). A new gate is open.
    """

    MOUNT = "/gate"
    READY_FILE = "/tmp/ready"
    GATED_COMMAND = (
        "sh",
        "-c",
        (
            'trap "exit 0" TERM; '
            f"until [ -f {MOUNT}/open ]; do sleep 0.2; done; "
            f"touch {READY_FILE}; sleep 3600 & wait"
        ),
    )
    READINESS: Mapping[str, Any] = {
        "exec": {"command": ["test", "-f", READY_FILE]},
        "periodSeconds": 1,
    }
    PRE_STOP: Mapping[str, Any] = {
        "exec": {"command": ["sh", "-c", f"until [ -f {MOUNT}/open ]; do sleep 0.2; done"]}
    }

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.open()

    def open(self) -> None:
        """New pods turn Ready; pods being deleted stop."""
        (self.path / "open").touch()

    def close(self) -> None:
        """New pods stay Running but not Ready; pods being deleted wait (and stay Ready)."""
        (self.path / "open").unlink(missing_ok=True)

    def volume(self) -> dict[str, Any]:
        """The pod volume of the gate (``hostPath``)."""
        return {"name": "gate", "hostPath": {"path": str(self.path), "type": "Directory"}}

    def container(self, name: str = "main") -> dict[str, Any]:
        """A busybox container whose readiness (exec probe) and preStop wait for the gate."""
        return node_container(
            name,
            self.GATED_COMMAND,
            readinessProbe=dict(self.READINESS),
            lifecycle={"preStop": dict(self.PRE_STOP)},
            volumeMounts=[{"name": "gate", "mountPath": self.MOUNT}],
        )


class Kube:
    """Helpers on one test namespace of a real API server.

    Its Deployments run a busybox container that nothing starts: the pods stay
    Pending unless ``kubelet`` (a ``FakeKubelet``) marks them Ready.
    """

    def __init__(
        self, api: client.ApiClient, namespace: str, kubelet: FakeKubelet | None = None
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.kubelet = kubelet
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.nodes: list[str] = []

    def pod_spec(self) -> dict[str, Any]:
        """The pod spec of this namespace's Deployments."""
        return {
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "main", "image": "busybox:stable"}],
        }

    def deployment(
        self,
        name: str,
        *,
        replicas: int = 2,
        labels: Mapping[str, str] | None = None,
        strategy: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a Deployment of ``replicas`` pods labelled ``app=<name>`` (and ``labels``)."""
        body: Any = deployment_body(
            name, self.pod_spec(), replicas=replicas, labels=labels, strategy=strategy
        )
        return _json(
            self.apps.create_namespaced_deployment(self.namespace, body, _preload_content=False)
        )

    def statefulset(self, name: str, *, replicas: int = 2) -> dict[str, Any]:
        """Create a StatefulSet of ``replicas`` pods labelled ``app=<name>``, started in
        parallel (a replacement pod takes the name of the one it replaces)."""
        body: Any = deployment_body(name, self.pod_spec(), replicas=replicas)
        body["kind"] = "StatefulSet"
        body["spec"] |= {"serviceName": name, "podManagementPolicy": "Parallel"}
        return _json(
            self.apps.create_namespaced_stateful_set(self.namespace, body, _preload_content=False)
        )

    def read(self, kind: str, name: str) -> dict[str, Any]:
        """A Deployment, StatefulSet, ReplicaSet, Pod or Node as JSON."""
        raw: Any
        if kind == "StatefulSet":
            raw = self.apps.read_namespaced_stateful_set(
                name, self.namespace, _preload_content=False
            )
        elif kind == "Pod":
            raw = self.core.read_namespaced_pod(name, self.namespace, _preload_content=False)
        elif kind == "Node":
            raw = self.core.read_node(name, _preload_content=False)
        elif kind == "ReplicaSet":
            raw = self.apps.read_namespaced_replica_set(
                name, self.namespace, _preload_content=False
            )
        else:
            raw = self.apps.read_namespaced_deployment(name, self.namespace, _preload_content=False)
        return _json(raw)

    def all_pods(self, selector: str | None = None) -> list[dict[str, Any]]:
        """The namespace's pods, those being deleted too, sorted by name."""
        kwargs: dict[str, Any] = {"label_selector": selector} if selector else {}
        items = _json(
            self.core.list_namespaced_pod(self.namespace, **kwargs, _preload_content=False)
        )
        return sorted(items["items"], key=lambda p: p["metadata"]["name"])

    def pods(self, selector: str | None = None) -> list[dict[str, Any]]:
        """The namespace's pods (not being deleted), sorted by name."""
        return [p for p in self.all_pods(selector) if not p["metadata"].get("deletionTimestamp")]

    def ready_pods(self, selector: str | None = None) -> list[str]:
        """Names of the pods (not being deleted) whose Ready condition is True."""
        return [p["metadata"]["name"] for p in self.pods(selector) if is_ready(p)]

    def replicasets(self, selector: str | None = None) -> list[dict[str, Any]]:
        """The namespace's ReplicaSets."""
        kwargs: dict[str, Any] = {"label_selector": selector} if selector else {}
        raw = self.apps.list_namespaced_replica_set(
            self.namespace, **kwargs, _preload_content=False
        )
        return list(_json(raw)["items"])

    def ready_deployment(self, name: str, *, replicas: int = 2, **kw: Any) -> list[str]:
        """A Deployment whose pods are all Ready; return the pod names."""
        self.deployment(name, replicas=replicas, **kw)
        self.wait_ready(name, replicas)
        return [p["metadata"]["name"] for p in self.pods(f"app={name}")]

    def wait_ready(self, name: str, replicas: int, *, timeout: float = 90) -> None:
        """Until the Deployment has rolled out ``replicas`` Ready replicas and no others."""

        def settled() -> bool:
            deployment = self.read("Deployment", name)
            status = deployment.get("status", {})
            return (
                # A status older than the spec says nothing about the spec.
                status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
                and status.get("updatedReplicas", 0) == replicas
                and status.get("readyReplicas", 0) == replicas
                and status.get("replicas", 0) == replicas
                and len(self.pods(f"app={name}")) == replicas
            )

        eventually(settled, f"Deployment {name} has {replicas} Ready replicas", timeout=timeout)

    def node(self, name: str, **labels: str) -> dict[str, Any]:
        """Create a Node (cluster-scoped; deleted after the test)."""
        labels = {"aftershock.test": "1", **labels}
        body = client.V1Node(metadata=client.V1ObjectMeta(name=name, labels=labels))
        self.nodes.append(name)
        return _json(self.core.create_node(body, _preload_content=False))

    def cleanup(self) -> None:
        """Delete the nodes this test made."""
        for name in self.nodes:
            with contextlib.suppress(ApiException):
                _json(self.core.delete_node(name, _preload_content=False))


class NodeKube(Kube):
    """Helpers on one test namespace whose Deployments run on the real node ``node``.

    Each pod runs ``gate.container()``: the kubelet reports it Ready (an exec
    readinessProbe, every second) once the gate is open.
    """

    def __init__(self, api: client.ApiClient, namespace: str, node: str, gate: Gate) -> None:
        super().__init__(api, namespace)
        self.node_name = node
        self.gate = gate

    def pod_spec(self) -> dict[str, Any]:
        """The pod spec of this namespace's Deployments: on the node, held by the gate."""
        return node_pod_spec([self.gate.container()], volumes=[self.gate.volume()])


@pytest.fixture
def kube_objects(kube_api: client.ApiClient, namespace: str) -> Iterator[Kube]:
    """Helpers on a fresh namespace whose pods nothing runs (they stay Pending)."""
    helper = Kube(kube_api, namespace)
    try:
        yield helper
    finally:
        helper.cleanup()


@pytest.fixture
def kube(kubeconfig: str, kube_api: client.ApiClient, namespace: str) -> Iterator[Kube]:
    """Helpers on a fresh namespace, with a fake kubelet marking its pods Ready."""
    kubelet = FakeKubelet(kubeconfig, namespace).start()
    helper = Kube(kube_api, namespace, kubelet)
    try:
        yield helper
    finally:
        kubelet.stop()
        helper.cleanup()


@pytest.fixture
def node_kube(
    kube_node: str, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> Iterator[NodeKube]:
    """Helpers on a fresh namespace whose Deployments' pods run on the real node, their
    readiness held by a gate (open at the start)."""
    gate = Gate(tmp_path / "gate")
    helper = NodeKube(kube_api, namespace, kube_node, gate)
    try:
        yield helper
    finally:
        gate.open()  # pods waiting in their preStop hook stop as the namespace goes
        helper.cleanup()
