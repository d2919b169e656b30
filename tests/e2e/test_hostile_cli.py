"""The CLI against a hostile user: garbage journals, unwritable paths, a broken home, markup.

Every case runs the real command in a subprocess and asserts its exit code and
that the failure is one ``error:`` line (never a traceback).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.docker import free_port, wait_for

pytestmark = pytest.mark.slow

REAL = Path(__file__).parents[1] / "unit" / "reporting" / "data" / "real_run.jsonl"

EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: hostile}}
spec:
  targets:
    svc: {{process: {{command: ["{python}", -m, aftershock.demo.service, --port, "{port}"], ready: "127.0.0.1:{port}"}}}}
  probes:
    web: {{http: {{url: "http://127.0.0.1:{port}/health", timeout: 1s}}, every: 200ms}}
  steadyState:
    - {{probe: web, over: 600ms, expect: {{successRatio: ">= 0.5"}}}}
  method:
    - {{name: freeze, fault: process.stop, target: svc, for: {freeze}}}
  expect: {{recoverWithin: 20s}}
"""

POLICY = """\
apiVersion: aftershock.dev/v1alpha1
kind: HealingPolicy
metadata: {{name: hostile-healer}}
spec:
  targets:
    svc: {{process: {{command: ["{python}", -m, aftershock.demo.service, --port, "{port}"], ready: "127.0.0.1:{port}"}}}}
  watch:
    health: {{http: {{url: "http://127.0.0.1:{port}/health"}}, every: 1s, target: svc}}
  playbooks:
    - name: revive
      when: {{unhealthy: health}}
      steps:
        - {{action: process.start, target: svc}}
"""


