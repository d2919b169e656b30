"""The Grafana dashboard queries only metrics that aftershock really exports.

A real ``aftershock heal`` watches a small HTTP server on 127.0.0.1: one watch
is broken and healed by an ``http.call`` step (actions, attempts, decisions and
MTTR get samples), another cannot be healed: its circuit breaker opens and it
escalates. A real
``aftershock operator`` runs against the Kubernetes API server and rejects an
invalid Experiment. Every metric name in every PromQL expression of
``deploy/grafana/aftershock.json`` must be among the names their live
``/metrics`` expose, and every family they export must be on the dashboard.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aftershock.model.schema import GROUP, VERSION, crd_manifests
from tests.support.docker import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "aftershock.json"
OPERATOR_PREFIX = "aftershock_operator_"

# ------------------------------------------------------------------ PromQL and exposition

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_LABEL_LISTS = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset(["bool", "offset", "and", "or", "unless", "inf", "nan", "atan2"])


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads.

    String literals, label matchers (``{...}``), ranges (``[5m]``) and label
    lists (``by (le, probe)``) are dropped first; what remains are functions
    and aggregations (an identifier followed by ``(``), keywords, numbers and
    metric names.
    """
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _LABEL_LISTS.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        word = match.group(0)
        before = text[match.start() - 1] if match.start() else " "
        after = text[match.end() :].lstrip()[:1]
        if after == "(" or word.lower() in _KEYWORDS or before.isdigit() or before == ".":
            continue
        names.add(word)
    return names


def _label_values_metric(query: str) -> set[str]:
    """The metric of a Grafana ``label_values(metric, label)`` variable query."""
    match = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*[A-Za-z_]\w*\s*\)\s*", query)
    return metric_names(match.group(1)) if match else set()


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target."""
    return [
        (f"panel {panel['title']!r} {target['refId']}", target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", ())
    ]


def used_metrics(dashboard: dict[str, Any]) -> dict[str, set[str]]:
    """Metric name → where the dashboard reads it (panels and variable queries)."""
    used: dict[str, set[str]] = {}
    for where, expr in dashboard_queries(dashboard):
        for name in metric_names(expr):
            used.setdefault(name, set()).add(where)
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            for name in _label_values_metric(variable["query"]["query"]):
                used.setdefault(name, set()).add(f"variable ${variable['name']}")
    return used


def sample_names(exposition: str) -> set[str]:
    """The names on the sample lines of a Prometheus text exposition."""
    return {
        match.group(0)
        for line in exposition.splitlines()
        if line and not line.startswith("#") and (match := _IDENT.match(line))
    }


def declared_names(exposition: str) -> dict[str, set[str]]:
    """Family → the sample names its ``# TYPE`` line promises (histograms: three)."""
    families: dict[str, set[str]] = {}
    for line in exposition.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[:2] == ["#", "TYPE"]:
            name, kind = parts[2], parts[3]
            suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
            families[name] = {name + suffix for suffix in suffixes}
    return families


def _created(family: str) -> bool:
    """``x_created``: the creation time prometheus_client adds beside each counter and histogram."""
    return family.endswith("_created")


def _load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


# ------------------------------------------------------------------ the dashboard alone


