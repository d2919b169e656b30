"""The closed loop's verdict: `expect: {healedBy, within}` fails when the healer does not
act in time, and passes when it does (the control).

Real parts only: the demo service as a process supervised by aftershock, the
healing policy running in-process with `aftershock run`, the CLI in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aftershock.journal import LEDGER_FILE, Ledger
from tests.support.docker import free_port

pytestmark = pytest.mark.slow

POLICY = """\
apiVersion: aftershock.dev/v1alpha1
kind: HealingPolicy
metadata: {{name: window-healer}}
spec:
  dryRun: {dry_run}
  targets:
    svc: {{process: {{command: [{python}, -m, aftershock.demo.service, --port, "{svc}"], ready: "127.0.0.1:{svc}"}}}}
  watch:
    health: {{http: {{url: "http://127.0.0.1:{svc}/health", timeout: 300ms}}, every: 100ms, unhealthyAfter: 2, healthyAfter: 2, target: svc}}
  playbooks:
    - name: revive
      when: {{unhealthy: health, for: {when_for}}}
      steps:
        - {{action: process.start, target: svc}}
        - {{action: wait.healthy, with: {{probe: health, within: 10s}}, timeout: 15s}}
      limits: {{maxAttempts: 3, backoff: {{initial: 1s, max: 5s}}, cooldown: 1m}}
"""

EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: healed-in-time}}
spec:
  healingPolicy: policy.yaml
  targets:
    svc: {{process: {{command: [{python}, -m, aftershock.demo.service, --port, "{svc}"], ready: "127.0.0.1:{svc}"}}}}
  probes:
    web: {{http: {{url: "http://127.0.0.1:{svc}/health", timeout: 300ms}}, every: 100ms}}
  method:
    - {{name: kill, fault: process.kill, target: svc, for: 6s}}
  expect: {{healedBy: revive, within: 3s}}
"""


def run(tmp_path: Path, *, when_for: str, dry_run: bool = False) -> tuple[int, str, dict[str, Any]]:
    """Run the experiment with the policy; return exit code, stdout and the journaled result."""
    values = {"python": json.dumps(sys.executable), "svc": free_port()}
    (tmp_path / "policy.yaml").write_text(
        POLICY.format(**values, when_for=when_for, dry_run=str(dry_run).lower())
    )
    exp = tmp_path / "experiment.yaml"
    exp.write_text(EXPERIMENT.format(**values))
    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, "-m", "aftershock", "run", str(exp)],
        env={**os.environ, "AFTERSHOCK_HOME": str(home), "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    (journal,) = (home / "journal").glob("*.jsonl")
    recs = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    (finished,) = [r for r in recs if r["event"] == "run.finished"]
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout + done.stderr, finished["result"]


@pytest.mark.parametrize(
    ("when_for", "dry_run"),
    [
        pytest.param("10m", False, id="playbook-waits-10m"),
        pytest.param("0s", True, id="policy-dry-run"),
    ],
)
def test_the_verdict_fails_when_the_playbook_does_not_fire(
    tmp_path: Path, when_for: str, dry_run: bool
) -> None:
    code, out, result = run(tmp_path, when_for=when_for, dry_run=dry_run)
    assert code == 1, out
    assert "FAILED" in out
    assert result["status"] == "failed"
    assert "healer playbook 'revive' did not fire" in result["reason"], result["reason"]
    assert "did not fire" in out
    assert result["healing"]["fired"] is False
    # the fault itself was reverted by the run (the driver restarted the service)
    assert all(f["reverted_at"] for f in result["faults"])


def test_the_verdict_fails_when_the_playbook_fires_after_within(tmp_path: Path) -> None:
    # The playbook waits 4 s of unhealthiness before acting: later than `within: 3s`.
    code, out, result = run(tmp_path, when_for="4s")
    assert code == 1, out
    assert result["status"] == "failed"
    assert "healer playbook 'revive' acted" in result["reason"], result["reason"]
    assert "> 3s" in result["reason"]
    healing = result["healing"]
    assert healing["fired"] is True
    assert healing["playbook"] == "revive"
    assert 4.0 <= healing["first_action_after"] <= 6.0, healing


def test_control_the_verdict_passes_when_the_playbook_fires_in_time(tmp_path: Path) -> None:
    code, out, result = run(tmp_path, when_for="0s")
    assert code == 0, out
    assert result["status"] == "passed"
    healing = result["healing"]
    assert healing["fired"] is True
    assert healing["playbook"] == "revive"
    assert healing["first_action_after"] <= 3.0, healing
    # The ledger itemises what the healer did during the run (for `history --html`).
    (booked,) = Ledger(tmp_path / "home" / LEDGER_FILE).runs()
    assert booked.healer_actions, booked
    assert {a.playbook for a in booked.healer_actions} == {"revive"}
