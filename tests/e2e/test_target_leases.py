"""Target leases from the CLI: real ``aftershock run`` and ``aftershock heal`` processes on one host.

Every experiment here targets a supervised process identified by its argv (a
sleeping Python), so each run starts a copy of its own and nothing needs Docker
or a port: the runs overlap only through their target leases under
``$AFTERSHOCK_HOME/leases``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.docker import free_port, wait_for

pytestmark = pytest.mark.slow

SLEEPER = [
    sys.executable,
    "-c",
    "import os, time\nparent = os.getppid()\nwhile os.getppid() == parent: time.sleep(0.2)",
]
"""The shared target's argv (its identity, since it has no ready address). It idles until
the process that started it is gone, so a killed run leaves it behind only while frozen."""

EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: {name}}}
spec:
  shareTargets: {share}
  targets:
    svc: {{process: {{command: {argv}}}}}
  method:
    - {{name: freeze, fault: process.stop, target: svc, for: {freeze}}}
"""

POLICY = """\
apiVersion: aftershock.dev/v1alpha1
kind: HealingPolicy
metadata: {{name: sleeper-healer}}
spec:
  targets:
    svc: {{process: {{command: {argv}}}}}
  watch:
    alive: {{command: {{command: [{true}]}}, every: 500ms, target: svc}}
  playbooks:
    - name: restart
      when: {{unhealthy: alive}}
      steps:
        - {{action: process.start, target: svc}}
"""


def experiment(tmp_path: Path, name: str, *, share: bool = False, freeze: str = "8s") -> Path:
    path = tmp_path / f"{name}.yaml"
    argv = json.dumps(SLEEPER)
    path.write_text(
        EXPERIMENT.format(name=name, share=str(share).lower(), argv=argv, freeze=freeze)
    )
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return {**os.environ, "AFTERSHOCK_HOME": str(home)}


@pytest.fixture
def spawn(env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``aftershock <args>``; whatever still runs after the test is stopped.

    SIGTERM first: a run then reverts its faults and stops the process it supervises.
    """
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-m", "aftershock", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(child)
        return child

    yield start
    for child in started:
        if child.poll() is None:
            child.terminate()
        try:
            child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate(timeout=30)


def aftershock(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aftershock", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def lease_files(home: Path) -> list[Path]:
    folder = home / "leases"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def first_lease(home: Path, run: subprocess.Popen[str]) -> str:
    """The run id of the first lease file to appear (the run's), once it is there."""
    found = wait_for(lambda: bool(lease_files(home)) or run.poll() is not None, timeout=30)
    assert found and run.poll() is None, run.communicate(timeout=30)
    (lease,) = lease_files(home)
    return lease.stem


def finished(run: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = run.communicate(timeout=60)
    assert "Traceback" not in err, err
    return run.returncode, out + err


def test_a_second_run_on_a_leased_target_is_refused_naming_the_holder(
    tmp_path: Path, home: Path, env: dict[str, str], spawn: Any
) -> None:
    first = spawn("run", str(experiment(tmp_path, "first")))
    holder = first_lease(home, first)
    second = aftershock(env, "run", str(experiment(tmp_path, "second")))
    assert second.returncode == 3, second.stdout + second.stderr
    assert f"refused: target 'svc' is leased by run {holder}" in second.stdout
    assert "experiment 'first'" in second.stdout
    assert first.poll() is None, "the holder ended before the refusal: the test proved nothing"
    # The refused run touched nothing: no journal of its own, the holder's lease alone.
    assert [p.stem for p in (home / "journal").glob("*.jsonl")] == [holder]
    assert [p.stem for p in lease_files(home)] == [holder]
    code, output = finished(first)
    assert code == 0, output
    assert "PASSED first" in output
    assert holder in output
    assert lease_files(home) == []


def test_two_runs_that_both_share_targets_run_together(
    tmp_path: Path, home: Path, spawn: Any
) -> None:
    first = spawn("run", str(experiment(tmp_path, "first", share=True)))
    holder = first_lease(home, first)
    second = spawn("run", str(experiment(tmp_path, "second", share=True)))
    # Both hold their claims at once: the second was admitted while the first ran.
    assert wait_for(lambda: len(lease_files(home)) == 2 or second.poll() is not None, timeout=30)
    assert len(lease_files(home)) == 2, finished(second)
    assert first.poll() is None
    for run, name in ((second, "second"), (first, "first")):
        code, output = finished(run)
        assert code == 0, output
        assert f"PASSED {name}" in output
        assert "refused" not in output
    journals = sorted(p.stem for p in (home / "journal").glob("*.jsonl"))
    assert len(journals) == 2
    assert holder in journals
    assert lease_files(home) == []


def _standing_back(base: str) -> dict[str, str]:
    health = httpx.get(f"{base}/healthz", timeout=2).json()
    (healer,) = health["healers"]
    back: dict[str, str] = healer["standing_back"]
    return back


def test_a_healer_daemon_stands_back_while_a_run_holds_its_target(
    tmp_path: Path, home: Path, spawn: Any
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(argv=json.dumps(SLEEPER), true=json.dumps("/bin/true")))
    listen = f"127.0.0.1:{free_port()}"
    daemon = spawn("heal", str(policy), "--listen", listen)
    base = f"http://{listen}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return daemon.poll() is not None

    assert wait_for(ready, timeout=30) and daemon.poll() is None, daemon.communicate(timeout=30)
    assert _standing_back(base) == {}

    run = spawn("run", str(experiment(tmp_path, "frozen", freeze="6s")))
    holder = first_lease(home, run)
    assert wait_for(lambda: "svc" in _standing_back(base), timeout=10), _standing_back(base)
    why = _standing_back(base)["svc"]
    assert f"target leased by run {holder}" in why
    assert "experiment 'frozen'" in why
    assert run.poll() is None, "the run ended before the daemon was seen standing back"

    code, output = finished(run)
    assert code == 0, output
    assert wait_for(lambda: _standing_back(base) == {}, timeout=10), _standing_back(base)
    daemon.send_signal(signal.SIGTERM)
    _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