def test_the_tokenizer_finds_metric_names_only() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, probe) (rate(a_seconds_bucket{ok="true", '
        'policy=~"$policy"}[$__rate_interval]))) / ignoring (le) b_total offset 5m '
        "or on (x) c * 1e3 > bool 0.5 unless max without (instance) (d:rule)"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c", "d:rule"}
    assert metric_names('sum(x{name="rate(y)"})') == {"x"}
    assert _label_values_metric("label_values(aftershock_watch_state, policy)") == {
        "aftershock_watch_state"
    }


def test_the_dashboard_is_an_importable_grafana_dashboard() -> None:
    dashboard = _load()
    assert dashboard["uid"] == "aftershock"
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    source = {"type": "prometheus", "uid": "${datasource}"}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 10
    for panel in panels:
        where = panel["title"]
        assert panel["datasource"] == source, where
        assert panel["targets"], where
        box = panel["gridPos"]
        assert box["x"] >= 0 and box["x"] + box["w"] <= 24 and box["h"] > 0, where
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), where
        for target in panel["targets"]:
            assert target["datasource"] == source, where
            expr = target["expr"]
            for opening, closing in ("()", "{}", "[]"):
                assert expr.count(opening) == expr.count(closing), (where, expr)
            assert metric_names(expr), (where, expr)


# ------------------------------------------------------------------ aftershock heal


class _Service(ThreadingHTTPServer):
    healthy = True


class _Handler(BaseHTTPRequestHandler):
    server: _Service

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200 if self.server.healthy else 503)
        else:  # /broken: never healthy
            self._answer(503)

    def do_POST(self) -> None:
        self.server.healthy = True
        self._answer(200)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the daemon's log tells what happened."""


@pytest.fixture
def service() -> Iterator[_Service]:
    server = _Service(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


POLICY = """\
apiVersion: aftershock.dev/v1alpha1
kind: HealingPolicy
metadata: {{name: dashboard}}
spec:
  watch:
    web: {{http: {{url: "http://127.0.0.1:{port}/health", timeout: 300ms}}, every: 100ms, unhealthyAfter: 2, healthyAfter: 1}}
    broken: {{http: {{url: "http://127.0.0.1:{port}/broken", timeout: 300ms}}, every: 100ms, unhealthyAfter: 2, healthyAfter: 1}}
  playbooks:
    - name: heal-web
      when: {{unhealthy: web}}
      steps:
        - {{action: http.call, with: {{url: "http://127.0.0.1:{port}/heal"}}}}
        - {{action: wait.healthy, with: {{probe: web, within: 5s}}, timeout: 10s}}
      limits: {{maxAttempts: 3, backoff: {{initial: 1s, max: 5s}}, cooldown: 1m}}
    - name: give-up
      when: {{unhealthy: broken}}
      steps:
        - {{action: command, with: {{command: ["{python}", -c, "raise SystemExit(3)"]}}}}
      limits: {{maxAttempts: 5, backoff: {{initial: 100ms, max: 200ms}}, cooldown: 1m}}
  breaker: {{failures: 2, reset: 30m}}
"""


def _get(url: str) -> str | None:
    try:
        response = httpx.get(url, timeout=1)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


def _stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err


@pytest.fixture
def heal_metrics(tmp_path: Path, service: _Service) -> str:
    """The live ``/metrics`` of ``aftershock heal`` after one healed and one escalated watch."""
    port = service.server_address[1]
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(port=port, python=sys.executable), encoding="utf-8")
    listen = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "AFTERSHOCK_HOME": str(tmp_path / "home")}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "aftershock", "heal", str(policy), "--listen", listen],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://{listen}"
    try:
        assert wait_for(lambda: _get(f"{base}/readyz") is not None, timeout=30), _stop(daemon)
        service.healthy = False

        def healed_and_escalated() -> bool:
            text = _get(f"{base}/metrics") or ""
            return (
                "aftershock_mttr_seconds_count{" in text and "aftershock_escalations_total{" in text
            )

        assert wait_for(healed_and_escalated, timeout=30), _stop(daemon)
        assert service.healthy
        metrics = _get(f"{base}/metrics")
        assert metrics is not None
    finally:
        err = _stop(daemon)
    assert daemon.returncode == 0, err
    return metrics


