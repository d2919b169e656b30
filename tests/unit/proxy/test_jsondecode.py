"""The Go-style body decoder agrees with Python's strict JSON parser wherever Go and Python agree.

Go and Python read the same JSON grammar; they differ only where Go's
decoder is documented to differ (unpaired surrogates become U+FFFD, numbers
stay as written, nesting is limited to 10,000 rather than by the stack), so
those are normalised before comparing.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aftershock.proxy.jsondecode import (
    MAX_DEPTH,
    GoObject,
    JsonNumber,
    JsonSyntaxError,
    decode_value,
)

FUZZ = settings(
    deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse(name: str) -> Any:
    raise ValueError(name)


def _go_strings(value: Any) -> Any:
    """``value`` with lone surrogates replaced by U+FFFD, as Go's decoder reads them."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, GoObject):
        return GoObject((_go_strings(k), _go_strings(v)) for k, v in value)
    if isinstance(value, list):
        return [_go_strings(item) for item in value]
    return value


def python_reading(text: str) -> Any:
    """What Python's strict parser reads, shaped like the Go decoder's output."""
    decoder = json.JSONDecoder(
        object_pairs_hook=GoObject,
        parse_int=JsonNumber,
        parse_float=JsonNumber,
        parse_constant=_refuse,
    )
    start = len(text) - len(text.lstrip(" \t\r\n"))
    value, _ = decoder.raw_decode(text, start)
    return _go_strings(value)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(FUZZ, max_examples=200)
@given(
    document=st.one_of(st.lists(DOCUMENTS), st.dictionaries(st.text(), DOCUMENTS)),
    ascii_only=st.booleans(),
    indent=st.sampled_from([None, 0, 2, "\t"]),
)
def test_valid_documents_decode_as_python_reads_them(
    document: Any, ascii_only: bool, indent: int | str | None
) -> None:
    text = json.dumps(document, ensure_ascii=ascii_only, indent=indent)
    assert decode_value(text.encode()) == python_reading(text)


# Mutations stay within valid UTF-8: Go and Python replace invalid bytes differently on purpose.
PIECES = st.sampled_from(
    [
        *["{", "}", "[", "]", ",", ":", '"', "\\", "\\u", "d83d", "-", ".", "e", "+", "0", "1"],
        *[" ", "\n", "\x01", "t", "true", "null", "NaN", "é", "\U0001f600", "\\ud83d", "a"],
    ]
)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A JSON document with a few pieces inserted, deleted or replaced."""
    text = json.dumps(draw(st.one_of(st.lists(DOCUMENTS), st.dictionaries(st.text(), DOCUMENTS))))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 2))
        text = text[:at] + draw(PIECES) + text[at + cut :]
    return text


@settings(FUZZ, max_examples=600)
@given(text=mutated())
def test_mutated_documents_are_accepted_and_refused_as_python_does(text: str) -> None:
    if not text.lstrip(" \t\r\n").startswith(("{", "[")):
        # A top-level scalar: Python's raw_decode stops early ("1." is 1), Go's decoder does not.
        return
    try:
        expected = python_reading(text)
    except ValueError:
        with pytest.raises(JsonSyntaxError):
            decode_value(text.encode())
        return
    assert decode_value(text.encode()) == expected


def test_nesting_is_limited_like_go_not_by_the_stack() -> None:
    deepest = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    value = decode_value(b'{"a":' + deepest[1:-1] + b"}")
    for _ in range(MAX_DEPTH - 1):
        value = value[0][1] if isinstance(value, GoObject) else value[0]
    assert value == []
    with pytest.raises(JsonSyntaxError, match=r"^invalid character '\[' exceeded max depth$"):
        decode_value(b'{"a":' + deepest + b"}")


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        (b'"\\ud83d"', "\ufffd"),
        (b'"\\ud83d\\ude00"', "\U0001f600"),
        (b'"\\ude00\\ud83d"', "\ufffd\ufffd"),
        (b'"\\ud83d\\\\ude00"', "\ufffd\\ude00"),  # an escaped backslash is no escape
        (b'"\xed\xa0\xbd"', "\ufffd\ufffd\ufffd"),  # a surrogate encoded in UTF-8
        (b'"\xc3"', "\ufffd"),
    ],
)
def test_strings_are_always_valid_unicode(text: bytes, decoded: str) -> None:
    value = decode_value(text)
    assert value == decoded
    value.encode("utf-8")  # raises for a lone surrogate


def test_numbers_stay_as_written() -> None:
    literal = "-" + "9" * 5000 + ".5e-99999999999999999999"
    assert decode_value(f"[{literal}]".encode()) == [JsonNumber(literal)]
