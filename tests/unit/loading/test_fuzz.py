"""Generated and mutated documents never crash the loader, and every rejection is located.

Every generated input ends in either valid documents or problems located at
line >= 1, column >= 1, printable as they are (control characters escaped),
and never in any other exception. Inputs that could blow up (alias and merge
chains) are loaded in a separate process whose memory and per-document CPU
time are limited (``bounded_loader.py``), and the size of what was built is
checked against the node limit.
"""

import copy
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aftershock.errors import ExperimentInvalid, Problem
from aftershock.loading import load_file, load_text
from aftershock.loading.yamltree import MAX_NODES

EXAMPLE = yaml.safe_load("""
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {name: fuzz, labels: {team: a}}
spec:
  targets:
    db: {toxiproxy: {api: http://127.0.0.1:8474, proxy: pg}}
    api: {docker: {names: [api], pick: 1}}
  probes:
    web: {http: {url: http://127.0.0.1:8080/health, timeout: 500ms}, every: 1s}
  slo:
    avail: {probe: web, objective: 99.9%, latency: 250ms, window: 28d}
  steadyState:
    - {probe: web, over: 10s, expect: {successRatio: ">= 0.99", p95: "< 200ms"}}
  method:
    - {name: slow, fault: toxiproxy.latency, target: db, with: {latency: 300ms}, for: 60s}
    - {name: kill, fault: docker.kill, target: api, at: 20s}
  abort:
    - {budget: avail, spentAbove: 5%}
  expect: {recoverWithin: 30s}
  budget: {slo: avail, maxSpend: 2%}
""")

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["300ms", "99%", "-1s", "1e309", "${X}", "${secret:Y}", "${", "999999999w"]),
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: Any, rnd: random.Random, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    path = rnd.choice(_paths(doc)[1:])
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    op = rnd.randrange(4)
    if op == 0:
        parent[path[-1]] = value
    elif op == 1 and isinstance(parent, dict):
        del parent[path[-1]]
    elif op == 2 and isinstance(parent, dict):
        parent[f"{path[-1]}x"] = value
    else:
        nested: Any = value
        for _ in range(rnd.randrange(1, 80)):
            nested = [nested]
        parent[path[-1]] = nested
    return doc


def _located(problems: list[Problem], file: str = "fuzz.yaml") -> None:
    for p in problems:
        assert p.file == file
        assert p.message
        assert p.line >= 1 and p.column >= 1, p
        assert str(p).isprintable(), repr(str(p))


def _check(text: str) -> list[Problem]:
    docs, problems = load_text(text, "fuzz.yaml", env={"X": "1"})
    assert docs or problems
    _located(problems)
    return problems


@settings(max_examples=1200, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32), value=JSONISH)
def test_mutated_documents(seed: int, value: Any) -> None:
    doc = _mutate(EXAMPLE, random.Random(seed), value)
    _check(yaml.safe_dump(doc, sort_keys=False))
    _, problems = load_text(yaml.safe_dump(doc), "fuzz.yaml", env={"X": "1"})
    # A rejection of a document that parsed as a mapping points into the document.
    for p in problems:
        assert p.line >= 1 and p.column >= 1


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    _check(text)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=JSONISH)
def test_random_yaml_values(value: Any) -> None:
    _check(yaml.safe_dump(value))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=200))
def test_random_bytes(tmp_path_factory: Any, data: bytes) -> None:
    path: Path = tmp_path_factory.mktemp("b") / "f.yaml"
    path.write_bytes(data)
    try:
        load_file(path)
    except ExperimentInvalid as exc:
        problems = exc.problems
    else:
        return
    assert problems
    _located(problems, str(path))


# ---------------------------------------------------------------- tags

