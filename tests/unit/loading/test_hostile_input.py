"""Hostile YAML gets located problems: never a traceback, never 0:0, never raw control bytes."""

from pathlib import Path

import pytest

from aftershock.errors import ExperimentInvalid, Problem
from aftershock.loading import load_file, load_text
from aftershock.loading.problems import escape_text
from aftershock.loading.yamltree import MAX_DEPTH


def problems_of(text: str) -> list[Problem]:
    docs, problems = load_text(text, "h.yaml", env={})
    assert problems, "expected the input to be refused"
    assert not docs
    for p in problems:
        assert p.line >= 1 and p.column >= 1, p
    return problems


# ---------------------------------------------------------------- item 5: scalar tags


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!!bool maybe", "bool"),
        ('!!int ""', "int"),
        ('!!float ""', "float"),
        ('!!timestamp ""', "timestamp"),
        ("!!timestamp 2020-1-1 1:1:1", "timestamp"),
        ("!<tag:yaml.org,2002:bool> nope", "bool"),
        ("!!int 0x", "int"),
        ("!!int \uff13", "int"),  # int() would read a fullwidth digit as 3
        ("!!float 1" + "0" * 200, "float"),
    ],
)
def test_scalar_tags_that_do_not_fit_their_value_are_located(value: str, tag: str) -> None:
    text = f"apiVersion: aftershock.dev/v1alpha1\nkind: Experiment\nmetadata:\n  name: {value}\n"
    [problem] = problems_of(text)
    assert (problem.line, problem.column, problem.path) == (4, 9, "metadata.name")
    assert problem.message.startswith(f"invalid !!{tag} value")


def test_a_badly_tagged_key_is_located() -> None:
    [problem] = problems_of("a: 1\n!!bool maybe: 2\n")
    assert (problem.line, problem.column) == (2, 1)
    assert "invalid !!bool value 'maybe'" in problem.message


def test_base_60_numbers_are_bounded_in_length() -> None:
    # YAML 1.1 reads 1:59:59:... as one base-60 integer; a long one costs quadratic time.
    [problem] = problems_of("a: 1" + ":59" * 100_000 + "\n")
    assert (problem.line, problem.column, problem.path) == (1, 4, "a")
    assert "longer than" in problem.message


# ---------------------------------------------------------------- item 6: escapes


@pytest.mark.parametrize("digits", ["7fffffff", "FFFFFFFF", "00110000"])
def test_escapes_above_the_last_code_point_are_located(digits: str) -> None:
    [problem] = problems_of(f'a: 1\nb: "x\\U{digits}"\n')
    assert (problem.line, problem.column) == (2, 6)
    assert f"\\U{digits}" in problem.message
    assert "U+10FFFF" in problem.message


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\uDC00x"])
def test_surrogate_escapes_are_refused(escape: str) -> None:
    [problem] = problems_of(f'a: "{escape}"\n')
    assert (problem.line, problem.column, problem.path) == (1, 4, "a")
    assert "surrogate" in problem.message


# ---------------------------------------------------------------- item 7: merge chains


def merge_chain(levels: int = 9, width: int = 8) -> str:
    lines = ["a0: &a0 {k: v}"]
    for i in range(1, levels + 1):
        sources = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"a{i}: &a{i} {{<<: [{sources}]}}")
    return "\n".join(lines) + "\n"


def test_a_merge_key_chain_is_counted_and_refused() -> None:
    text = merge_chain()
    assert len(text) < 700
    [problem] = problems_of(text)
    assert "more than 100000 nodes" in problem.message
    # Reported at the outermost << whose expansion crossed the limit.
    line = int(problem.path.removeprefix("a")) + 1
    assert (problem.line, problem.column) == (line, 10)


