"""Unreachable backends give a one-line error naming the target, exit 4, and leave nothing applied."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aftershock.journal.reading import outstanding
from tests.support.docker import free_port

DOC = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: bad-target}}
spec:
  targets:
    victim: {target}
  method:
    - {{name: first, fault: {fault}, target: victim, for: 2s}}
"""


def run(tmp_path: Path, target: str, fault: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "bad.yaml"
    path.write_text(DOC.format(target=target, fault=fault))
    env = {**os.environ, "AFTERSHOCK_HOME": str(tmp_path / "home")}
    return subprocess.run(
        [sys.executable, "-m", "aftershock", "run", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def check(tmp_path: Path, result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 4, result.stdout + result.stderr
    verdict = next(line for line in result.stdout.splitlines() if line.startswith("ERRORED"))
    assert "victim:" in verdict
    assert expected in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert outstanding(tmp_path / "home" / "journal") == []


def test_unreachable_toxiproxy(tmp_path: Path) -> None:
    port = free_port()
    result = run(
        tmp_path, f'{{toxiproxy: {{api: "http://127.0.0.1:{port}", proxy: pg}}}}', "toxiproxy.down"
    )
    check(tmp_path, result, "unreachable")


def test_dead_docker_daemon(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        '{docker: {names: [x], host: "unix:///tmp/aftershock-no-daemon.sock"}}',
        "docker.pause",
    )
    check(tmp_path, result, "Docker daemon")


@pytest.mark.docker
def test_missing_container(tmp_path: Path, docker_host: str) -> None:
    result = run(
        tmp_path,
        f'{{docker: {{names: [aftershock-no-such-box], host: "{docker_host}"}}}}',
        "docker.pause",
    )
    check(tmp_path, result, "no container named aftershock-no-such-box")
