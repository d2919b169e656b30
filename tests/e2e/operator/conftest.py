"""Fixtures for the operator e2e tests: the real API server, deploy/ installed, the SA token.

The operator under test authenticates with the ``aftershock-operator``
ServiceAccount's own token (a kubeconfig written here), never the admin token,
so a rule missing from ``deploy/rbac.yaml`` makes these tests fail. The admin
kubeconfig only installs ``deploy/`` (``kubectl apply -k``) and plays the user.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client import ApiException

from aftershock.operator import run_operator
from aftershock.operator.handlers import OperatorState
from aftershock.settings import Settings
from tests.e2e.operator.helpers import (
    DEPLOY,
    GROUP,
    KUBE_HOME,
    NAMESPACE,
    SA,
    VERSION,
    run_kubectl,
    unavailable,
    wait_for,
)


@pytest.fixture(scope="session")
def admin_kubeconfig(kubeconfig: str) -> Path:
    """The admin kubeconfig (``tests.support.kube``: skips, or fails in CI, without a server)."""
    return Path(kubeconfig)


@pytest.fixture(scope="session")
def kubectl() -> str:
    """A kubectl binary (built from the cached source tree by the kube script's toolchain)."""
    found = shutil.which("kubectl") or str(KUBE_HOME / "bin" / "kubectl")
    if not Path(found).is_file():
        unavailable("no kubectl binary (build it: see tests/e2e/operator/README note)")
    return found


@pytest.fixture(scope="session")
def admin(kube_api: Any) -> Any:
    """An admin ApiClient (plays the user: installs deploy/, creates resources)."""
    return kube_api


@pytest.fixture(scope="session")
def installed(kubectl: str, admin_kubeconfig: Path, admin: Any) -> None:
    """``kubectl apply -k deploy/`` and wait until the CRDs are established."""
    run_kubectl(kubectl, admin_kubeconfig, "apply", "-k", str(DEPLOY))
    ext = kubernetes.client.ApiextensionsV1Api(admin)

    def established() -> bool:
        for plural in ("experiments", "healingpolicies", "experimentruns"):
            crd = ext.read_custom_resource_definition(f"{plural}.{GROUP}")
            conditions = {c.type: c.status for c in (crd.status.conditions or [])}
            if conditions.get("Established") != "True":
                return False
        return True

    wait_for(established, 30, "the CRDs to be established")


def token_kubeconfig(admin: Any, account: str, path: Path) -> Path:
    """Write a kubeconfig with a ServiceAccount's own token (v1.20: its token Secret)."""
    core = kubernetes.client.CoreV1Api(admin)

    def token_secret() -> Any:
        sa = core.read_namespaced_service_account(account, NAMESPACE)
        for ref in sa.secrets or []:
            secret = core.read_namespaced_secret(ref.name, NAMESPACE)
            data = secret.data or {}
            if secret.type == "kubernetes.io/service-account-token" and data.get("token"):
                return secret
        return None

    secret = wait_for(token_secret, 60, f"the token controller to issue {account}'s token")
    token = base64.b64decode(secret.data["token"]).decode()
    ca = secret.data["ca.crt"]
    server = admin.configuration.host
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {{server: "{server}", certificate-authority-data: "{ca}"}}
users:
- name: {account}
  user: {{token: "{token}"}}
contexts:
- name: test
  context: {{cluster: test, user: {account}, namespace: {NAMESPACE}}}
current-context: test
"""
    )
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def sa_kubeconfig(installed: None, admin: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig with the operator ServiceAccount's own token."""
    return token_kubeconfig(admin, SA, tmp_path_factory.mktemp("sa") / "kubeconfig")


@pytest.fixture(scope="session")
def short_rbac_kubeconfig(
    installed: None, admin: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A ServiceAccount bound to deploy/'s Role minus one rule (``experiments/status``)."""
    rbac = DEPLOY / "rbac.yaml"
    role = next(d for d in yaml.safe_load_all(rbac.read_text()) if d["kind"] == "Role")
    role["metadata"]["name"] = "aftershock-short"
    role["rules"] = [r for r in role["rules"] if "experiments/status" not in r["resources"]]
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "aftershock-short", "namespace": NAMESPACE},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "aftershock-short",
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": "aftershock-short", "namespace": NAMESPACE}
        ],
    }
    core = kubernetes.client.CoreV1Api(admin)
    authz = kubernetes.client.RbacAuthorizationV1Api(admin)
    with contextlib.suppress(ApiException):
        core.create_namespaced_service_account(
            NAMESPACE, {"metadata": {"name": "aftershock-short"}}
        )
    with contextlib.suppress(ApiException):
        authz.create_namespaced_role(NAMESPACE, role)
    with contextlib.suppress(ApiException):
        authz.create_namespaced_role_binding(NAMESPACE, binding)
    yield token_kubeconfig(
        admin, "aftershock-short", tmp_path_factory.mktemp("short") / "kubeconfig"
    )
    with contextlib.suppress(ApiException):
        authz.delete_namespaced_role_binding("aftershock-short", NAMESPACE)
    with contextlib.suppress(ApiException):
        authz.delete_namespaced_role("aftershock-short", NAMESPACE)
    with contextlib.suppress(ApiException):
        core.delete_namespaced_service_account("aftershock-short", NAMESPACE)


