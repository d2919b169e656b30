"""Fuzzing ``aftershock report`` with corrupted journals.

The seed is ``data/real_run.jsonl``, written by a real ``aftershock run`` (a
supervised ``http.server`` behind the embedded proxy; latency, then a kill; 45
records with samples, phases, windows, four fault records and the verdict). Each
example corrupts it (truncation, flipped or inserted bytes, NaN / infinities /
``1e999`` / ``-0`` / huge integers / deep nesting / wrong types / missing keys /
duplicated, reordered or renamed records) and renders it through the command
itself (``aftershock report FILE --out DIR --junit FILE``, in process). The
outcome must be one of two: exit 0 with report.html, summary.md and the JUnit
file written, every number in the view finite and none of the SVG coordinates
NaN or infinite; or exit 2 with exactly one ``error: FILE: not an aftershock
journal: ...`` line. Any other exit code or exception fails the example.

631 cases in all: ``EXAMPLES`` per property (550), 80 fixed ones and the seed itself;
derandomized, so CI runs the same cases every time. About 15 s on one idle core.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aftershock.cli.main import app
from aftershock.reporting import RunView, load_run

SEED = (Path(__file__).parent / "data" / "real_run.jsonl").read_bytes()
SEED_LINES = SEED.decode("utf-8").splitlines()

EXAMPLES = {"bytes": 150, "records": 300, "truncate": 100}
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Tokens a hostile writer could put where a JSON value goes; written verbatim.
RAW_NUMBERS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "-0",
    "-0.0",
    "1e308",
    "-1e308",
    "1e12",
    "1.0000001e12",
    "4.9e-324",
    str(10**30),
    str(-(10**30)),
    "9" * 4000,  # a huge integer Python still parses
    "1" + "0" * 5000,  # past Python's int-digits limit: a ValueError on parse
]
TIMES = [
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59.999999+00:00",
    "2026-12-03T23:32:12",
    "2026-13-01T00:00:00Z",
    "yesterday",
    "",
]
EVENTS = [
    "run.started",
    "run.finished",
    "sample",
    "phase",
    "window",
    "fault.window",
    "abort",
    "recovered",
    "healing",
    "incident",
    "fault.intent",
    "fault.applied",
    "fault.reverted",
    "fault.revert_failed",
    "fault.mystery",
    "something.new",
    "",
]
EXTRA_KEYS = ["t", "latency", "start_t", "end_t", "seconds", "started_at", "slo", "probes"]
EXTRA_KEYS += ["result", "reason", "probe", "ok", "status", "key", "handle", "detail"]


class Raw:
    """A JSON value written verbatim (``NaN``, ``1e999``, ``[[[...]]]``)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _deep(depth: int, kind: str) -> Raw:
    if kind == "list":
        return Raw("[" * depth + "]" * depth)
    return Raw('{"a":' * depth + "1" + "}" * depth)


HOSTILE: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(RAW_NUMBERS).map(Raw),
    st.builds(
        _deep, st.sampled_from([2, 50, 900, 3000, 100_000]), st.sampled_from(["list", "obj"])
    ),
    st.sampled_from(TIMES),
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(EXTRA_KEYS), st.integers(), max_size=3),
)


