"""`aftershock schedule DIR` as a user runs it: a real daemon, a real run on its cron, SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.docker import free_port

pytestmark = pytest.mark.slow

EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: e2e-scheduled}}
spec:
  schedule: {{cron: "* * * * *", timezone: Europe/Berlin}}
  targets:
    svc: {{process: {{command: ["{python}", -m, http.server, "{svc}", --bind, 127.0.0.1], ready: "127.0.0.1:{svc}"}}}}
    front: {{toxiproxy: {{api: embedded, proxy: front, listen: "127.0.0.1:{front}", upstream: "127.0.0.1:{svc}"}}}}
  probes:
    web: {{http: {{url: "http://127.0.0.1:{front}/", timeout: 1s}}, every: 200ms}}
  slo:
    avail: {{probe: web, objective: 99%, window: 7d}}
  method:
    - {{name: slow, fault: toxiproxy.latency, target: front, with: {{latency: 100ms}}, for: 1s}}
"""


def log_records(home: Path) -> list[dict[str, object]]:
    path = home / "schedule" / "log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.timeout(240)
def test_the_daemon_runs_an_experiment_on_its_cron_and_stops_on_sigterm(tmp_path: Path) -> None:
    exps = tmp_path / "experiments"
    exps.mkdir()
    (exps / "scheduled.yaml").write_text(
        EXPERIMENT.format(python=sys.executable, svc=free_port(), front=free_port())
    )
    home = tmp_path / "home"
    env = {**os.environ, "AFTERSHOCK_HOME": str(home)}
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out_path.open("w") as out, err_path.open("w") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "aftershock", "schedule", str(exps), "--reload-every", "1"],
            env=env,
            stdout=out,
            stderr=err,
            text=True,
        )
        try:
            deadline = time.monotonic() + 150  # the next minute boundary, plus the run
            runs: list[dict[str, object]] = []
            while time.monotonic() < deadline and not runs and child.poll() is None:
                time.sleep(0.5)
                runs = [r for r in log_records(home) if r["event"] == "schedule.run"]
            assert runs, out_path.read_text() + err_path.read_text()
            child.send_signal(signal.SIGTERM)
            code = child.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    stdout, stderr = out_path.read_text(), err_path.read_text()
    assert code == 0, stdout + stderr
    assert "scheduled e2e-scheduled (" in stdout
    assert "next run" in stdout
    assert "stopped" in stdout
    assert "Traceback" not in stderr

    (run,) = runs[:1]
    assert run["key"] == "e2e-scheduled"
    assert run["status"] == "passed", run
    journal = Path(str(run["journal"]))
    assert journal.is_file()
    events = [json.loads(line)["event"] for line in journal.read_text().splitlines()]
    assert events.count("fault.intent") == events.count("fault.reverted") == 1
    ledger = subprocess.run(
        [sys.executable, "-m", "aftershock", "history"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ledger.returncode == 0
    assert "e2e-scheduled" in ledger.stdout
    fires = [r for r in log_records(home) if r["event"] == "schedule.fire"]
    assert fires
    assert fires[0]["decision"] == "run"
    assert log_records(home)[-1]["event"] == "schedule.stopped"