def _clean(admin: Any) -> None:
    custom = kubernetes.client.CustomObjectsApi(admin)
    leases = kubernetes.client.CoordinationV1Api(admin)
    for lease in leases.list_namespaced_lease(
        NAMESPACE, label_selector="aftershock.dev/role in (target-lease, member)"
    ).items:
        with contextlib.suppress(ApiException):
            leases.delete_namespaced_lease(lease.metadata.name, NAMESPACE)
    for plural in ("experiments", "healingpolicies", "experimentruns"):
        for item in custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural)[
            "items"
        ]:
            name = item["metadata"]["name"]
            with contextlib.suppress(ApiException):
                custom.patch_namespaced_custom_object(
                    GROUP, VERSION, NAMESPACE, plural, name, {"metadata": {"finalizers": None}}
                )
            with contextlib.suppress(ApiException):
                custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, name)
    with contextlib.suppress(ApiException):
        kubernetes.client.CoordinationV1Api(admin).delete_namespaced_lease(
            "aftershock-operator", NAMESPACE
        )
    with contextlib.suppress(ApiException):
        kubernetes.client.CoreV1Api(admin).delete_namespaced_config_map(
            "aftershock-lever", NAMESPACE
        )


@pytest.fixture
def clean_namespace(installed: None, admin: Any) -> Iterator[None]:
    """No Experiments, HealingPolicies, lease or lever left from an earlier test."""
    _clean(admin)
    yield
    _clean(admin)


class Replica:
    """One operator running in-process, as a pod would run it."""

    def __init__(self, identity: str, home: Path, kubeconfig: Path) -> None:
        self.identity = identity
        self.settings = Settings(home=home)
        self.kubeconfig = kubeconfig
        self.stop = asyncio.Event()
        self.state: OperatorState | None = None
        self.runs: list[tuple[str, str]] = []
        self.task: asyncio.Task[None] | None = None
        self.address: tuple[str, int] | None = None
        """Where its health server (``/metrics``) listens, once it has started."""

    def _keep(self, state: OperatorState) -> None:
        self.state = state
        state.on_run = lambda key, run_id: self.runs.append((key, run_id))

    def _listening(self, address: tuple[str, int] | None) -> None:
        self.address = address

    def start(self) -> None:
        self.task = asyncio.create_task(
            run_operator(
                namespace=NAMESPACE,
                settings=self.settings,
                identity=self.identity,
                stop=self.stop,
                kubeconfig=self.kubeconfig,
                health_listen=("127.0.0.1", 0),
                lease_duration=6.0,
                renew_every=1.0,
                on_state=self._keep,
                on_ready=self._listening,
            )
        )

    @property
    def leading(self) -> bool:
        return self.state is not None and self.state.is_leader()

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, timeout=60)


@pytest.fixture
async def replicas(
    clean_namespace: None, sa_kubeconfig: Path, tmp_path: Path
) -> AsyncIterator[Callable[..., Replica]]:
    """Start operator replicas with the SA token, each with a ``$AFTERSHOCK_HOME`` of its own
    (a pod's emptyDir): whatever they share is in the Kubernetes API."""
    started: list[Replica] = []

    def start(identity: str, kubeconfig: Path | None = None) -> Replica:
        replica = Replica(identity, tmp_path / identity, kubeconfig or sa_kubeconfig)
        replica.start()
        started.append(replica)
        return replica

    yield start
    for replica in started:
        await replica.close()