def test_merge_chains_within_the_limit_still_merge() -> None:
    text = (
        "apiVersion: aftershock.dev/v1alpha1\nkind: Experiment\nmetadata: {name: m}\n"
        "spec:\n  targets:\n"
        "    a: {toxiproxy: &t {api: 'http://127.0.0.1:1', proxy: pa}}\n"
        "    b: {toxiproxy: &u {<<: *t, proxy: pb}}\n"
        "    c: {toxiproxy: {<<: [*u, *t]}}\n"
        "  method:\n    - {name: s, fault: toxiproxy.down, target: c}\n"
    )
    docs, problems = load_text(text, "m.yaml", env={})
    assert problems == []
    targets = docs[0].document.spec.targets
    proxies = {name: t.toxiproxy for name, t in targets.items()}
    assert {n: (p.proxy, p.api) for n, p in proxies.items() if p} == {
        "a": ("pa", "http://127.0.0.1:1"),
        "b": ("pb", "http://127.0.0.1:1"),
        "c": ("pb", "http://127.0.0.1:1"),
    }


def test_a_mapping_that_merges_itself_is_located() -> None:
    [problem] = problems_of("x: 1\na: &a {b: 1, <<: *a}\n")
    assert (problem.line, problem.column, problem.path) == (2, 14, "a")
    assert "merges itself" in problem.message


def test_a_mapping_that_merges_an_enclosing_mapping_is_located() -> None:
    [problem] = problems_of("a: &a\n  b:\n    <<: *a\n")
    assert (problem.line, problem.column) == (3, 5)
    assert "merges itself" in problem.message


def test_an_alias_to_an_enclosing_collection_is_a_located_cycle() -> None:
    [problem] = problems_of("x: 1\na: &a [1, *a]\n")
    assert (problem.line, problem.column, problem.path) == (2, 4, "a[1]")
    assert "cycle" in problem.message


# ---------------------------------------------------------------- item 9: locations, escapes


@pytest.mark.parametrize("depth", [MAX_DEPTH + 2, 1000, 5000, 100_000])
def test_deep_flow_nesting_is_located(depth: int) -> None:
    [problem] = problems_of("a: " + "[" * depth + "]" * depth + "\n")
    assert (problem.line, problem.column) == (1, 4 + MAX_DEPTH)
    assert "nesting deeper than 64 levels" in problem.message


def test_deep_block_nesting_is_located() -> None:
    text = "".join(f"{'  ' * i}k{i}:\n" for i in range(200)) + "  " * 200 + "v\n"
    [problem] = problems_of(text)
    assert problem.line == MAX_DEPTH + 1
    assert "nesting deeper" in problem.message


@pytest.mark.parametrize(
    ("key", "escaped"),
    [
        ('"\\e[31mred\\e[0m"', "\\x1b[31mred\\x1b[0m"),
        ('"\\x9b2J"', "\\x9b2J"),  # C1 CSI
        ('"a\\x07b"', "a\\x07b"),  # BEL
        ("\u202eevil", "\\u202eevil"),  # right-to-left override, raw in the file
        ("ab\u2066c", "ab\\u2066c"),  # left-to-right isolate
        ('"tab\\there"', "tab\\there"),
        ('"nl\\nx"', "nl\\nx"),
    ],
)
def test_control_characters_in_echoed_input_are_escaped(key: str, escaped: str) -> None:
    text = (
        "apiVersion: aftershock.dev/v1alpha1\nkind: Experiment\nmetadata: {name: a}\n"
        f"spec:\n  {key}: 1\n"
    )
    problems = problems_of(text)
    unknown = [p for p in problems if p.message == "unknown field"]
    assert [p.path for p in unknown] == [f"spec.{escaped}"]
    for p in problems:
        assert str(p).isprintable(), repr(str(p))


def test_escaping_is_printable_and_idempotent() -> None:
    raw = "\x1b]0;title\x07\u202e\x85\ud800\U000e0001 ok"
    once = escape_text(raw)
    assert once.isprintable()
    assert escape_text(once) == once
    assert once == "\\x1b]0;title\\x07\\u202e\\x85\\ud800\\U000e0001 ok"


# ---------------------------------------------------------------- item 10: both marks


