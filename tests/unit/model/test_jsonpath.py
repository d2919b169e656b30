"""The JSONPath subset and the typed equality used by HTTP body checks."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aftershock.model.jsonpath import (
    JsonPathError,
    PathNotFound,
    describe,
    find,
    json_equals,
    parse,
)
from aftershock.model.probes import BodyMatch

DOC: dict[str, Any] = {
    "status": "ok",
    "items": [{"id": 1, "tags": ["a", "b"]}, {"id": 2}],
    "a.b": {"c d": None},
    "nested": {"deep": {"er": 3}},
    "flag": False,
    "my-key": "dash",
}


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("$", ()),
        ("$.status", ("status",)),
        ("$.items[0].id", ("items", 0, "id")),
        ("$['a.b']['c d']", ("a.b", "c d")),
        ("$.my-key", ("my-key",)),
        ("$[10]", (10,)),
        ("$['']", ("",)),
    ],
)
def test_parse(path: str, steps: tuple[Any, ...]) -> None:
    assert parse(path) == steps


@pytest.mark.parametrize(
    "path", ["", "status", "$.", "$..a", "$.*", "$[-1]", "$[0:2]", '$["a"]', "$.a[?(@.x)]", "$a"]
)
def test_parse_rejects_what_is_not_supported(path: str) -> None:
    with pytest.raises(JsonPathError):
        parse(path)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", DOC),
        ("$.status", "ok"),
        ("$.items[0].id", 1),
        ("$.items[0].tags[1]", "b"),
        ("$.items[1]['id']", 2),
        ("$['a.b']['c d']", None),
        ("$.nested.deep.er", 3),
        ("$.flag", False),
        ("$.my-key", "dash"),
    ],
)
def test_find(path: str, value: Any) -> None:
    assert find(DOC, path) == value


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("$.missing", "$ has no key 'missing'"),
        ("$.items[2]", "$.items has 2 item(s), no index 2"),
        ("$.status[0]", "$.status is a string, not an array"),
        ("$.items.id", "$.items is an array, not an object"),
        ("$['a.b']['c d'].x", "$['a.b']['c d'] is null, not an object"),
        ("$.flag.x", "$.flag is a boolean, not an object"),
        ("$.items[0].id.x", "$.items[0].id is a number, not an object"),
    ],
)
def test_find_says_where_it_stopped(path: str, message: str) -> None:
    with pytest.raises(PathNotFound) as info:
        find(DOC, path)
    assert str(info.value) == message


def test_find_on_a_top_level_array() -> None:
    assert find([{"x": 1}], "$[0].x") == 1


def test_every_path_the_model_accepts_parses() -> None:
    for path in ("$.a.b", "$.items[0]", "$['key']", "$['a']['b'][3].c_d-e"):
        BodyMatch(json_path=path)
        parse(path)


@pytest.mark.parametrize(
    ("found", "expected", "equal"),
    [
        ("ok", "ok", True),
        ("ok", "OK", False),
        (1, 1, True),
        (1, 1.0, True),
        (2.5, 2.5, True),
        (1, True, False),  # JSON 1 is not true
        (True, 1, False),
        (True, True, True),
        (False, False, True),
        (False, 0, False),
        ("1", 1, False),  # a JSON string is not a number
        (1, "1", True),  # equals text is JSON-decoded against a non-string
        (True, "true", True),
        (None, "null", True),
        (None, "None", False),
        ([1, 2], "[1, 2]", True),
        ([1, True], "[1, 1]", False),
        ({"a": 1}, '{"a": 1}', True),
        ({"a": 1}, '{"a": 2}', False),
        (3, "not json", False),
        (float("nan"), "NaN", False),
    ],
)
def test_json_equals(found: Any, expected: Any, equal: bool) -> None:
    assert json_equals(found, expected) is equal


def test_describe_is_short_json() -> None:
    assert describe("ok") == '"ok"'
    assert describe(None) == "null"
    long = describe("x" * 500)
    assert len(long) == 80
    assert long.endswith("...")


@settings(deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists, max_leaves=5))
def test_root_path_finds_the_document(document: Any) -> None:
    assert find(document, "$") == document


@settings(deadline=None)
@given(st.dictionaries(st.text(alphabet=st.characters(blacklist_characters="'")), st.integers()))
def test_quoted_keys_reach_any_key(document: dict[str, int]) -> None:
    for key, value in document.items():
        assert find(document, f"$['{key}']") == value