def _dump(record: Any) -> str:
    """One JSON line; ``Raw`` values are spliced in as they are."""
    raws: list[str] = []

    def swap(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(value.text)
            return f"\x00raw{len(raws) - 1}\x00"
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    line = json.dumps(swap(record), ensure_ascii=False, separators=(",", ":"))
    for i, text in enumerate(raws):
        line = line.replace(json.dumps(f"\x00raw{i}\x00"), text)
    return line


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key/index path inside a record (the record's own keys first)."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, item in items:
        yield (*prefix, key)
        yield from _paths(item, (*prefix, key))


def _parent(record: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        record = record[key]
    return record


@st.composite
def mutated_records(draw: st.DrawFn) -> list[Any]:
    records: list[Any] = [json.loads(line) for line in SEED_LINES]
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        op = draw(st.sampled_from(["set", "set", "set", "add", "delete", "dup", "event", "move"]))
        i = draw(st.integers(min_value=0, max_value=len(records) - 1))
        record = records[i]
        paths = list(_paths(record))
        if op == "set" and paths:
            path = draw(st.sampled_from(paths))
            _parent(record, path)[path[-1]] = draw(HOSTILE)
        elif op == "add" and isinstance(record, dict):
            record[draw(st.sampled_from(EXTRA_KEYS))] = draw(HOSTILE)
        elif op == "delete" and paths:
            path = draw(st.sampled_from(paths))
            parent = _parent(record, path)
            del parent[path[-1]]
        elif op == "dup":
            records.insert(draw(st.integers(0, len(records))), copy.deepcopy(record))
        elif op == "event" and isinstance(record, dict):
            record["event"] = draw(st.sampled_from(EVENTS))
        elif op == "move":
            records.insert(draw(st.integers(0, len(records) - 1)), records.pop(i))
    return records


# ---------------------------------------------------------------- the oracle

_SVG = re.compile(r"<svg.*?</svg>", re.S)
_COORDINATES = "x|y|x1|x2|y1|y2|cx|cy|r|rx|width|height|d|viewBox|data-points"
_ATTR = re.compile(rf'\s(?:{_COORDINATES})="([^"]*)"')
_NON_FINITE = re.compile(r"(?i)(nan|inf)")


def _floats(value: Any) -> Iterator[float]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))


def _check_view(view: RunView) -> None:
    """Every number a renderer sees is finite; every time is aware."""
    parts = [view.duration, view.span, view.samples, view.phases, view.windows, view.abort]
    parts += [view.recovery, view.healing, view.slos, view.result.model_dump()]
    bad = [x for x in _floats(parts) if not math.isfinite(x)]
    assert not bad, bad
    assert all(
        v.tzinfo is not None for v in view.result.model_dump().values() if isinstance(v, datetime)
    )


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def render(
    runner: CliRunner, workdir: Path, content: bytes, is_journal: bool | None = None
) -> None:
    """Run ``aftershock report`` on ``content``; assert one of the two allowed outcomes.

    ``is_journal`` True or False also says which one it must be.
    """
    journal, out, junit = workdir / "run.jsonl", workdir / "out", workdir / "junit.xml"
    journal.write_bytes(content)
    for old in (out / "report.html", out / "summary.md", junit):
        old.unlink(missing_ok=True)
    result = runner.invoke(app, ["report", str(journal), "--out", str(out), "--junit", str(junit)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    errors = result.stderr.splitlines()
    if is_journal is not None:
        assert result.exit_code == (0 if is_journal else 2), (result.exit_code, result.stderr)
    if result.exit_code == 2:
        assert len(errors) == 1, result.stderr
        assert errors[0].startswith(f"error: {journal}: not an aftershock journal: "), errors
        assert not (out / "report.html").exists()
        return
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    assert all(line.startswith("warning: ") for line in errors), errors
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.endswith("</html>\n")
    assert (out / "summary.md").read_text(encoding="utf-8").startswith("### ")
    assert junit.read_text(encoding="utf-8").startswith("<?xml")
    for svg in _SVG.findall(page):
        coordinates = [v for v in _ATTR.findall(svg) if _NON_FINITE.search(v)]
        assert not coordinates, coordinates
    _check_view(load_run(journal))


# ---------------------------------------------------------------- the fuzz


def test_the_seed_renders(runner: CliRunner, workdir: Path) -> None:
    render(runner, workdir, SEED, is_journal=True)
    assert load_run(workdir / "run.jsonl").problems == ()


@settings(FUZZ, max_examples=EXAMPLES["truncate"])
@given(cut=st.integers(min_value=0, max_value=len(SEED)), tail=st.sampled_from([b"", b"\n"]))
def test_truncated_anywhere(runner: CliRunner, workdir: Path, cut: int, tail: bytes) -> None:
    # With its first line whole, the file is a journal (a crashed run); without it, nothing is.
    first = len(SEED_LINES[0].encode("utf-8"))
    render(runner, workdir, SEED[:cut] + tail, is_journal=cut >= first)


@settings(FUZZ, max_examples=EXAMPLES["bytes"])
@given(
    flips=st.lists(
        st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 255)), min_size=1, max_size=24
    ),
    inserts=st.lists(
        st.tuples(
            st.integers(0, len(SEED)),
            st.sampled_from([*RAW_NUMBERS[:12], "\n", "\x00", "{", "]", '"', "\xff"]),
        ),
        max_size=6,
    ),
)
def test_flipped_and_inserted_bytes(
    runner: CliRunner, workdir: Path, flips: list[tuple[int, int]], inserts: list[tuple[int, str]]
) -> None:
    data = bytearray(SEED)
    for position, value in flips:
        data[position] = value
    for position, text in sorted(inserts, reverse=True):
        data[position:position] = text.encode("utf-8", errors="surrogateescape")
    render(runner, workdir, bytes(data))


@settings(FUZZ, max_examples=EXAMPLES["records"])
@given(records=mutated_records(), torn=st.booleans())
def test_mutated_records(runner: CliRunner, workdir: Path, records: list[Any], torn: bool) -> None:
    text = "\n".join(_dump(r) for r in records) + "\n"
    if torn:
        text = text[: len(text) - 1 - len(_dump(records[-1])) // 2]
    render(runner, workdir, text.encode("utf-8", errors="surrogatepass"))


@pytest.mark.parametrize("token", RAW_NUMBERS)
@pytest.mark.parametrize("field", ["t", "latency", "start_t", "end_t", "seconds"])
def test_every_hostile_number_in_every_time_field(
    runner: CliRunner, workdir: Path, token: str, field: str
) -> None:
    records = [json.loads(line) for line in SEED_LINES]
    for record in records:
        if field in record:
            record[field] = Raw(token)
    render(runner, workdir, ("\n".join(_dump(r) for r in records) + "\n").encode())
