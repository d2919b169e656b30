"""The "must show" list of the run engine, end to end with real parts only.

Real processes (the demo service supervised by aftershock), the embedded proxy
and a standalone `aftershock proxy` server on 127.0.0.1, the CLI in
subprocesses, the journal and the ledger as they are on disk, and (for the dry
run) a container on the private dockerd.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from tests.support.docker import ContainerFactory, free_port, wait_for

PYTHON = json.dumps(sys.executable)
SERVICE = f'[{PYTHON}, -m, aftershock.demo.service, --port, "{{svc}}"]'

Record = dict[str, Any]


# ---------------------------------------------------------------- helpers
def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "AFTERSHOCK_HOME": str(home), "COLUMNS": "250", **extra}
    for key in [k for k in env if k.startswith("AFTERSHOCK_ALLOW_")]:
        del env[key]
    env.pop("AFTERSHOCK_CONFIG", None)
    return env


def aftershock(
    *args: str, home: Path, timeout: float = 120, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aftershock", *args],
        env=env_for(home, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def journals(home: Path) -> list[Path]:
    folder = home / "journal"
    return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []


def records(home: Path) -> list[Record]:
    (journal,) = journals(home)
    out = []
    for line in journal.read_text().splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


def of(recs: list[Record], event: str) -> list[Record]:
    return [r for r in recs if r["event"] == event]


def finished(recs: list[Record]) -> Record:
    (done,) = of(recs, "run.finished")
    result: Record = done["result"]
    return result


def assert_every_fault_reverted(recs: list[Record]) -> None:
    intents = {r["key"] for r in of(recs, "fault.intent")}
    reverted = {r["key"] for r in of(recs, "fault.reverted")}
    assert intents, "no fault was ever intended"
    assert intents <= reverted, f"faults left applied: {sorted(intents - reverted)}"
    assert not of(recs, "fault.revert_failed")


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[94]


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/version", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def proxy_server(tmp_path: Path) -> Iterator[str]:
    """A standalone `aftershock proxy` server; yields its API base URL."""
    api = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aftershock", "proxy", "--listen", f"127.0.0.1:{api}"],
        env=env_for(tmp_path / "proxy-home"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{api}"
    try:
        assert wait_for(lambda: _answers(base), timeout=20), "aftershock proxy did not come up"
        yield base
    finally:
        server.terminate()
        server.wait(timeout=15)


# ---------------------------------------------------------------- latency + verdicts
LATENCY_EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: latency-p95}}
spec:
  targets:
    svc: {{process: {{command: {service}, ready: "127.0.0.1:{svc}"}}}}
    front: {{toxiproxy: {{api: embedded, proxy: front, listen: "127.0.0.1:{front}", upstream: "127.0.0.1:{svc}"}}}}
  probes:
    web: {{http: {{url: "http://127.0.0.1:{front}/health", timeout: 1s}}, every: 100ms}}
  steadyState:
    - {{probe: web, over: 3s, expect: {{successRatio: ">= 0.95", p95: "< 150ms"}}}}
  method:
    - {{name: slow, fault: toxiproxy.latency, target: front, with: {{latency: 200ms}}, for: 5s}}
  expect: {{recoverWithin: 5s}}
"""


@pytest.mark.slow
def test_a_latency_fault_moves_p95_by_its_latency_and_the_run_passes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    svc, front = free_port(), free_port()
    exp = tmp_path / "latency.yaml"
    exp.write_text(LATENCY_EXPERIMENT.format(service=SERVICE.format(svc=svc), svc=svc, front=front))
    done = aftershock("run", str(exp), "--report", str(tmp_path / "report"), home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED" in done.stdout
    recs = records(home)
    result = finished(recs)
    assert result["status"] == "passed"
    assert_every_fault_reverted(recs)

    windows = [w for w in of(recs, "window") if w["step"] == "slow" and w["end_t"] is not None]
    (window,) = windows
    start, end = float(window["start_t"]), float(window["end_t"])
    samples = [s for s in of(recs, "sample") if s["probe"] == "web" and s["ok"]]
    # Before: after the first sample (a new connection) and up to the injection.
    before = [float(s["latency"]) for s in samples[1:] if float(s["t"]) < start]
    # During: started after the toxic was in place and answered before it went.
    during = [
        float(s["latency"])
        for s in samples
        if start + 0.05 <= float(s["t"]) and float(s["t"]) + float(s["latency"]) <= end - 0.05
    ]
    assert len(before) >= 20, len(before)
    assert len(during) >= 15, len(during)
    shift = p95(during) - p95(before)
    assert 0.170 <= shift <= 0.230, (
        f"p95 moved by {shift * 1000:.1f} ms, expected 200 ms ±15 % "
        f"(before p95 {p95(before) * 1000:.1f} ms over {len(before)}, "
        f"during p95 {p95(during) * 1000:.1f} ms over {len(during)})"
    )
    # the report is produced and draws the probe's timeline
    html = (tmp_path / "report" / "report.html").read_text()
    assert "<svg" in html
    assert "PASSED" in html


SLOW_COMEBACK_EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: slow-comeback}}
spec:
  targets:
    svc:
      process:
        # The first start is quick; every later one (after the kill) takes 4 s.
        command: [sh, -c, '[ -e "$0" ] && sleep 4; touch "$0"; exec "$1" -m aftershock.demo.service --port "$2"', "{marker}", {python}, "{svc}"]
  probes:
    web: {{http: {{url: "http://127.0.0.1:{svc}/health", timeout: 500ms}}, every: 200ms}}
  steadyState:
    - {{probe: web, over: 3s, expect: {{successRatio: ">= 0.6"}}}}
  method:
    - {{name: kill, fault: process.kill, target: svc, for: 1s}}
  expect: {{recoverWithin: 1s}}
