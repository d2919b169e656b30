"""``aftershock demo``: the closed loop on this machine, with nothing installed but aftershock.

A small HTTP service runs as a supervised process behind the embedded
Toxiproxy-compatible proxy; a healing policy watches it; an experiment adds
latency, then kills the service, and checks that the healer brought it back.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from aftershock.cli.common import fail, os_reason, output_dir_problem, settings_or_exit
from aftershock.cli.run import execute, load_policy
from aftershock.errors import JournalError

__all__ = ["demo"]

POLICY = """\
# The healer of the demo: restart the service when /health fails twice in a row.
apiVersion: aftershock.dev/v1alpha1
kind: HealingPolicy
metadata: {{name: demo-healer}}
spec:
  targets:
    service:
      process:
        command: [{python}, -m, aftershock.demo.service, --port, "{service}"]
        ready: "127.0.0.1:{service}"
  watch:
    health:
      http: {{url: "http://127.0.0.1:{service}/health", timeout: 500ms}}
      every: 250ms
      unhealthyAfter: 2
      healthyAfter: 2
      target: service
  playbooks:
    - name: restart-service
      when: {{unhealthy: health}}
      steps:
        - {{action: process.start, target: service}}
        - {{action: wait.healthy, with: {{probe: health, within: 10s}}, timeout: 15s}}
      limits: {{maxAttempts: 3, backoff: {{initial: 1s, factor: 2, max: 10s}}, cooldown: 2m}}
"""

EXPERIMENT = """\
# The demo experiment: 300 ms of latency on the way in, then the service is killed.
# Steady state must hold before and after, the healer must restart the service
# within 5 s, and the run may spend at most 1% of the 99.5%/7d error budget.
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: demo-closed-loop}}
spec:
  description: The demo service survives latency and a crash; the healer brings it back.
  healingPolicy: policy.yaml
  targets:
    service:
      process:
        command: [{python}, -m, aftershock.demo.service, --port, "{service}"]
        ready: "127.0.0.1:{service}"
    front:
      toxiproxy:
        api: embedded
        proxy: demo-front
        listen: "127.0.0.1:{front}"
        upstream: "127.0.0.1:{service}"
  probes:
    checkout:
      http:
        url: "http://127.0.0.1:{front}/health"
        timeout: 1s
        expectBody: {{jsonPath: $.status, equals: ok}}
      every: 250ms
  slo:
    availability: {{probe: checkout, objective: 99.5%, latency: 250ms, window: 7d}}
  steadyState:
    - {{probe: checkout, over: 2s, expect: {{successRatio: ">= 0.95", p95: "< 100ms"}}}}
  method:
    - name: slow-network
      fault: toxiproxy.latency
      target: front
      with: {{latency: 300ms, jitter: 20ms}}
      for: 4s
    - {{name: kill-service, fault: process.kill, target: service, at: 5s, for: 10s}}
  abort:
    - {{budget: availability, spentAbove: 5%}}
  expect: {{recoverWithin: 15s, healedBy: restart-service, within: 5s}}
  budget: {{slo: availability, maxSpend: 1%}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_demo(directory: Path) -> Path:
    """Write the demo's experiment and policy (with free ports) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    values = {"python": json.dumps(sys.executable), "service": _free_port(), "front": _free_port()}
    (directory / "policy.yaml").write_text(POLICY.format(**values), encoding="utf-8")
    experiment = directory / "experiment.yaml"
    experiment.write_text(EXPERIMENT.format(**values), encoding="utf-8")
    return experiment


def demo(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Where to write the demo files and report.")
    ] = None,
) -> None:
    """Run the closed loop here: latency, a crash, the healer, the verdict, the MTTR, a report.

    Exit codes are ``run``'s; 2 also when ``--dir`` or ``$AFTERSHOCK_HOME`` is unusable.
    """
    from rich.console import Console
    from rich.text import Text

    from aftershock.loading import load_file
    from aftershock.model.experiment import Experiment
    from aftershock.reporting import REPORT_FILES, load_run, write_report

    settings = settings_or_exit()
    where = directory or settings.home / "demo"
    for problem in (
        output_dir_problem(where, ("policy.yaml", "experiment.yaml"), "--dir"),
        output_dir_problem(where / "report", REPORT_FILES, "--dir"),
    ):
        if problem is not None:
            fail(problem)
    path = write_demo(where)
    experiment = next(d.document for d in load_file(path) if isinstance(d.document, Experiment))
    policy = load_policy(experiment, path, settings)
    console = Console()
    console.print(Text.assemble(("aftershock demo", "bold"), f": files in {where}"))
    outcome = execute(console, experiment, policy, settings)
    mttr = [r["mttr_seconds"] for r in _incidents(outcome.journal) if r.get("mttr_seconds")]
    if mttr:
        console.print(
            Text.assemble("MTTR (detected -> healthy again): ", (f"{mttr[-1]:.2f}s", "bold"))
        )
    else:
        console.print("MTTR: the healer did not close an incident")
    try:
        paths = write_report(load_run(outcome.journal), where / "report")
    except (OSError, JournalError) as exc:
        reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
        typer.echo(f"error: cannot write report: {reason}", err=True)
    else:
        console.print(Text(f"report: {paths['html']}"))
    raise typer.Exit(outcome.result.status.exit_code)


def _incidents(journal: Path) -> list[dict[str, Any]]:
    out = []
    for line in journal.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("event") == "incident":
            mttr = record.get("mttr_seconds")
            if isinstance(mttr, int | float) and not isinstance(mttr, bool):
                out.append(record)
    return out