@pytest.mark.slow
def test_every_healer_metric_on_the_dashboard_is_scraped_from_heal(heal_metrics: str) -> None:
    used = used_metrics(_load())
    healer = {name: where for name, where in used.items() if not name.startswith(OPERATOR_PREFIX)}
    scraped = sample_names(heal_metrics)
    missing = {name: sorted(where) for name, where in healer.items() if name not in scraped}
    assert not missing, f"not in aftershock heal's /metrics: {missing}"
    # Every family heal exports is on the dashboard.
    families = declared_names(heal_metrics)
    unused = [f for f, names in families.items() if not names & set(used) and not _created(f)]
    assert not unused, f"exported by aftershock heal but on no panel: {unused}"
    # The scenario reached every outcome the panels are about.
    for series in (
        'aftershock_healer_actions_total{action="http.call",outcome="ok",playbook="heal-web"',
        'aftershock_remediations_total{outcome="restored",playbook="heal-web"',
        'aftershock_remediations_total{outcome="failed",playbook="give-up"',
        'aftershock_escalations_total{policy="dashboard",reason="breaker-open"}',
        'aftershock_healer_decisions_total{decision="act",policy="dashboard"}',
        'aftershock_watch_state{policy="dashboard",probe="broken",state="escalated",target=""} 1.0',
        'aftershock_watch_state{policy="dashboard",probe="web",state="healthy",target=""} 1.0',
    ):
        assert series in heal_metrics, series


# ------------------------------------------------------------------ aftershock operator


def _install_crds(api: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api)
    for manifest in crd_manifests():
        try:
            ext.create_custom_resource_definition(manifest)
        except ApiException as exc:
            if exc.status != 409:  # already installed
                raise

    def established() -> bool:
        for manifest in crd_manifests():
            crd = ext.read_custom_resource_definition(manifest["metadata"]["name"])
            conditions = {c.type: c.status for c in (crd.status.conditions or [])}
            if conditions.get("Established") != "True":
                return False
        return True

    assert wait_for(established, timeout=30), "the CRDs were not established"


def _invalid_experiment(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": "nowhere", "namespace": namespace},
        "spec": {
            "method": [
                {
                    "name": "slow",
                    "fault": "toxiproxy.latency",
                    "target": "db",
                    "with": {"latency": "300ms"},
                }
            ]
        },
    }


@pytest.fixture
def operator_metrics(
    kubeconfig: str, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> str:
    """The live ``/metrics`` of ``aftershock operator`` leading and rejecting a resource."""
    _install_crds(kube_api)
    listen = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "AFTERSHOCK_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "aftershock", "operator", "--namespace", namespace]
    command += ["--listen", listen, "--kubeconfig", kubeconfig, "--identity", "dashboard"]
    operator = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    url = f"http://{listen}/metrics"
    custom = client.CustomObjectsApi(kube_api)
    try:

        def leading() -> bool:
            return "aftershock_operator_leader 1.0" in (_get(url) or "")

        assert wait_for(leading, timeout=60), _stop(operator)
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "experiments", _invalid_experiment(namespace)
        )
        rejected = 'aftershock_operator_invalid_resources_total{kind="Experiment"} 1.0'
        assert wait_for(lambda: rejected in (_get(url) or ""), timeout=60), _stop(operator)
        metrics = _get(url)
        assert metrics is not None
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", "nowhere")

        def gone() -> bool:
            try:
                custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, "experiments", "nowhere"
                )
            except ApiException as exc:
                return exc.status == 404
            return False

        wait_for(gone, timeout=30)
    finally:
        err = _stop(operator)
        # A finalizer left behind would hold the namespace in Terminating.
        with contextlib.suppress(ApiException):
            custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                "experiments",
                "nowhere",
                {"metadata": {"finalizers": None}},
            )
    assert operator.returncode == 0, err
    return metrics


@pytest.mark.kube
@pytest.mark.slow
def test_every_operator_metric_on_the_dashboard_is_exported_by_the_operator(
    operator_metrics: str,
) -> None:
    used = used_metrics(_load())
    families = declared_names(operator_metrics)
    exported = sample_names(operator_metrics).union(*families.values())
    missing = {name: sorted(where) for name, where in used.items() if name not in exported}
    assert not missing, f"not in aftershock operator's /metrics: {missing}"
    ours = {
        f: names
        for f, names in families.items()
        if f.startswith(OPERATOR_PREFIX) and not _created(f)
    }
    assert ours, "the operator exports no metrics of its own"
    unused = [f for f, names in ours.items() if not names & set(used)]
    assert not unused, f"exported by aftershock operator but on no panel: {unused}"
    for name in ("aftershock_operator_leader", "aftershock_operator_invalid_resources_total"):
        assert name in sample_names(operator_metrics), name