def test_an_unclosed_flow_mapping_names_where_it_started() -> None:
    lines = [f"k{i}: {i}" for i in range(1, 14)]
    lines.append("bad:  {a: 1,")  # line 14, the { at column 7
    text = "\n".join(lines) + "\n"
    [problem] = problems_of(text)
    assert (problem.line, problem.column) == (15, 1)
    assert problem.message.startswith("YAML syntax error: ")
    assert problem.message.endswith("(the flow mapping started at 14:7)")


def test_an_unclosed_quote_names_where_it_started() -> None:
    [problem] = problems_of('a: 1\nb: "open\n\nc: 2\n')
    assert problem.line == 5
    assert problem.message.endswith("(the quoted scalar started at 2:4)")


def test_a_duplicate_anchor_names_the_first() -> None:
    [problem] = problems_of("a: &x 1\nb: &x 2\n")
    assert (problem.line, problem.column) == (2, 4)
    assert problem.message == "YAML syntax error: found duplicate anchor 'x' (first at 1:4)"


# ---------------------------------------------------------------- the healing policy key

EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {name: e}
spec:
  targets:
    db: {toxiproxy: {api: http://127.0.0.1:8474, proxy: pg}}
  method:
    - {name: slow, fault: toxiproxy.latency, target: db, with: {latency: 300ms}, for: 10s}
  healingPolicy: POLICY
  expect: {recoverWithin: 30s, healedBy: restart}
"""

POLICY = """\
apiVersion: aftershock.dev/v1alpha1
kind: HealingPolicy
metadata: {name: p}
spec:
  targets: {db: {toxiproxy: {api: http://127.0.0.1:8474, proxy: pg}}}
  watch:
    web: {http: {url: http://127.0.0.1:8080/}}
  playbooks:
    - name: restart
      when: {unhealthy: web}
      steps: [{action: toxiproxy.reset, target: db}]
"""


def write(tmp_path: Path, policy: str) -> Path:
    (tmp_path / "p.yaml").write_text(policy)
    exp = tmp_path / "e.yaml"
    exp.write_text(EXPERIMENT.replace("POLICY", "p.yaml"))
    return exp


def test_a_valid_policy_reference_loads(tmp_path: Path) -> None:
    assert [d.name for d in load_file(write(tmp_path, POLICY))] == ["e"]


def test_an_invalid_policy_is_reported_at_the_key_and_in_its_own_file(tmp_path: Path) -> None:
    exp = write(tmp_path, POLICY.replace("unhealthy: web", "unhealthy: wbe"))
    with pytest.raises(ExperimentInvalid) as info:
        load_file(exp)
    at_key, *own = info.value.problems
    assert (at_key.file, at_key.line, at_key.column) == (str(exp), 9, 3)
    assert at_key.path == "spec.healingPolicy"
    policy = str(tmp_path / "p.yaml")
    assert f"the first at {policy}:10:14" in at_key.message
    assert [(p.file, p.line, p.path) for p in own] == [
        (policy, 10, "spec.playbooks[0].when.unhealthy")
    ]


def test_an_unknown_healed_by_is_reported_at_its_key(tmp_path: Path) -> None:
    exp = write(tmp_path, POLICY.replace("name: restart", "name: reboot"))
    with pytest.raises(ExperimentInvalid) as info:
        load_file(exp)
    [problem] = info.value.problems
    assert (problem.line, problem.column, problem.path) == (10, 32, "spec.expect.healedBy")
    assert "'restart'" in problem.message


def test_a_policy_file_with_two_policies_is_refused_at_the_key(tmp_path: Path) -> None:
    exp = write(tmp_path, POLICY + "---\n" + POLICY.replace("name: p}", "name: q}"))
    with pytest.raises(ExperimentInvalid) as info:
        load_file(exp)
    [problem] = info.value.problems
    assert (problem.line, problem.column, problem.path) == (9, 3, "spec.healingPolicy")
    assert "expected one" in problem.message
