"""Benchmark of the CLI's start-up: what ``validate`` and ``--help`` cost a user.

Run on demand: ``.venv/bin/python bench/bench_cli.py [--repeat 5] [--files 1000]``.

Every row is the wall time of a fresh process (``time.perf_counter`` around
``subprocess.run``), the median and the best of ``--repeat`` runs:

* ``aftershock validate`` of one file (``experiments/toxiproxy-latency.yaml``)
  and of ``--files`` copies of it in a temporary directory (each copy renamed,
  so every document is distinct);
* ``aftershock --help``;
* the import of ``aftershock.cli.main`` alone, in the process itself
  (``-X importtime``'s cumulative figure for it, in the same units);
* the overhead of ``aftershock run``: the wall time of a run of a small
  experiment (one ``toxiproxy.latency`` fault on the embedded proxy, held for
  ``--hold`` seconds; no probes, no infrastructure) minus the waits it
  declares (the fault's ``for:``), each run with a fresh ``$AFTERSHOCK_HOME``;
* side by side, if a ``chaos`` executable is on ``PATH`` or named by
  ``--chaos`` (Chaos Toolkit; ``pip install chaostoolkit`` in a venv of its
  own): ``chaos validate`` of one JSON experiment, and the overhead of
  ``chaos run`` of an experiment whose method is one ``sleep --hold`` process
  (wall time minus the sleep; less work than aftershock's fault).

Before measuring, the aftershock package is compiled to bytecode
(``compileall``), as an install from a wheel is: a checkout run with
``PYTHONDONTWRITEBYTECODE`` set would otherwise compile every module on every
start, which is not what a user pays.

Targets (issue 12): one file ≤ 0.2 s, 1,000 files ≤ 2 s, run overhead ≤ 0.5 s.
The machine's load average is printed first: on a shared machine, compare rows
measured under similar load.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "experiments" / "toxiproxy-latency.yaml"
AFTERSHOCK = (sys.executable, "-m", "aftershock")

#: A minimal Chaos Toolkit experiment: one HTTP probe as the steady state, no method.
CHAOS_EXPERIMENT = {
    "version": "1.0.0",
    "title": "checkout stays up",
    "description": "one HTTP probe, as a validate-only baseline",
    "steady-state-hypothesis": {
        "title": "checkout answers",
        "probes": [
            {
                "type": "probe",
                "name": "checkout-answers",
                "tolerance": 200,
                "provider": {"type": "http", "url": "http://127.0.0.1:8080/"},
            }
        ],
    },
    "method": [
        {
            "type": "action",
            "name": "wait",
            "provider": {"type": "process", "path": "true"},
        }
    ],
}


def environment() -> dict[str, str]:
    """The caller's environment without allowlist overrides, with a private state directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFTERSHOCK_ALLOW")}
    env.setdefault("AFTERSHOCK_HOME", tempfile.mkdtemp(prefix="bench-cli-home-"))
    return env