def aftershock(
    *args: str, home: Path | str, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aftershock", *args],
        env={**os.environ, "AFTERSHOCK_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


def one_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The single ``error:`` line of a failed command, checked for its code and contents."""
    everything = result.stdout + result.stderr
    assert result.returncode == code, everything
    assert "Traceback" not in everything
    errors = [line for line in everything.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, everything
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def experiment(tmp_path: Path, freeze: str = "1s") -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(EXPERIMENT.format(python=sys.executable, port=free_port(), freeze=freeze))
    return path


def journal_records(home: Path) -> list[dict[str, object]]:
    files = sorted((home / "journal").glob("*.jsonl")) if (home / "journal").is_dir() else []
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line]


# ---------------------------------------------------------------- report (item 15)


@pytest.mark.parametrize(
    "content",
    [bytes(range(256)) * 8, b'{"name": "left-pad", "version": "1.3.0"}\n', b""],
    ids=["random-bytes", "other-json", "empty"],
)
def test_report_rejects_a_file_that_is_not_a_journal(tmp_path: Path, content: bytes) -> None:
    thing = tmp_path / "thing.jsonl"
    thing.write_bytes(content)
    out = tmp_path / "out"
    result = aftershock("report", str(thing), "--out", str(out), home=tmp_path / "home")
    one_error(result, 2, str(thing), "not an aftershock journal")
    assert not (out / "report.html").exists()


def test_report_renders_a_crashed_journal_skipping_bad_records(tmp_path: Path) -> None:
    lines = REAL.read_text().splitlines()
    samples = [i for i, line in enumerate(lines) if '"event":"sample"' in line]
    lines[samples[1]] = re.sub(r'"t":[0-9.e-]+', '"t":1e999', lines[samples[1]])
    lines[samples[2]] = re.sub(r'"t":[0-9.e-]+', '"t":NaN', lines[samples[2]])
    torn = "\n".join(lines[:-1]) + "\n" + lines[-1][:60]  # the verdict, cut by a crash
    journal = tmp_path / "crashed.jsonl"
    journal.write_text(torn)
    out = tmp_path / "out"
    result = aftershock("report", str(journal), "--out", str(out), home=tmp_path / "home")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == str(out / "report.html")
    assert f"warning: {journal}: 2 journal problem(s) skipped" in result.stderr
    page = (out / "report.html").read_text()
    assert "INTERRUPTED" in page
    assert "torn last line" in page
    assert "2 sample record(s) skipped (NaN or infinity)" in page
    assert not re.search(r'(?:x|y|x1|x2|cx|cy|d)="[^"]*(?:nan|inf)', page, re.I)
    assert "sample record(s) skipped" in (out / "summary.md").read_text()


@pytest.mark.parametrize(
    ("option", "value", "why"),
    [
        ("--out", "/dev/null/x", "/dev/null is not a directory"),
        ("--out", "{file}", "exists and is not a directory"),
        ("--out", "{file}/sub", "is not a directory"),
        ("--junit", "{dir}", "is a directory"),
        ("--junit", "/dev/null/x/junit.xml", "/dev/null is not a directory"),
    ],
)
def test_report_refuses_an_unwritable_output(
    tmp_path: Path, option: str, value: str, why: str
) -> None:
    (tmp_path / "a-file").write_text("keep me")
    (tmp_path / "a-dir").mkdir()
    target = value.format(file=tmp_path / "a-file", dir=tmp_path / "a-dir")
    args = ["report", str(REAL), option, target]
    if option == "--junit":
        args += ["--out", str(tmp_path / "out")]
    result = aftershock(*args, home=tmp_path / "home")
    one_error(result, 2, option, target, why)
    assert (tmp_path / "a-file").read_text() == "keep me"
    assert not (tmp_path / "out").exists()  # checked before anything is written


@pytest.mark.parametrize("value", ["{file}", "/dev/null/x", "{file}/sub"])
def test_schema_out_refuses_an_unusable_directory(tmp_path: Path, value: str) -> None:
    (tmp_path / "a-file").write_text("keep me")
    target = value.format(file=tmp_path / "a-file")
    result = aftershock("schema", "--crd", "--out", target, home=tmp_path / "home")
    one_error(result, 2, "--out", target)
    assert (tmp_path / "a-file").read_text() == "keep me"


def test_schema_out_writes_one_file_per_crd(tmp_path: Path) -> None:
    result = aftershock("schema", "--crd", "--out", str(tmp_path / "crds"), home=tmp_path / "h")
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "crds").iterdir())
    assert written == sorted(Path(line).name for line in result.stdout.split())
    assert len(written) >= 2


# ---------------------------------------------------------------- run outputs (item 16)


@pytest.mark.parametrize(
    ("option", "value"),
    [("--report", "/dev/null/x"), ("--report", "{file}"), ("--junit", "{dir}")],
)
def test_run_refuses_unwritable_outputs_before_touching_anything(
    tmp_path: Path, option: str, value: str
) -> None:
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-dir").mkdir()
    target = value.format(file=tmp_path / "a-file", dir=tmp_path / "a-dir")
    home = tmp_path / "home"
    result = aftershock("run", str(experiment(tmp_path)), option, target, home=home)
    one_error(result, 2, option, target)
    assert not home.exists()  # no journal, no ledger, no process started


def test_a_passed_run_keeps_exit_0_when_its_report_cannot_be_written(tmp_path: Path) -> None:
    home, report, junit = tmp_path / "home", tmp_path / "report", tmp_path / "ci" / "junit.xml"
    exp = experiment(tmp_path)
    outputs = ["--report", str(report), "--junit", str(junit)]
    child = subprocess.Popen(
        [sys.executable, "-m", "aftershock", "run", str(exp), *outputs],
        env={**os.environ, "AFTERSHOCK_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Writable when checked; a directory takes the JUnit file's place while the run goes on.
    assert wait_for(lambda: bool(journal_records(home)), timeout=30)
    junit.mkdir(parents=True)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, out + err
    assert "PASSED" in out
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert errors[0].startswith(f"error: cannot write report: {junit}: ")
    assert (report / "report.html").is_file()  # what could be written was


# ---------------------------------------------------------------- the state directory (item 17)


def _home_commands(tmp_path: Path) -> dict[str, list[str]]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(python=sys.executable, port=free_port()))
    (tmp_path / "schedules").mkdir(exist_ok=True)
    exp = str(experiment(tmp_path))
    return {
        "run": ["run", exp],
        "run --dry-run": ["run", exp, "--dry-run"],
        "recover": ["recover"],
        "history": ["history"],
        "lever engage": ["lever", "engage"],
        "lever release": ["lever", "release"],
        "lever status": ["lever", "status"],
        "heal": ["heal", str(policy), "--listen", f"127.0.0.1:{free_port()}"],
        "schedule": ["schedule", str(tmp_path / "schedules")],
        "demo": ["demo", "--dir", str(tmp_path / "demo")],
    }


@pytest.mark.parametrize("kind", ["not-a-dir-path", "a-file"])
def test_every_command_names_an_unusable_state_directory(tmp_path: Path, kind: str) -> None:
    home = Path("/dev/null/x")
    if kind == "a-file":
        home = tmp_path / "home-file"
        home.write_text("")
    for name, args in _home_commands(tmp_path).items():
        result = aftershock(*args, home=home, timeout=60)
        line = one_error(result, 2, f"state directory {home}")
        assert "unusable" in line, name
    # report reads a journal and writes where it is told: it needs no state directory.
    result = aftershock("report", str(REAL), "--out", str(tmp_path / "out"), home=home)
    assert result.returncode == 0, result.stderr


def test_a_state_file_that_cannot_be_created_is_one_line_and_exit_4(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "runs").write_text("")  # where the run's liveness lock goes
    result = aftershock("run", str(experiment(tmp_path)), home=home)
    one_error(result, 4, str(home / "runs"))


# ---------------------------------------------------------------- markup (item 18)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_markup_in_a_process_log_is_printed_as_text(tmp_path: Path) -> None:
    port = free_port()
    doc = EXPERIMENT.format(python=sys.executable, port=port, freeze="1s").replace(
        f'[{json.dumps(sys.executable)}, -m, aftershock.demo.service, --port, "{port}"]',
        f"""[{json.dumps(sys.executable)}, -c, "print('[/x] boom [bold]'); raise SystemExit(3)"]""",
    )
    assert "SystemExit" in doc
    exp = tmp_path / "exp.yaml"
    exp.write_text(doc)
    result = aftershock("run", str(exp), home=tmp_path / "home")
    # Before: MarkupError, exit 1, no summary. The log tail is in the error, verbatim.
    one_error(result, 4, "svc", "[/x] boom [bold]")


def test_markup_in_a_proxy_name_is_printed_as_text(tmp_path: Path) -> None:
    api = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aftershock", "proxy", "--listen", f"127.0.0.1:{api}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        exp = tmp_path / "exp.yaml"
        exp.write_text(
            "apiVersion: aftershock.dev/v1alpha1\nkind: Experiment\n"
            "metadata: {name: markup}\nspec:\n"
            f'  targets: {{front: {{toxiproxy: {{api: "http://127.0.0.1:{api}", '
            'proxy: "nope[/red]"}}}\n'
            "  method:\n"
            "    - {name: slow, fault: toxiproxy.latency, target: front,"
            " with: {latency: 100ms}, for: 1s}\n"
        )
        home = tmp_path / "home"
        assert wait_for(lambda: _listening(api), timeout=20)
        result = aftershock("run", str(exp), home=home)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    verdict = next(line for line in result.stdout.splitlines() if line.startswith("ERRORED"))
    assert "proxy 'nope[/red]' not found" in verdict
    assert "journal" in result.stdout
    (journal,) = (home / "journal").glob("*.jsonl")
    assert str(journal) in "".join(result.stdout.split())


# ---------------------------------------------------------------- history (item 22)


def _history_row(text: str, experiment_name: str) -> dict[str, str]:
    rows = [
        [cell.strip() for cell in re.split(r"[│┃]", line)[1:-1]]
        for line in text.splitlines()
        if line.count("│") > 3 or line.count("┃") > 3
    ]
    header = rows[0]
    (row,) = [r for r in rows[1:] if experiment_name in r]
    return dict(zip(header, row, strict=True))


def test_history_counts_a_run_stopped_by_sigterm_as_interrupted(tmp_path: Path) -> None:
    home = tmp_path / "home"
    child = subprocess.Popen(
        [sys.executable, "-m", "aftershock", "run", str(experiment(tmp_path, freeze="60s"))],
        env={**os.environ, "AFTERSHOCK_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert wait_for(
        lambda: any(r["event"] == "fault.applied" for r in journal_records(home)), timeout=30
    )
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, out + err
    time.sleep(0.1)
    history = aftershock("history", home=home)
    assert history.returncode == 0, history.stderr
    row = _history_row(history.stdout, "hostile")
    assert (row["runs"], row["interrupted"], row["errored"]) == ("1", "1", "0"), row
