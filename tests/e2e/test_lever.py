"""The kill switch from the CLI: engaging it mid-run rolls back within 1 s; new runs are refused."""

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from tests.support.docker import free_port

DOC = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: lever}}
spec:
  targets:
    svc: {{process: {{command: ["{python}", -m, aftershock.demo.service, --port, "{port}"], ready: "127.0.0.1:{port}"}}}}
  method:
    - {{name: freeze, fault: process.stop, target: svc, for: 60s}}
"""


def records(home: Path) -> list[dict[str, object]]:
    files = list((home / "journal").glob("*.jsonl")) if (home / "journal").exists() else []
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]


def test_engaging_the_lever_aborts_a_run_and_refuses_new_ones(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "AFTERSHOCK_HOME": str(home)}
    exp = tmp_path / "lever.yaml"
    exp.write_text(DOC.format(python=sys.executable, port=free_port()))
    run = subprocess.Popen(
        [sys.executable, "-m", "aftershock", "run", str(exp)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
        r["event"] == "fault.applied" for r in records(home)
    ):
        time.sleep(0.05)
    engage = subprocess.run(
        [sys.executable, "-m", "aftershock", "lever", "engage", "--reason", "test"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert engage.returncode == 0
    assert engage.stdout.strip() == "engaged"
    engaged_at = datetime.fromtimestamp((home / "lever").stat().st_mtime).astimezone()
    out, err = run.communicate(timeout=60)
    assert run.returncode == 3, out + err
    assert "kill switch engaged" in out
    journal = records(home)
    reverted = next(r for r in journal if r["event"] == "fault.reverted")
    took = (datetime.fromisoformat(str(reverted["ts"])) - engaged_at).total_seconds()
    assert took <= 1.0, took
    assert len([r for r in journal if r["event"] == "fault.intent"]) == len(
        [r for r in journal if r["event"] == "fault.reverted"]
    )
    refused = subprocess.run(
        [sys.executable, "-m", "aftershock", "run", str(exp)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 3
    assert "kill switch" in refused.stdout
    release = subprocess.run(
        [sys.executable, "-m", "aftershock", "lever", "release"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert release.stdout.strip() == "released"
    status = subprocess.run(
        [sys.executable, "-m", "aftershock", "lever", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert status.stdout.strip() == "released"
