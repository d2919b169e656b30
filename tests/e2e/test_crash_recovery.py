"""A run SIGKILLed at random points leaves nothing behind once `aftershock recover` ran.

Real parts only: a standalone `aftershock proxy` server, a container on the
private dockerd, a supervised process, and the CLI in subprocesses.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import httpx
import pytest

from aftershock.journal.reading import outstanding
from tests.support.docker import ContainerFactory, free_port, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: crash-me}}
spec:
  targets:
    db: {{toxiproxy: {{api: "http://127.0.0.1:{api}", proxy: crash}}}}
    box: {{docker: {{names: ["{box}"], host: "{docker_host}"}}}}
    proc: {{process: {{command: [sleep, "{marker}"]}}}}
  method:
    - {{name: slow, fault: toxiproxy.latency, target: db, with: {{latency: 500ms}}, for: 60s}}
    - {{name: freeze-box, fault: docker.pause, target: box, for: 60s}}
    - {{name: freeze-proc, fault: process.stop, target: proc, for: 60s}}
"""


def _stat_state(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[0]


def _marked(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if marker.encode() in argv:
                pids.append(int(entry.name))
    return pids


def test_sigkill_at_random_points_then_recover(
    tmp_path: Path,
    container_factory: ContainerFactory,
    docker_host: str,
    docker_client: docker.DockerClient,
) -> None:
    env = {**os.environ, "AFTERSHOCK_HOME": str(tmp_path / "home"), "DOCKER_HOST": docker_host}
    env.pop("AFTERSHOCK_ALLOW_CONTAINERS", None)
    api = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aftershock", "proxy", "--listen", f"127.0.0.1:{api}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    marker = f"{random.randrange(10**6, 10**7)}"
    try:
        base = f"http://127.0.0.1:{api}"
        assert wait_for(lambda: _answers(base), timeout=15)
        httpx.post(
            f"{base}/proxies",
            json={"name": "crash", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"},
        ).raise_for_status()
        box = container_factory("box")
        exp = tmp_path / "crash.yaml"
        exp.write_text(
            EXPERIMENT.format(api=api, box=box.name, docker_host=docker_host, marker=marker)
        )
        rnd = random.Random(20261126)
        applied_seen = 0
        for _ in range(20):
            child = subprocess.Popen(
                [sys.executable, "-m", "aftershock", "run", str(exp)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rnd.uniform(0.3, 3.0))
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
            journal_dir = tmp_path / "home" / "journal"
            pending = outstanding(journal_dir) if journal_dir.exists() else []
            applied_seen += sum(1 for p in pending if p.state == "applied")
            result = subprocess.run(
                [sys.executable, "-m", "aftershock", "recover"],
                check=False,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert "Traceback" not in result.stderr
            assert httpx.get(f"{base}/proxies/crash/toxics").json() == []
            box.reload()
            assert box.status == "running", box.status
            assert not [p for p in _marked(marker) if _stat_state(p) == "T"]
            for pid in _marked(marker):
                os.kill(pid, signal.SIGKILL)
            if journal_dir.exists():
                assert outstanding(journal_dir) == []
        # The random points must have caught faults in effect, not only start-up.
        assert applied_seen >= 5
        records = [
            json.loads(line)
            for path in (tmp_path / "home" / "journal").glob("*.jsonl")
            for line in path.read_text().splitlines()
            if line.strip()
        ]
        intents = {r["key"] for r in records if r["event"] == "fault.intent"}
        reverted = {r["key"] for r in records if r["event"] == "fault.reverted"}
        assert intents
        assert intents <= reverted
    finally:
        server.terminate()
        server.wait(timeout=10)
        for pid in _marked(marker):
            os.kill(pid, signal.SIGKILL)


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/version", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False