def wall(
    command: list[str], repeat: int, env: dict[str, str], cwd: Path | None = None
) -> tuple[float, float]:
    """Median and best wall time, in seconds, of ``command`` run ``repeat`` times in ``cwd``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, env=env, cwd=cwd, check=False)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            sys.exit(f"{' '.join(command)} exited {result.returncode}: {result.stderr.decode()}")
    return statistics.median(times), min(times)


def import_time(repeat: int, env: dict[str, str]) -> tuple[float, float]:
    """Median and best cumulative ``-X importtime`` of ``aftershock.cli.main``, in seconds."""
    times = []
    line = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \|\s*aftershock\.cli\.main$", re.MULTILINE)
    for _ in range(repeat):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import aftershock.cli.main"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        match = line.search(result.stderr)
        if match is None:
            sys.exit("no import time reported for aftershock.cli.main")
        times.append(int(match.group(1)) / 1e6)
    return statistics.median(times), min(times)


#: The run-overhead experiment: one fault on the embedded proxy, nothing else to wait for.
RUN_EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: bench-run-overhead}}
spec:
  description: One latency fault on the embedded proxy; the run's own cost is what is left.
  targets:
    front:
      toxiproxy:
        api: embedded
        proxy: bench-front
        listen: "127.0.0.1:{listen}"
        upstream: "127.0.0.1:{upstream}"
  method:
    - name: slow
      fault: toxiproxy.latency
      target: front
      with: {{latency: 100ms}}
      for: {hold}s
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_overhead(repeat: int, env: dict[str, str], hold: float) -> tuple[float, float, float]:
    """Median and best wall time of ``aftershock run``, and the waits the experiment declares.

    Every run gets a fresh state directory, so no run finds another's journal or ledger.
    """
    times = []
    with tempfile.TemporaryDirectory(prefix="bench-cli-run-") as tmp:
        experiment = Path(tmp) / "experiment.yaml"
        text = RUN_EXPERIMENT.format(listen=_free_port(), upstream=_free_port(), hold=hold)
        experiment.write_text(text, encoding="utf-8")
        for i in range(repeat):
            run_env = {**env, "AFTERSHOCK_HOME": str(Path(tmp) / f"home-{i}")}
            start = time.perf_counter()
            result = subprocess.run(
                [*AFTERSHOCK, "run", str(experiment)],
                capture_output=True,
                env=run_env,
                cwd=tmp,
                check=False,
            )
            times.append(time.perf_counter() - start)
            if result.returncode != 0:
                sys.exit(f"aftershock run exited {result.returncode}: {result.stdout.decode()}")
    return statistics.median(times), min(times), hold


def chaos_run_overhead(
    chaos: str, repeat: int, env: dict[str, str], hold: float, tmp: Path
) -> tuple[float, float]:
    """Median and best of ``chaos run`` wall time minus its one ``sleep``."""
    experiment = tmp / "chaos-run.json"
    experiment.write_text(
        json.dumps(
            {
                "version": "1.0.0",
                "title": "one sleep",
                "description": "the method waits; the run's own cost is what is left",
                "method": [
                    {
                        "type": "action",
                        "name": "hold",
                        "provider": {"type": "process", "path": "sleep", "arguments": f"{hold:g}"},
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    command = [chaos, "--no-version-check", "run", "--no-verify-tls", str(experiment)]
    median, best = wall(command, repeat, env, tmp)
    return median - hold, best - hold


def compile_package() -> None:
    """Write the bytecode of every aftershock module, as installing a wheel does."""
    spec = importlib.util.find_spec("aftershock")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("aftershock is not importable from this interpreter")
    for location in spec.submodule_search_locations:
        compileall.compile_dir(location, quiet=1, force=False)


def copies(directory: Path, count: int) -> None:
    """Write ``count`` copies of the example, each experiment under its own name."""
    text = EXAMPLE.read_text(encoding="utf-8")
    name = re.search(r"^  name: (\S+)$", text, re.MULTILINE)
    if name is None:
        sys.exit(f"{EXAMPLE}: no metadata.name to rename")
    for i in range(count):
        renamed = text.replace(name.group(0), f"  name: {name.group(1)}-{i:04d}", 1)
        (directory / f"experiment-{i:04d}.yaml").write_text(renamed, encoding="utf-8")


def row(name: str, figures: tuple[float, float], target: str = "") -> None:
    """Print one table row: the name, median and best in seconds, and the target."""
    median, best = figures
    print(f"{name:44}{median:>9.3f}{best:>9.3f}  {target}")


def main() -> None:
    """Parse options, run every case and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per row (default 5)")
    parser.add_argument("--files", type=int, default=1000, help="files in the big validate")
    parser.add_argument("--chaos", help="the chaos executable (default: chaos on PATH)")
    parser.add_argument(
        "--hold", type=float, default=2.0, help="seconds the run's fault is held (default 2)"
    )
    args = parser.parse_args()
    compile_package()
    env = environment()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"aftershock CLI start-up ({args.repeat} runs per row, {sys.executable})")
    print(f"load average (1, 5, 15 min): {load} on {os.cpu_count()} CPUs")
    print(f"{'wall time, s':44}{'median':>9}{'best':>9}")
    row(
        "aftershock validate, 1 file",
        wall([*AFTERSHOCK, "validate", str(EXAMPLE)], args.repeat, env),
        "target <= 0.2",
    )
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        copies(Path(tmp), args.files)
        row(
            f"aftershock validate, {args.files} files",
            wall([*AFTERSHOCK, "validate", tmp], args.repeat, env),
            "target <= 2 (1,000 files)",
        )
        row("aftershock --help", wall([*AFTERSHOCK, "--help"], args.repeat, env))
        row("import aftershock.cli.main (-X importtime)", import_time(args.repeat, env))
        median, best, declared = run_overhead(args.repeat, env, args.hold)
        row(f"aftershock run, wall ({declared:g} s declared waits)", (median, best))
        row(
            "aftershock run, overhead (wall - declared)",
            (median - declared, best - declared),
            "target <= 0.5",
        )
        chaos = args.chaos or shutil.which("chaos")
        if chaos is None:
            print(f"{'chaos validate, 1 file':44}  not installed")
            return
        experiment = Path(tmp) / "chaos-experiment.json"
        experiment.write_text(json.dumps(CHAOS_EXPERIMENT), encoding="utf-8")
        # chaos writes chaostoolkit.log into its working directory: the temporary one.
        command = [chaos, "--no-version-check", "validate", str(experiment)]
        row("chaos validate, 1 file (Chaos Toolkit)", wall(command, args.repeat, env, Path(tmp)))
        row(
            f"chaos run, overhead (wall - {args.hold:g} s sleep)",
            chaos_run_overhead(chaos, args.repeat, env, args.hold, Path(tmp)),
        )


if __name__ == "__main__":
    main()
