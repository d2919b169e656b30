"""The CLI as a user runs it: a real subprocess, real files, exit codes and output."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "experiments"
LOCATED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<path>[\w.\[\]-]+): .+$")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AFTERSHOCK_ALLOW")}
    clean["AFTERSHOCK_HOME"] = clean.get("AFTERSHOCK_HOME", "/nonexistent-aftershock-home")
    return subprocess.run(
        [sys.executable, "-m", "aftershock", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
        check=False,
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("aftershock ")


def test_examples_validate() -> None:
    result = run("validate", str(EXAMPLES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stderr


def test_a_broken_copy_exits_2_and_locates_every_error(tmp_path: Path) -> None:
    broken = tmp_path / "experiments"
    shutil.copytree(EXAMPLES, broken)
    victim = broken / "toxiproxy-latency.yaml"
    text = victim.read_text()
    text = text.replace("latency: 300ms", "latency: 300", 1).replace(
        "kind: Experiment", "kind: Experimnt", 1
    )
    victim.write_text(text + "\n---\nfoo: [unclosed\n")
    result = run("validate", str(broken))
    assert result.returncode == 2
    lines = result.stdout.strip().splitlines()
    assert len(lines) >= 2
    for line in lines:
        if "YAML syntax error" in line:
            assert re.match(r"^[^:]+:\d+:\d+: YAML syntax error", line), line
            continue
        match = LOCATED.match(line)
        assert match, line
        assert match["file"].endswith("toxiproxy-latency.yaml")
        assert int(match["line"]) > 0 and int(match["col"]) > 0
    assert "Traceback" not in result.stdout + result.stderr


def test_json_output_is_machine_readable(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: aftershock.dev/v1alpha1\nkind: Experiment\nmetadata: {name: a}\nspec: {method: []}\n"
    )
    result = run("validate", "-o", "json", str(bad))
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["problems"][0]["path"] == "spec.method"
    assert report["problems"][0]["line"] == 4


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = run("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "no such file or directory" in result.stdout
    assert "Traceback" not in result.stderr


def test_schema_crd_equals_committed_manifests(tmp_path: Path) -> None:
    result = run("schema", "--crd", "--out", str(tmp_path))
    assert result.returncode == 0
    for path in sorted((ROOT / "deploy" / "crds").glob("*.yaml")):
        assert (tmp_path / path.name).read_text() == path.read_text(), path.name
    printed = run("schema", "--crd")
    committed = "".join(p.read_text() for p in sorted((ROOT / "deploy" / "crds").glob("*.yaml")))
    assert sorted(printed.stdout.split("---\n")) == sorted(committed.split("---\n"))


def test_json_schema_is_json() -> None:
    result = run("schema")
    assert result.returncode == 0
    assert json.loads(result.stdout)["title"].startswith("aftershock")
