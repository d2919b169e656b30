"""Generated and mutated documents never crash the loader, and every rejection is located."""

import copy
import random
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aftershock.errors import ExperimentInvalid
from aftershock.loading import load_file, load_text

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


def _check(text: str) -> None:
    _, problems = load_text(text, "fuzz.yaml", env={"X": "1"})
    for p in problems:
        assert p.file == "fuzz.yaml"
        assert p.message
        assert p.line >= 0 and p.column >= 0


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
    assert all(p.file == str(path) for p in problems)