CORE_TAGS = [
    "null", "bool", "int", "float", "str", "binary", "timestamp", "merge", "value",
    "yaml", "omap", "pairs", "set", "seq", "map",
]  # fmt: skip
TAGS = st.one_of(
    st.sampled_from(CORE_TAGS).map(lambda t: f"!!{t}"),
    st.sampled_from(CORE_TAGS).map(lambda t: f"!<tag:yaml.org,2002:{t}>"),
    st.sampled_from(
        [
            "!",
            "!foo",
            "!<!>",
            "!<tag:example.com,2000:app/x>",
            "!<tag:yaml.org,2002:>",
            "!<tag:yaml.org,2002:bool >",
            "!!python/object/apply:os.system",
            "!!python/name:os.system",
            "!e!x",
            "!!",
        ]
    ),
)
JUNK = st.one_of(
    st.sampled_from(
        [
            "", '""', "''", "maybe", "nope", "0x", "0o9", "0b2", "1:1:1", "2020-1-1 1:1:1",
            "2020-13-45", "2020-02-30", "1e999", ".nan", "-.inf", "~", "=", "<<", "1_000",
            "\uff13\uff10\uff10", "\u0663", "-", "[]", "{}", "[1, 2]", "{a: 1}", "*nope",
            "&a x", "|\n  text", "AAAA====", "!!!",
        ]
    ),
    st.text(max_size=12).map(json.dumps),
    st.from_regex(r"[A-Za-z0-9:._ +-]{0,14}", fullmatch=True),
    st.integers(-(10**200), 10**200).map(str),
)  # fmt: skip
EXAMPLE_LINES = yaml.safe_dump(EXAMPLE, sort_keys=False).splitlines()


def _replace_value(line_index: int, new: str, as_key: bool) -> str:
    """The example with one line's value (or key) replaced by ``new``."""
    lines = list(EXAMPLE_LINES)
    candidates = [i for i, line in enumerate(lines) if ": " in line or line.endswith(":")]
    index = candidates[line_index % len(candidates)]
    line = lines[index]
    indent = line[: len(line) - len(line.lstrip(" -"))]
    key, _, value = line[len(indent) :].partition(":")
    lines[index] = f"{indent}{new}:{value}" if as_key else f"{indent}{key}: {new}"
    return "\n".join(lines) + "\n"


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(tag=TAGS, junk=JUNK, where=st.integers(0, 10_000), as_key=st.booleans())
def test_tagged_scalars_with_junk_values(tag: str, junk: str, where: int, as_key: bool) -> None:
    _check(_replace_value(where, f"{tag} {junk}", as_key))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(tag=TAGS, junk=JUNK)
def test_tagged_scalars_alone_and_in_flow(tag: str, junk: str) -> None:
    _check(f"{tag} {junk}\n")
    _check(f"a: [{tag} {junk}, {{k: {tag} {junk}}}]\n")


# ---------------------------------------------------------------- escapes