"""


@pytest.mark.slow
def test_a_deviating_run_fails_and_names_the_expectation_it_missed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    svc = free_port()
    exp = tmp_path / "slow.yaml"
    exp.write_text(
        SLOW_COMEBACK_EXPERIMENT.format(marker=tmp_path / "started", python=PYTHON, svc=svc)
    )
    done = aftershock("run", str(exp), home=home)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED" in done.stdout
    assert "did not recover within 1s" in done.stdout
    recs = records(home)
    result = finished(recs)
    assert result["status"] == "failed"
    assert "did not recover within 1s" in result["reason"]
    # steady state held before (so the method ran), and the fault was reverted
    before = [c for c in result["checks"] if c["phase"] == "before"]
    assert before
    assert all(c["ok"] for c in before)
    assert_every_fault_reverted(recs)


# ---------------------------------------------------------------- abort
ABORT_EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: abort-me}}
spec:
  targets:
    svc: {{process: {{command: {service}}}}}
  probes:
    web: {{http: {{url: "http://127.0.0.1:{svc}/health", timeout: 300ms}}, every: 100ms}}
  steadyState:
    - {{probe: web, over: 3s, expect: {{successRatio: ">= 0.5"}}}}
  method:
    - {{name: kill, fault: process.kill, target: svc, at: 1s, for: 60s}}
  abort:
    - {{probe: web, over: 1s, expect: {{successRatio: "< 0.5"}}}}
"""


@pytest.mark.slow
def test_an_abort_mid_run_rolls_back_within_100ms_and_exits_3(tmp_path: Path) -> None:
    home = tmp_path / "home"
    svc = free_port()
    exp = tmp_path / "abort.yaml"
    exp.write_text(ABORT_EXPERIMENT.format(service=SERVICE.format(svc=svc), svc=svc))
    started = time.monotonic()
    done = aftershock("run", str(exp), home=home)
    took = time.monotonic() - started
    assert done.returncode == 3, done.stdout + done.stderr
    assert "ABORTED" in done.stdout
    assert took < 40, f"the run took {took:.1f}s: the 60 s kill was not cut short"
    recs = records(home)
    result = finished(recs)
    assert result["status"] == "aborted"
    assert "probe web" in result["reason"]
    # the abort tripped mid-run: after the kill was in effect
    (abort,) = of(recs, "abort")
    (window,) = [w for w in of(recs, "window") if w["end_t"] is None]
    assert float(abort["t"]) > float(window["start_t"])
    # no fault left applied, and the rollback was measured and recorded
    assert_every_fault_reverted(recs)
    (rollback,) = of(recs, "rollback.done")
    assert rollback["errors"] == []
    assert float(rollback["after_abort_ms"]) <= 100, rollback
    # cross-check on the journal's own timestamps: abort decided -> last revert written
    decided = datetime.fromisoformat(abort["ts"])
    reverted = max(datetime.fromisoformat(r["ts"]) for r in of(recs, "fault.reverted"))
    assert (reverted - decided).total_seconds() <= 0.100, (decided, reverted)
    assert all(f["reverted_at"] for f in result["faults"])


# ---------------------------------------------------------------- SIGTERM
SIGTERM_EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: sigterm-me}}
spec:
  targets:
    svc: {{process: {{command: {service}, ready: "127.0.0.1:{svc}"}}}}
    front: {{toxiproxy: {{api: "{api}", proxy: front}}}}
  probes:
    web: {{http: {{url: "http://127.0.0.1:{front}/health", timeout: 1s}}, every: 200ms}}
  method:
    - {{name: slow, fault: toxiproxy.latency, target: front, with: {{latency: 300ms}}, for: 60s}}
    - {{name: freeze, fault: process.stop, target: svc, at: 500ms, for: 60s}}
