"""`aftershock import chaostoolkit` as a user runs it, and an imported experiment run for real.

Real parts: the CLI as subprocesses, the unchanged Chaos Toolkit experiments of
../shared/ctk-examples, `aftershock validate` on what the import wrote, and for
the run a standalone `aftershock proxy` server (the Toxiproxy API the imported
target names through ${TOXIPROXY_HOST}/${TOXIPROXY_PORT}) in front of a
`python -m http.server`, all on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.docker import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT.parent / "shared" / "ctk-examples"
FILES = sorted(p for p in EXAMPLES.glob("*") if p.suffix in (".json", ".yaml", ".yml"))
LATENCY = EXAMPLES / "experiment-catalog--introduce_latency_experiment.json"
LOCATED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): .+$")
VARIABLES = {
    "APPLICATION_ENTRYPOINT_URL": "http://127.0.0.1:18080/",
    "FRONT_URL": "http://127.0.0.1:18081/",
    "COUNTER_URL": "http://127.0.0.1:18082/",
    "WEBAPP_SERVICE_ADDR": "http://127.0.0.1:18083",
    "PROMETHEUS_ADDR": "http://127.0.0.1:19090",
    "PROMETHEUS_URL": "http://127.0.0.1:19090",
    "JAEGER_HOST": "127.0.0.1",
    "TOXIPROXY_HOST": "127.0.0.1",
    "TOXIPROXY_PROXY_NAME": "web",
    "POD_LABEL": "app=web",
    "POD_NAMESPACE": "shop",
    "AZURE_SUBSCRIPTION_ID": "sub",
    "AZURE_CLIENT_ID": "id",
    "AZURE_CLIENT_SECRET": "secret",
    "AZURE_TENANT_ID": "tenant",
    "HUMIO_INGEST_TOKEN": "token",
    "HUMIO_DATASPACE": "space",
}


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AFTERSHOCK_ALLOW")}
    return {**clean, "AFTERSHOCK_HOME": str(tmp_path / "home"), **extra}


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aftershock", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env_for(tmp_path, **env),
        check=False,
    )


def assert_located(stderr: str) -> list[str]:
    lines = [line for line in stderr.splitlines() if LOCATED.match(line)]
    assert lines, stderr
    assert "Traceback" not in stderr
    return lines


def test_every_example_imports_and_the_result_validates(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli(tmp_path, "import", "chaostoolkit", *map(str, FILES), "-o", str(out))
    assert result.returncode == 1, result.stderr  # translated, with warnings
    assert "Traceback" not in result.stderr
    written = sorted(Path(line).name for line in result.stdout.splitlines())
    assert written == sorted(f"{p.stem}.yaml" for p in FILES)
    warnings = assert_located(result.stderr)
    assert len(warnings) == 42
    assert result.stderr.rstrip().endswith(
        "10 imported, 0 not a Chaos Toolkit experiment, 42 warning(s)"
    )
    # The label selectors of the Kubernetes examples need an allowlist entry to run; the
    # documents themselves are checked here.
    checked = cli(tmp_path, "validate", "--no-allowlist", str(out), **VARIABLES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "10 document(s) in 10 file(s) are valid" in checked.stderr


def test_an_experiment_that_translates_fully_exits_0_and_prints_yaml(tmp_path: Path) -> None:
    path = EXAMPLES / "community-playground--kill-pods-experiment.json"
    result = cli(tmp_path, "import", "chaostoolkit", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# Imported by `aftershock import chaostoolkit`")
    assert "fault: k8s.deletePod" in result.stdout
    assert result.stderr.strip() == "1 imported, 0 not a Chaos Toolkit experiment, 0 warning(s)"


def test_hostile_inputs_exit_2_located_and_write_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "list.json").write_text("[1, 2, 3]\n")
    (bad / "aftershock.yaml").write_text(
        (ROOT / "experiments" / "toxiproxy-latency.yaml").read_text()
    )
    (bad / "garbage.json").write_bytes(b'{"title": "\xff\xfe\x00"}')
    bomb = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    bomb += [f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(10))}]" for i in range(1, 9)]
    (bad / "bomb.yaml").write_text("\n".join(bomb) + "\ntitle: t\nmethod: [*a8]\n")
    directory = bad / "a-directory.json"
    directory.mkdir()
    out = tmp_path / "out"
    for name, expected in [
        ("list.json", "list.json:1:1: not a Chaos Toolkit experiment: the document is a list"),
        ("aftershock.yaml", "already an aftershock"),
        ("garbage.json", "garbage.json:1:12: file is not valid UTF-8 (byte 0xff)"),
        ("bomb.yaml", "alias expansion bomb"),
        ("a-directory.json", "a-directory.json:1:1: a directory, not a regular file"),
    ]:
        result = cli(tmp_path, "import", "chaostoolkit", str(bad / name), "-o", str(out))
        assert result.returncode == 2, (name, result.stderr)
        (line,) = assert_located(result.stderr)
        assert expected in line, line
        assert result.stdout == ""
    assert not out.exists() or not any(out.iterdir())
    # A good file next to a bad one is still written; the exit code reports the bad one.
    mixed = cli(
        tmp_path, "import", "chaostoolkit", str(bad / "list.json"), str(LATENCY), "-o", str(out)
    )
    assert mixed.returncode == 2
    assert [p.name for p in out.iterdir()] == [f"{LATENCY.stem}.yaml"]


def test_two_inputs_with_the_same_name_are_refused_before_writing(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    twin = other / LATENCY.name
    twin.write_bytes(LATENCY.read_bytes())
    out = tmp_path / "out"
    result = cli(tmp_path, "import", "chaostoolkit", str(LATENCY), str(twin), "-o", str(out))
    assert result.returncode == 2
    assert "would both be written" in result.stderr
    assert not out.exists()


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/version", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def _serves(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_the_imported_toxiproxy_example_runs_against_the_embedded_proxy(tmp_path: Path) -> None:
    api, upstream, listen = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{api}"
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("ok\n")
    env = env_for(tmp_path)
    server = subprocess.Popen(
        [sys.executable, "-m", "aftershock", "proxy", "--listen", f"127.0.0.1:{api}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    service = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(upstream), "--bind", "127.0.0.1"],
        cwd=www,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: _answers(base), timeout=15)
        assert wait_for(lambda: _serves(upstream), timeout=15)
        # Chaos Toolkit's toxiproxy extension expects the proxy to exist: create it, as its
        # users do before `chaos run`.
        proxy = {
            "name": "web",
            "listen": f"127.0.0.1:{listen}",
            "upstream": f"127.0.0.1:{upstream}",
        }
        httpx.post(f"{base}/proxies", json=proxy, timeout=5).raise_for_status()
        assert wait_for(lambda: _serves(listen), timeout=15)

        out = tmp_path / "out"
        imported = cli(tmp_path, "import", "chaostoolkit", str(LATENCY), "-o", str(out))
        assert imported.returncode == 1, imported.stderr  # the mismatched rollback is reported
        (document,) = out.iterdir()
        variables = {
            "TOXIPROXY_HOST": "127.0.0.1",
            "TOXIPROXY_PORT": str(api),
            "TOXIPROXY_PROXY_NAME": "web",
            "APPLICATION_ENTRYPOINT_URL": f"http://127.0.0.1:{listen}/",
        }
        report = tmp_path / "report"
        command = [
            sys.executable,
            "-m",
            "aftershock",
            "run",
            str(document),
            "--report",
            str(report),
        ]
        run = subprocess.Popen(
            command,
            env=env_for(tmp_path, **variables),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        seen: list[dict[str, object]] = []
        while run.poll() is None:  # watch the server while the run applies its fault
            seen.extend(httpx.get(f"{base}/proxies/web/toxics", timeout=5).json())
            time.sleep(0.05)
        stdout, stderr = run.communicate(timeout=60)
        assert run.returncode in (0, 1), stdout + stderr  # a verdict, not an error
        assert run.returncode == 0, stdout + stderr
        assert "PASSED" in stdout
        assert (report / "report.html").is_file()
        applied = {(t["type"], t["attributes"]["latency"], t["attributes"]["jitter"]) for t in seen}
        assert applied == {("latency", 1200, 100)}

        (journal,) = (tmp_path / "home" / "journal").glob("*.jsonl")
        records = [json.loads(line) for line in journal.read_text().splitlines()]
        faults = [r for r in records if r["event"] in ("fault.intent", "fault.reverted")]
        assert [r["event"] for r in faults] == ["fault.intent", "fault.reverted"]
        assert faults[0]["handle"]["fault"] == "toxiproxy.latency"
        toxics = httpx.get(f"{base}/proxies/web/toxics", timeout=5).json()
        assert toxics == []  # reverted
    finally:
        for child in (service, server):
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
