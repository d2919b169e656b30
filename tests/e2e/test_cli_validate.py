"""The CLI as a user runs it: a real subprocess, real files, exit codes and output."""

import ctypes
import json
import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


# ---------------------------------------------------------------- hostile input (issue 13)

MEMORY_LIMIT = 1024**3  # validating the examples needs well under 100 MiB


PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def _drop_file_read_override() -> None:
    """In the child: root without the capabilities that let it read any file."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_bounded(*args: str, as_plain_root: bool = False) -> subprocess.CompletedProcess[str]:
    """``run``, with the address space limited: a blow-up fails fast instead of eating the host."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        if as_plain_root:
            _drop_file_read_override()

    clean = {k: v for k, v in os.environ.items() if not k.startswith("AFTERSHOCK_ALLOW")}
    clean["AFTERSHOCK_HOME"] = "/nonexistent-aftershock-home"
    return subprocess.run(
        [sys.executable, "-m", "aftershock", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean,
        check=False,
        preexec_fn=limit,
    )


def located_lines(result: subprocess.CompletedProcess[str]) -> list[tuple[str, int, int, str]]:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    found = []
    for line in result.stdout.strip().splitlines():
        match = re.match(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<rest>.+)$", line)
        assert match, line
        assert int(match["line"]) >= 1 and int(match["col"]) >= 1, line
        found.append((match["file"], int(match["line"]), int(match["col"]), match["rest"]))
    return found


def merge_chain() -> str:
    lines = ["a0: &a0 {k: v}"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} {{<<: [" + ", ".join([f"*a{i - 1}"] * 8) + "]}")
    return "\n".join(lines) + "\n"


def test_a_merge_key_bomb_is_refused_within_the_memory_limit(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(merge_chain())
    assert bomb.stat().st_size < 700
    result = run_bounded("validate", "--no-allowlist", str(bomb))
    assert result.returncode == 2, result.stderr
    [(file, line, column, rest)] = located_lines(result)
    assert file == str(bomb)
    assert (line, column) > (1, 1)
    assert "more than 100000 nodes" in rest


def test_a_one_gib_healing_policy_is_refused_by_its_size(tmp_path: Path) -> None:
    with (tmp_path / "policy.yaml").open("wb") as handle:
        handle.truncate(MEMORY_LIMIT)  # sparse; reading it whole would exceed the memory limit
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        "apiVersion: aftershock.dev/v1alpha1\nkind: Experiment\nmetadata: {name: e}\nspec:\n"
        "  targets: {db: {toxiproxy: {proxy: pg}}}\n"
        "  method: [{name: s, fault: toxiproxy.down, target: db}]\n"
        "  healingPolicy: policy.yaml\n"
    )
    for command in ("validate", "run"):
        args = ("validate", "--no-allowlist") if command == "validate" else ("run", "--dry-run")
        result = run_bounded(*args, str(exp))
        assert result.returncode == 2, result.stdout + result.stderr
        [(file, line, column, rest)] = located_lines(result)
        assert (file, line, column) == (str(exp), 7, 3)
        assert rest.startswith("spec.healingPolicy: ")
        assert "larger than 1 MiB" in rest


def test_special_files_are_refused_by_name_and_nothing_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    paths = [str(fifo), str(loop), "/dev/zero", "/dev/null"]
    for command in (["validate", "--no-allowlist"], ["run"], ["heal"]):
        for path in paths:
            result = run_bounded(*command, path)
            assert result.returncode == 2, (command, path, result.stderr)
            [(file, line, column, rest)] = located_lines(result)
            assert (file, line, column) == (path, 1, 1)
            assert "not a regular file" in rest or "symbolic links" in rest


def test_stdin_as_a_pipe_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aftershock", "validate", "--no-allowlist", "/dev/stdin"],
        input="apiVersion: x\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    [(file, _, _, rest)] = located_lines(result)
    assert file == "/dev/stdin"
    assert "FIFO" in rest


def test_an_unreadable_file_is_refused_by_name(tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("apiVersion: aftershock.dev/v1alpha1\n")
    secret.chmod(0)
    try:
        # root reads any file: the child drops the capabilities that allow it.
        result = run_bounded("validate", "--no-allowlist", str(secret), as_plain_root=True)
    except subprocess.SubprocessError as exc:
        pytest.skip(f"cannot drop CAP_DAC_OVERRIDE here: {exc}")
    assert result.returncode == 2, result.stderr
    [(file, line, column, rest)] = located_lines(result)
    assert (file, line, column) == (str(secret), 1, 1)
    assert rest == "cannot read: permission denied"


def test_terminal_escapes_in_the_input_are_never_printed_raw(tmp_path: Path) -> None:
    bad = tmp_path / "esc.yaml"
    bad.write_text(
        "apiVersion: aftershock.dev/v1alpha1\nkind: Experiment\nmetadata: {name: a}\n"
        'spec:\n  "\\e]0;pwned\\a\\e[2J": 1\n  "\\x9b31m": 2\n  \u202eevil: 3\n  method: []\n'
    )
    for output in ("text", "json"):
        result = run_bounded("validate", "--no-allowlist", "-o", output, str(bad))
        assert result.returncode == 2
        for char in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert char not in result.stdout + result.stderr, (output, repr(char))
    text = run_bounded("validate", "--no-allowlist", str(bad)).stdout
    assert f"{bad}:5:3: spec.\\x1b]0;pwned\\x07\\x1b[2J: unknown field" in text
    assert f"{bad}:6:3: spec.\\x9b31m: unknown field" in text
    assert f"{bad}:7:3: spec.\\u202eevil: unknown field" in text


def test_a_syntax_error_names_where_the_construct_began(tmp_path: Path) -> None:
    bad = tmp_path / "open.yaml"
    lines = [f"k{i}: {i}" for i in range(1, 14)] + ["bad:  {a: 1,"]
    bad.write_text("\n".join(lines) + "\n")
    result = run_bounded("validate", "--no-allowlist", str(bad))
    assert result.returncode == 2
    [(_, line, column, rest)] = located_lines(result)
    assert (line, column) == (15, 1)
    assert rest.startswith("YAML syntax error: ")
    assert rest.endswith("(the flow mapping started at 14:7)")


HOSTILE = {
    "bool.yaml": "a: !!bool maybe\n",
    "int.yaml": 'a: !!int ""\n',
    "float.yaml": 'a: !!float ""\n',
    "ts.yaml": 'a: !!timestamp ""\n',
    "ts2.yaml": "a: !!timestamp 2020-1-1 1:1:1\n",
    "verbatim.yaml": "a: !<tag:yaml.org,2002:bool> nope\n",
    "u1.yaml": 'a: "\\U7fffffff"\n',
    "u2.yaml": 'a: "\\UFFFFFFFF"\n',
    "u3.yaml": 'a: "\\U00110000"\n',
    "flow.yaml": "[" * 1000 + "]" * 1000 + "\n",
    "self-merge.yaml": "a: &a {b: 1, <<: *a}\n",
    "fullwidth.yaml": (
        "apiVersion: aftershock.dev/v1alpha1\nkind: Experiment\nmetadata: {name: a}\n"
        "spec:\n  targets: {db: {toxiproxy: {proxy: pg}}}\n"
        "  method: [{name: s, fault: toxiproxy.latency, target: db,"
        " with: {latency: \uff13\uff10\uff10ms, toxicity: true}}]\n"
    ),
}


def test_every_hostile_sample_is_one_located_problem(tmp_path: Path) -> None:
    for name, text in HOSTILE.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    result = run_bounded("validate", "--no-allowlist", str(tmp_path))
    assert result.returncode == 2
    found = located_lines(result)
    files = {Path(file).name for file, _, _, _ in found}
    assert files == set(HOSTILE)
    fullwidth = sorted(rest for file, _, _, rest in found if file.endswith("fullwidth.yaml"))
    assert [r.split(":")[0] for r in fullwidth] == [
        "spec.method[0].with.latency",
        "spec.method[0].with.toxicity",
    ]