"""


@pytest.mark.slow
def test_sigterm_reverts_every_fault_completes_the_journal_and_exits_130(
    tmp_path: Path, proxy_server: str
) -> None:
    home = tmp_path / "home"
    svc, front = free_port(), free_port()
    httpx.post(
        f"{proxy_server}/proxies",
        json={"name": "front", "listen": f"127.0.0.1:{front}", "upstream": f"127.0.0.1:{svc}"},
    ).raise_for_status()
    exp = tmp_path / "sigterm.yaml"
    exp.write_text(
        SIGTERM_EXPERIMENT.format(
            service=SERVICE.format(svc=svc), svc=svc, api=proxy_server, front=front
        )
    )
    child = subprocess.Popen(
        [sys.executable, "-m", "aftershock", "run", str(exp)],
        env=env_for(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def both_applied() -> bool:
            found = journals(home)
            return bool(found) and found[0].read_text().count('"fault.applied"') == 2

        assert wait_for(both_applied, timeout=30), "the faults were never both applied"
        toxics = httpx.get(f"{proxy_server}/proxies/front/toxics").json()
        assert [t["type"] for t in toxics] == ["latency"]
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 130, out + err
    assert "INTERRUPTED" in out
    assert "Traceback" not in err
    recs = records(home)
    assert_every_fault_reverted(recs)
    result = finished(recs)
    assert result["status"] == "interrupted"
    assert len(result["faults"]) == 2
    assert all(f["reverted_at"] for f in result["faults"])
    # the toxic is really gone from the server and the proxy still passes traffic
    assert httpx.get(f"{proxy_server}/proxies/front/toxics").json() == []
    assert httpx.get(f"{proxy_server}/proxies/front").json()["enabled"] is True


# ---------------------------------------------------------------- the ledger and --force
FORCE_EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: forced-or-not}}
spec:
  targets:
    front: {{toxiproxy: {{api: embedded, proxy: front, listen: "127.0.0.1:{front}", upstream: "127.0.0.1:{svc}"}}}}
  probes:
    web: {{tcp: {{address: "127.0.0.1:{front}"}}, every: 200ms}}
  slo:
    avail: {{probe: web, objective: 99%, window: 7d}}
  method:
    - {{name: slow, fault: toxiproxy.latency, target: front, with: {{latency: 100ms}}, for: 500ms}}
  budget: {{slo: avail, maxSpend: 1%}}
"""


def test_the_ledger_says_a_forced_run_was_forced(tmp_path: Path) -> None:
    home = tmp_path / "home"
    exp = tmp_path / "force.yaml"
    exp.write_text(FORCE_EXPERIMENT.format(front=free_port(), svc=free_port()))
    plain = aftershock("run", str(exp), home=home)
    assert plain.returncode in (0, 1), plain.stdout + plain.stderr
    forced = aftershock("run", str(exp), "--force", home=home)
    assert forced.returncode in (0, 1), forced.stdout + forced.stderr
    with sqlite3.connect(home / "ledger.sqlite3") as conn:
        rows = dict(conn.execute("SELECT run_id, forced FROM runs").fetchall())
    conn.close()
    assert sorted(rows.values()) == [0, 1], rows
    # ...and it is the run started with --force that the ledger marks
    for path in journals(home):
        recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        (started,) = of(recs, "run.started")
        assert rows[started["run_id"]] == int(started["forced"])


# ---------------------------------------------------------------- --dry-run
DRY_EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: dry}}
spec:
  targets:
    front: {{toxiproxy: {{api: "{api}", proxy: front}}}}
    box: {{docker: {{names: ["{box}"], host: "{docker_host}"}}}}
  probes:
    web: {{tcp: {{address: "127.0.0.1:{front}"}}, every: 200ms}}
  method:
    - {{name: slow, fault: toxiproxy.latency, target: front, with: {{latency: 500ms}}, for: 30s}}
    - {{name: freeze, fault: docker.pause, target: box, for: 30s}}
"""


@pytest.mark.docker
def test_dry_run_touches_neither_the_proxy_nor_docker(
    tmp_path: Path,
    proxy_server: str,
    container_factory: ContainerFactory,
    docker_host: str,
    docker_client: docker.DockerClient,
) -> None:
    home = tmp_path / "home"
    front = free_port()
    httpx.post(
        f"{proxy_server}/proxies",
        json={"name": "front", "listen": f"127.0.0.1:{front}", "upstream": "127.0.0.1:9"},
    ).raise_for_status()
    box = container_factory("box")
    exp = tmp_path / "dry.yaml"
    exp.write_text(
        DRY_EXPERIMENT.format(api=proxy_server, front=front, box=box.name, docker_host=docker_host)
    )
    done = aftershock("run", str(exp), "--dry-run", home=home, DOCKER_HOST=docker_host)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "would apply toxiproxy.latency" in done.stdout
    assert "would apply docker.pause" in done.stdout
    # the target was resolved to the real container
    assert box.id in "".join(done.stdout.split()), done.stdout
    # the proxy: no toxics, still enabled
    proxy = httpx.get(f"{proxy_server}/proxies/front").json()
    assert proxy["enabled"] is True
    assert proxy.get("toxics", []) == []
    assert httpx.get(f"{proxy_server}/proxies/front/toxics").json() == []
    # the container: running, not paused
    state = docker_client.api.inspect_container(box.id)["State"]
    assert state["Status"] == "running"
    assert state["Running"] is True
    assert state["Paused"] is False
    # nothing journaled as a fault, nothing booked in the ledger
    recs = records(home)
    assert not of(recs, "fault.intent")
    assert finished(recs)["dry_run"] is True
    ledger = home / "ledger.sqlite3"
    if ledger.exists():
        with sqlite3.connect(ledger) as conn:
            assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
        conn.close()