ESCAPES = st.one_of(
    st.integers(0, 0xFFFFFFFF).map(lambda n: f"\\U{n:08x}"),
    st.integers(0x110000, 0xFFFFFFFF).map(lambda n: f"\\U{n:08X}"),
    st.integers(0xD800, 0xDFFF).map(lambda n: f"\\u{n:04x}"),
    st.integers(0, 0xFFFF).map(lambda n: f"\\u{n:04x}"),
    st.integers(0, 0xFF).map(lambda n: f"\\x{n:02x}"),
    st.sampled_from(
        ["\\e", "\\0", "\\a", "\\N", "\\_", "\\L", "\\P", "\\q", "\\U12", "\\x", "\\u12",
         "\\", "\\U0010FFFF", "\\U00110000", "\\UFFFFFFFF", "\\ud83d\\ude00"]
    ),
)  # fmt: skip
QUOTED = st.lists(st.one_of(ESCAPES, st.text(alphabet="ab ${}:", max_size=3)), max_size=6).map(
    lambda parts: '"' + "".join(parts) + '"'
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(quoted=QUOTED, where=st.integers(0, 10_000), as_key=st.booleans())
def test_escapes_in_keys_and_values(quoted: str, where: int, as_key: bool) -> None:
    _check(_replace_value(where, quoted, as_key))


# ---------------------------------------------------------------- control characters, BOMs

CONTROLS = st.one_of(
    st.integers(0, 0x1F).map(chr),
    st.integers(0x7F, 0x9F).map(chr),
    st.sampled_from(
        ["\u200b", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
         "\u2066", "\u2067", "\u2068", "\u2069", "\u061c", "\ufeff", "\u2028", "\u2029",
         "\u00a0", "\u3000", "\ufffe", "\U000e0001"]
    ),
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    inserts=st.lists(st.tuples(st.integers(0, 10_000), CONTROLS), min_size=1, max_size=4),
    key=st.lists(CONTROLS, min_size=1, max_size=3),
)
def test_control_characters_raw_and_escaped(inserts: list[tuple[int, str]], key: list[str]) -> None:
    text = "\n".join(EXAMPLE_LINES) + "\n"
    for at, char in inserts:
        pos = at % (len(text) + 1)
        text = text[:pos] + char + text[pos:]
    _check(text)
    escaped = "".join(f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}" for c in key)
    problems = _check(_replace_value(5, f'"k{escaped}"', as_key=True))
    assert any("unknown field" in p.message or "invalid" in p.message for p in problems)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for the files of every example of a test."""
    return tmp_path_factory.mktemp("fuzz")


BOMS = [b"", b"\xef\xbb\xbf", b"\xef\xbb\xbf" * 2, b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff"]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    bom=st.sampled_from(BOMS),
    encoding=st.sampled_from(["utf-8", "utf-16-le", "utf-16-be", "utf-32"]),
    middle=st.integers(0, 10_000),
    bom_inside=st.booleans(),
)
def test_byte_order_marks(
    scratch: Path, bom: bytes, encoding: str, middle: int, bom_inside: bool
) -> None:
    text = "\n".join(EXAMPLE_LINES) + "\n"
    if bom_inside:
        pos = middle % len(text)
        text = text[:pos] + "\ufeff" + text[pos:]
    path = scratch / "bom.yaml"
    path.write_bytes(bom + text.encode(encoding))
    try:
        documents, problems = load_file(path), []
    except ExperimentInvalid as exc:
        documents, problems = [], exc.problems
    if documents:
        # A BOM (or two) before the text is skipped; NULs of UTF-16 and UTF-32 never load.
        assert [d.name for d in documents] == ["fuzz"]
        assert encoding == "utf-8"
    else:
        assert problems
        _located(problems, str(path))


# ---------------------------------------------------------------- alias and merge bombs


class BoundedLoader:
    """A loader process limited in memory and in CPU per document (``bounded_loader.py``).

    One process serves many documents; one that dies (killed at its limit) is
    reported by the document that killed it and replaced for the next one.
    """

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        if self.process is None or self.process.poll() is not None:
            self.close()
            self.process = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("bounded_loader.py"))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
        return self.process

    def load(self, request: dict[str, str]) -> dict[str, Any]:
        """Load ``{"text": ...}`` or ``{"path": ...}``; check every problem is located."""
        process = self._start()
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            answer = process.stdout.readline()
        except BrokenPipeError:
            answer = ""
        # An empty answer: the process died, out of memory or past its CPU bound.
        assert answer, f"the loader process died (exit {process.wait()}) on {request!r}"
        result: dict[str, Any] = json.loads(answer)
        assert "exception" not in result, result["exception"]
        for line, column, printed in result["problems"]:
            assert line >= 1 and column >= 1, printed
            assert printed.isprintable(), printed
        assert result["nodes"] <= MAX_NODES
        return result

    def close(self) -> None:
        """Stop the process, if one runs."""
        if self.process is None:
            return
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()  # still on a document past its bound: the test has failed
            self.process.wait()
        self.process.stdout.close()
        self.process = None


@pytest.fixture(scope="module")
def bounded() -> Iterator[BoundedLoader]:
    """One bounded loader process for the module (replaced when one dies)."""
    loader = BoundedLoader()
    yield loader
    loader.close()


@st.composite
def anchor_graphs(draw: st.DrawFn) -> str:
    """Anchored collections that alias and merge earlier ones: chains, fans, cycles."""
    count = draw(st.integers(1, 12))
    lines = []
    for i in range(count):
        refs = draw(st.lists(st.integers(0, max(i - 1, 0)), max_size=10)) if i else []
        aliases = [f"*a{r}" for r in refs]
        kind = draw(st.sampled_from(["seq", "map", "merge", "merge-one", "leaf"]))
        if i == 0 or kind == "leaf" or not aliases:
            body = draw(
                st.sampled_from(["{k: v}", "[x, y]", "{k0: 0, k1: [1, 2]}", "x", "!!int 1"])
            )
        elif kind == "seq":
            body = "[" + ", ".join([*aliases, "x"]) + "]"
        elif kind == "map":
            body = "{" + ", ".join(f"k{j}: {a}" for j, a in enumerate(aliases)) + "}"
        elif kind == "merge":
            body = "{<<: [" + ", ".join(aliases) + "], own: 1}"
        else:
            body = "{<<: " + aliases[0] + ", k" + str(i) + ": 1}"
        lines.append(f"a{i}: &a{i} {body}")
    cycle = draw(
        st.sampled_from(
            ["", "c: &c {<<: *c}", "c: &c [1, *c]", "c: &c {d: {<<: *c}}", "c: &c {d: [*c]}"]
        )
    )
    wrap = draw(st.booleans())
    text = "\n".join([*lines, cycle]) + "\n"
    if wrap:  # inside a real document, where the values meet the model
        body = "".join(f"    {line}\n" for line in [*lines, cycle] if line)
        text = (
            "apiVersion: aftershock.dev/v1alpha1\nkind: Experiment\n"
            f"metadata:\n  name: g\n  annotations:\n{body}"
            "spec:\n  targets: {db: {toxiproxy: {proxy: pg}}}\n"
            "  method: [{name: s, fault: toxiproxy.down, target: db}]\n"
        )
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=anchor_graphs())
def test_alias_and_merge_graphs_stay_bounded(bounded: BoundedLoader, text: str) -> None:
    bounded.load({"text": text})


@pytest.mark.parametrize(("levels", "width"), [(9, 8), (30, 2), (6, 40)])
@pytest.mark.parametrize("form", ["merge-list", "merge-chain", "sequence", "mapping"])
def test_classic_bombs_are_refused_within_bounds(
    bounded: BoundedLoader, form: str, levels: int, width: int
) -> None:
    lines = ["a0: &a0 {k: v}"]
    for i in range(1, levels + 1):
        refs = [f"*a{i - 1}"] * width
        body = {
            "merge-list": "{<<: [" + ", ".join(refs) + "]}",
            "merge-chain": "{<<: ["
            + ", ".join(refs)
            + "], k"
            + str(i)
            + ": ["
            + ", ".join(refs)
            + "]}",
            "sequence": "[" + ", ".join(refs) + "]",
            "mapping": "{" + ", ".join(f"k{j}: {r}" for j, r in enumerate(refs)) + "}",
        }[form]
        lines.append(f"a{i}: &a{i} {body}")
    result = bounded.load({"text": "\n".join(lines) + "\n"})
    if width**levels > MAX_NODES:
        assert any("more than 100000 nodes" in printed for _, _, printed in result["problems"])


# ---------------------------------------------------------------- special files


def _special_files(base: Path) -> dict[str, Path]:
    files = {"fifo": base / "fifo.yaml", "directory": base / "dir.yaml"}
    os.mkfifo(files["fifo"])
    files["directory"].mkdir()
    files["symlink loop"] = base / "loop.yaml"
    files["symlink loop"].symlink_to(files["symlink loop"])
    files["dangling symlink"] = base / "dangling.yaml"
    files["dangling symlink"].symlink_to(base / "nowhere.yaml")
    files["unreadable"] = base / "unreadable.yaml"
    files["unreadable"].write_text("apiVersion: x\n")
    files["unreadable"].chmod(0)  # root still reads it: then its content is what is refused
    # A Unix socket's path must fit in about 100 bytes.
    short = base if len(str(base)) <= 90 else Path(tempfile.mkdtemp(prefix="as-"))
    files["socket"] = short / "s.yaml"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(files["socket"]))
    server.close()  # the socket file stays
    for device in ("/dev/null", "/dev/zero", "/dev/full", "/dev/urandom"):
        if Path(device).exists():
            files[device] = Path(device)
    return files


def test_special_files_directly_and_as_healing_policies(
    tmp_path: Path, bounded: BoundedLoader
) -> None:
    files = _special_files(tmp_path)
    assert len(files) >= 8
    for kind, path in files.items():
        answer = bounded.load({"path": str(path)})
        assert answer["documents"] == 0, kind
        [(line, column, printed)] = answer["problems"]
        assert (line, column) == (1, 1), printed
        experiment = tmp_path / f"uses-{abs(hash(kind))}.yaml"
        experiment.write_text(
            "apiVersion: aftershock.dev/v1alpha1\nkind: Experiment\nmetadata: {name: e}\nspec:\n"
            "  targets: {db: {toxiproxy: {proxy: pg}}}\n"
            "  method: [{name: s, fault: toxiproxy.down, target: db}]\n"
            f"  healingPolicy: {json.dumps(str(path))}\n"
        )
        answer = bounded.load({"path": str(experiment)})
        assert answer["documents"] == 0, kind
        printed = [printed for _, _, printed in answer["problems"]]
        assert printed[0].startswith(f"{experiment}:7:3: spec.healingPolicy: "), (kind, printed)
