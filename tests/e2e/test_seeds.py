"""The seed a run prints makes the same choices again.

A docker target picks 2 of 6 real containers. A run given no seed chooses
one, prints it and journals it; the same experiment run with that seed picks
the same containers. Different seeds pick differently (over a few seeds).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docker import ContainerFactory

pytestmark = [pytest.mark.docker]

EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: seeded}}
spec:
  targets:
    fleet: {{docker: {{labels: {{seed-test: "{label}"}}, pick: 2, host: "{host}"}}}}
  method:
    - {{name: freeze, fault: docker.pause, target: fleet, for: 1s}}
"""


def _dry_run(exp: Path, home: Path, label: str, *seed: str) -> tuple[int, set[str]]:
    """Run ``--dry-run`` (optionally seeded); return the seed it reports and the picks."""
    env = {**os.environ, "AFTERSHOCK_HOME": str(home), "COLUMNS": "300"}
    env["AFTERSHOCK_ALLOW_LABELS"] = f"seed-test={label}"
    done = subprocess.run(
        [sys.executable, "-m", "aftershock", "run", "--dry-run", str(exp), *seed],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    printed = re.search(r"seed\s+(\d+) \(--seed \1 makes the same choices\)", out)
    assert printed is not None, out
    (journal,) = (home / "journal").glob("*.jsonl")
    started = next(
        json.loads(line)
        for line in journal.read_text().splitlines()
        if json.loads(line)["event"] == "run.started"
    )
    assert started["seed"] == int(printed.group(1))  # journaled as printed
    picks = re.search(r"would apply docker\.pause to (.+)", out)
    assert picks is not None, out
    return int(printed.group(1)), {p.strip() for p in picks.group(1).split(",")}


def test_the_printed_seed_repeats_the_choice(
    tmp_path: Path, container_factory: ContainerFactory, docker_host: str
) -> None:
    label = container_factory.prefix
    ids = {container_factory(f"c{i}", labels={"seed-test": label}).id for i in range(6)}
    exp = tmp_path / "seeded.yaml"
    exp.write_text(EXPERIMENT.format(label=label, host=docker_host))
    seed, first = _dry_run(exp, tmp_path / "h1", label)
    assert len(first) == 2
    assert first <= ids  # resources are container ids
    again_seed, again = _dry_run(exp, tmp_path / "h2", label, "--seed", str(seed))
    assert again_seed == seed
    assert again == first
    # Another unseeded run chooses its own seed.
    other_seed, _ = _dry_run(exp, tmp_path / "h3", label)
    assert other_seed != seed
    # And the choice depends on the seed: over a few seeds, more than one pair comes up.
    pairs = {
        frozenset(_dry_run(exp, tmp_path / f"s{s}", label, "--seed", str(s))[1]) for s in range(4)
    }
    assert len(pairs) > 1
