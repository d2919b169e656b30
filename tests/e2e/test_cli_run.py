"""`aftershock run` as a user runs it, against a real supervised process and the embedded proxy."""

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.docker import free_port

pytestmark = pytest.mark.slow

EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: e2e-run}}
spec:
  targets:
    svc: {{process: {{command: ["{python}", -m, http.server, "{svc}", --bind, 127.0.0.1], ready: "127.0.0.1:{svc}"}}}}
    front: {{toxiproxy: {{api: embedded, proxy: front, listen: "127.0.0.1:{front}", upstream: "127.0.0.1:{svc}"}}}}
  probes:
    web: {{http: {{url: "http://127.0.0.1:{front}/", timeout: 1s}}, every: 200ms}}
  slo:
    avail: {{probe: web, objective: 99%, latency: 150ms, window: 7d}}
  steadyState:
    - {{probe: web, over: 1s, expect: {{successRatio: ">= 0.9", p95: "< 100ms"}}}}
  method:
    - {{name: slow, fault: toxiproxy.latency, target: front, with: {{latency: 300ms}}, for: {slow_for}}}
    - {{name: kill, fault: process.kill, target: svc, at: 2s, for: 1s}}
  expect: {{recoverWithin: 10s}}
"""


def write(tmp_path: Path, slow_for: str = "2s") -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(
        EXPERIMENT.format(
            python=sys.executable, svc=free_port(), front=free_port(), slow_for=slow_for
        )
    )
    return path


def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "AFTERSHOCK_HOME": str(tmp_path / "home")}


def records(tmp_path: Path) -> list[dict[str, object]]:
    (journal,) = (tmp_path / "home" / "journal").glob("*.jsonl")
    return [json.loads(line) for line in journal.read_text().splitlines()]


def test_a_run_passes_writes_report_junit_and_ledger(tmp_path: Path) -> None:
    exp = write(tmp_path)
    report = tmp_path / "report"
    junit = tmp_path / "junit.xml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aftershock",
            "run",
            str(exp),
            "--report",
            str(report),
            "--junit",
            str(junit),
        ],
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED" in result.stdout
    html = (report / "report.html").read_text()
    assert "<svg" in html
    assert "e2e-run" in html
    assert ET.parse(junit).getroot() is not None
    events = [r["event"] for r in records(tmp_path)]
    assert events.count("fault.intent") == events.count("fault.reverted") == 2
    samples = [r for r in records(tmp_path) if r["event"] == "sample"]
    # the latency toxic is visible in the samples taken while it was applied
    assert max(float(s["latency"]) for s in samples) >= 0.27  # type: ignore[arg-type]
    finished = next(r for r in records(tmp_path) if r["event"] == "run.finished")
    budget = finished["result"]["budgets"][0]  # type: ignore[index]
    assert budget["spent"] > 0
    history = subprocess.run(
        [sys.executable, "-m", "aftershock", "history"],
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert history.returncode == 0
    assert "e2e-run" in history.stdout


def test_sigint_rolls_back_and_exits_130(tmp_path: Path) -> None:
    exp = write(tmp_path, slow_for="60s")
    child = subprocess.Popen(
        [sys.executable, "-m", "aftershock", "run", str(exp)],
        env=env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        journal = (
            list((tmp_path / "home" / "journal").glob("*.jsonl"))
            if (tmp_path / "home" / "journal").exists()
            else []
        )
        if journal and '"fault.applied"' in journal[0].read_text():
            break
        time.sleep(0.1)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, out + err
    assert "INTERRUPTED" in out
    events = [r["event"] for r in records(tmp_path)]
    assert events.count("fault.intent") == events.count("fault.reverted")
    assert "Traceback" not in err


def test_dry_run_touches_nothing(tmp_path: Path) -> None:
    exp = write(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "aftershock", "run", str(exp), "--dry-run"],
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "would apply toxiproxy.latency" in result.stdout
    events = [r["event"] for r in records(tmp_path)]
    assert "fault.intent" not in events


def test_budget_gate_refuses_then_force_overrides(tmp_path: Path) -> None:
    exp = write(tmp_path)
    text = exp.read_text().replace(
        "  expect: {recoverWithin: 10s}",
        "  expect: {recoverWithin: 10s}\n  budget: {slo: avail, maxSpend: 99%, reserve: 2%}",
    )
    exp.write_text(text)
    first = subprocess.run(
        [sys.executable, "-m", "aftershock", "run", str(exp), "--force"],
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert first.returncode in (0, 1), first.stdout + first.stderr
    refused = subprocess.run(
        [sys.executable, "-m", "aftershock", "run", str(exp)],
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "budget" in refused.stdout
