from pathlib import Path

import pytest

from aftershock.errors import ExperimentInvalid
from aftershock.loading import load_file, load_text
from aftershock.model import Experiment
from aftershock.model.secrets import Secret

GOOD = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {name: latency}
spec:
  targets:
    db: {toxiproxy: {api: "${TOXI_API:-http://127.0.0.1:8474}", proxy: pg}}
  probes:
    web:
      http:
        url: http://127.0.0.1:8080/health
        headers: {Authorization: "Bearer ${secret:TOKEN}"}
  method:
    - {name: slow, fault: toxiproxy.latency, target: db, with: {latency: 300ms}, for: 10s}
"""


def test_substitution_defaults_and_secrets() -> None:
    docs, problems = load_text(GOOD, "good.yaml", env={"TOKEN": "s3cr3t"})
    assert problems == []
    doc = docs[0].document
    assert isinstance(doc, Experiment)
    assert doc.spec.targets["db"].toxiproxy is not None
    assert doc.spec.targets["db"].toxiproxy.api == "http://127.0.0.1:8474"
    header = doc.spec.probes["web"].http.headers["Authorization"]  # type: ignore[union-attr]
    assert isinstance(header, Secret)
    assert header.reveal() == "Bearer s3cr3t"
    assert header.names == ("TOKEN",)
    assert header.parts == ("s3cr3t",)
    assert "s3cr3t" not in doc.model_dump_json()


def test_env_value_wins_over_default_and_escape_keeps_literal() -> None:
    text = GOOD.replace("proxy: pg", "proxy: '$${X}'")
    docs, problems = load_text(text, "f.yaml", env={"TOKEN": "t", "TOXI_API": "http://localhost:9"})
    assert problems == []
    target = docs[0].document.spec.targets["db"].toxiproxy
    assert target is not None
    assert target.api == "http://localhost:9"
    assert target.proxy == "${X}"


def test_missing_secret_is_located() -> None:
    _, problems = load_text(GOOD, "good.yaml", env={})
    assert len(problems) == 1
    p = problems[0]
    assert (p.file, p.line, p.path) == (
        "good.yaml",
        11,
        "spec.probes.web.http.headers.Authorization",
    )
    assert "TOKEN" in p.message


def test_every_problem_of_a_file_is_reported_with_its_location() -> None:
    bad = (
        GOOD.replace("latency: 300ms", "latncy: 300ms")
        .replace("proxy: pg", "proxy: pg, colour: red")
        .replace("name: latency", "name: Latency!")
    )
    _, problems = load_text(bad, "bad.yaml", env={"TOKEN": "x"})
    got = {(p.line, p.path, p.message.split(";")[0].split(" ")[0]) for p in problems}
    assert (3, "metadata.name", "invalid") in got
    assert (6, "spec.targets.db.toxiproxy.colour", "unknown") in got
    assert (13, "spec.method[0].with.latncy", "unknown") in got
    assert (13, "spec.method[0].with.latency", "required") in got
    for p in problems:
        assert p.line > 0 and p.column > 0
        assert str(p).startswith(f"bad.yaml:{p.line}:{p.column}: {p.path}: ")


def test_several_documents_in_one_file_and_duplicate_keys() -> None:
    text = (
        GOOD
        + "---\n"
        + GOOD.replace("name: latency", "name: other").replace(
            "  probes:", "  probes: {}\n  probes:"
        )
    )
    docs, problems = load_text(text, "multi.yaml", env={"TOKEN": "x"})
    assert [d.name for d in docs] == ["latency"]
    assert [(p.line, p.message) for p in problems] == [(22, "duplicate key 'probes'")]


def test_unknown_fault_suggests_the_closest_name() -> None:
    text = GOOD.replace("toxiproxy.latency", "toxiproxy.latancy")
    _, problems = load_text(text, "f.yaml", env={"TOKEN": "x"})
    assert problems[0].path == "spec.method[0].fault"
    assert "did you mean 'toxiproxy.latency'" in problems[0].message


def test_syntax_errors_are_located() -> None:
    _, problems = load_text("a: [1, 2\nb: 3\n", "s.yaml", env={})
    assert len(problems) == 1
    assert problems[0].line >= 1
    assert "YAML syntax error" in problems[0].message


def test_python_tags_are_refused_safely() -> None:
    _, problems = load_text("!!python/object/apply:os.system ['true']\n", "t.yaml", env={})
    assert "unsupported value" in problems[0].message


def test_alias_bomb_is_refused_not_expanded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    _, problems = load_text("\n".join(lines) + "\n", "bomb.yaml", env={})
    assert "alias expansion bomb" in problems[0].message


def test_deep_nesting_is_refused() -> None:
    _, problems = load_text("[" * 5000 + "]" * 5000, "deep.yaml", env={})
    assert "nesting deeper" in problems[0].message


def test_non_utf8_and_oversized_files(tmp_path: Path) -> None:
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"kind: Experiment\nname: \xff\xfe\n")
    with pytest.raises(ExperimentInvalid) as info:
        load_file(bad)
    problem = info.value.problems[0]
    assert (problem.line, problem.column) == (2, 7)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (1024 * 1024 + 1))
    with pytest.raises(ExperimentInvalid, match="larger than 1 MiB"):
        load_file(big)


def test_merge_keys_do_not_override_explicit_keys() -> None:
    text = GOOD.replace(
        "    db: {toxiproxy:",
        "    base: &b {toxiproxy: {proxy: base, api: http://127.0.0.1:1}}\n    db: {<<: *b, toxiproxy:",
    )
    docs, problems = load_text(text, "m.yaml", env={"TOKEN": "x"})
    assert problems == []
    target = docs[0].document.spec.targets["db"].toxiproxy
    assert target is not None
    assert target.proxy == "pg"
