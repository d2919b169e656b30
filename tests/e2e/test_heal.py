"""`aftershock heal` and `aftershock demo` for real: processes, containers, audit log, metrics."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import httpx
import pytest

from aftershock.observability.audit import read_audit
from tests.support.docker import ContainerFactory, free_port, http_ok, wait_for

pytestmark = pytest.mark.slow

PROCESS_POLICY = """\
apiVersion: aftershock.dev/v1alpha1
kind: HealingPolicy
metadata: {{name: web-healer}}
spec:
  targets:
    web: {{process: {{command: ["{python}", -m, aftershock.demo.service, --port, "{port}"], ready: "127.0.0.1:{port}"}}}}
  watch:
    health: {{http: {{url: "http://127.0.0.1:{port}/health", timeout: 300ms}}, every: 100ms, unhealthyAfter: 2, healthyAfter: 1, target: web}}
  playbooks:
    - name: revive
      when: {{unhealthy: health}}
      steps:
        - {{action: process.start, target: web}}
        - {{action: wait.healthy, with: {{probe: health, within: 10s}}, timeout: 15s}}
      limits: {{maxAttempts: 3, backoff: {{initial: 1s, max: 5s}}, cooldown: 1m}}
"""

DOCKER_POLICY = """\
apiVersion: aftershock.dev/v1alpha1
kind: HealingPolicy
metadata: {{name: box-healer}}
spec:
  targets:
    box: {{docker: {{names: ["{name}"], host: "{host}"}}}}
  watch:
    health: {{http: {{url: "http://127.0.0.1:{port}/", timeout: 300ms}}, every: 100ms, unhealthyAfter: 2, healthyAfter: 1, target: box}}
  playbooks:
    - name: revive-box
      when: {{unhealthy: health}}
      steps:
        - {{action: docker.unpause, target: box}}
        - {{action: docker.start, target: box}}
        - {{action: wait.healthy, with: {{probe: health, within: 10s}}, timeout: 15s}}
      limits: {{maxAttempts: 5, backoff: {{initial: 1s, max: 5s}}, cooldown: 1m}}
"""


def _start_daemon(
    tmp_path: Path, policy: str, env: dict[str, str]
) -> tuple[subprocess.Popen[str], str]:
    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    listen = f"127.0.0.1:{free_port()}"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "aftershock", "heal", str(path), "--listen", listen],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://{listen}"
    assert wait_for(lambda: _ready(base), timeout=30), (
        daemon.stderr.read() if daemon.poll() is not None else ""
    )
    return daemon, base


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(daemon: subprocess.Popen[str]) -> str:
    daemon.send_signal(signal.SIGTERM)
    _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    return err


def _closed_incidents(home: Path) -> list[dict[str, object]]:
    path = home / "audit" / "healer.jsonl"
    return [r for r in read_audit(path) if r["kind"] == "incident.closed"] if path.exists() else []


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "AFTERSHOCK_HOME": str(tmp_path / "home")}


def test_a_killed_process_is_restarted_and_audited(tmp_path: Path, env: dict[str, str]) -> None:
    port = free_port()
    daemon, base = _start_daemon(
        tmp_path, PROCESS_POLICY.format(python=sys.executable, port=port), env
    )
    try:
        pid = httpx.get(f"http://127.0.0.1:{port}/health").json()["pid"]
        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: bool(_closed_incidents(tmp_path / "home")), timeout=30)
        new_pid = httpx.get(f"http://127.0.0.1:{port}/health").json()["pid"]
        assert new_pid != pid
        health = httpx.get(f"{base}/healthz").json()
        assert health["status"] == "ok"
        metrics = httpx.get(f"{base}/metrics").text
        assert 'aftershock_healer_actions_total{action="process.start"' in metrics
        assert "aftershock_mttr_seconds_count" in metrics
        assert "aftershock_probe_latency_seconds_bucket" in metrics
    finally:
        _stop(daemon)
    audit = read_audit(tmp_path / "home" / "audit" / "healer.jsonl")
    kinds = [r["kind"] for r in audit]
    for kind in ("watch.transition", "healer.decision", "healer.action", "incident.closed"):
        assert kind in kinds
    steps = [(r["action"], r["outcome"]) for r in audit if r["kind"] == "healer.action"]
    assert steps[:2] == [("process.start", "ok"), ("wait.healthy", "ok")]
    # graceful shutdown stops the supervised process too
    assert not wait_for(lambda: http_ok(port), timeout=1)


def test_every_watch_state_is_exported_before_its_first_transition(
    tmp_path: Path, env: dict[str, str]
) -> None:
    port = free_port()
    daemon, base = _start_daemon(
        tmp_path, PROCESS_POLICY.format(python=sys.executable, port=port), env
    )
    try:
        health = httpx.get(f"{base}/healthz").json()
        (watch,) = health["healers"][0]["watches"]
        assert (watch["phase"], watch["last_transition"]) == ("healthy", None)
        metrics = httpx.get(f"{base}/metrics").text
        series = (
            'aftershock_watch_state{{policy="web-healer",probe="health",state="{}",target="web"}}'
        )
        assert series.format("healthy") + " 1.0" in metrics
        for state in ("suspect", "unhealthy", "remediating", "recovering", "escalated"):
            assert series.format(state) + " 0.0" in metrics
    finally:
        _stop(daemon)


@pytest.mark.docker
def test_a_killed_container_is_restarted_within_detection_plus_start_time(
    tmp_path: Path,
    env: dict[str, str],
    container_factory: ContainerFactory,
    docker_host: str,
    docker_client: docker.DockerClient,
) -> None:
    port = free_port()
    box = container_factory("box", port=port)
    # how long does this container take to start and answer, on this machine, now?
    box.stop(timeout=0)
    t0 = time.monotonic()
    box.start()
    assert wait_for(lambda: http_ok(port), timeout=15, interval=0.01)
    start_time = time.monotonic() - t0
    env = {**env, "DOCKER_HOST": docker_host}
    daemon, base = _start_daemon(
        tmp_path, DOCKER_POLICY.format(name=box.name, host=docker_host, port=port), env
    )
    try:
        box.kill()
        assert wait_for(lambda: len(_closed_incidents(tmp_path / "home")) >= 1, timeout=30)
        box.reload()
        assert box.status == "running"
        incident = _closed_incidents(tmp_path / "home")[0]
        detection = 2 * 0.1  # unhealthyAfter x every
        assert float(incident["mttr_seconds"]) <= detection + start_time + 0.25, (
            incident,
            start_time,
        )  # type: ignore[arg-type]
        box.pause()
        assert wait_for(lambda: len(_closed_incidents(tmp_path / "home")) >= 2, timeout=30)
        box.reload()
        assert box.status == "running"
        assert http_ok(port)
        metrics = httpx.get(f"{base}/metrics").text
        assert 'action="docker.unpause"' in metrics
    finally:
        _stop(daemon)
    actions = [
        r["action"]
        for r in read_audit(tmp_path / "home" / "audit" / "healer.jsonl")
        if r["kind"] == "healer.action"
    ]
    assert "docker.start" in actions
    assert "docker.unpause" in actions


def test_the_demo_runs_the_closed_loop_in_under_a_minute(
    tmp_path: Path, env: dict[str, str]
) -> None:
    t0 = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "aftershock", "demo", "--dir", str(tmp_path / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    took = time.monotonic() - t0
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED" in result.stdout
    assert "MTTR" in result.stdout
    assert "restart-service" in result.stdout
    assert (tmp_path / "demo" / "report" / "report.html").is_file()
    assert took < 60
    journal = next((tmp_path / "home" / "journal").glob("*.jsonl"))
    events = [json.loads(line)["event"] for line in journal.read_text().splitlines()]
    assert "healing" in events
    assert events.count("fault.intent") == events.count("fault.reverted") == 2
