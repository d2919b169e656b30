"""Go-compatible JSON: the encodings and decoder messages Toxiproxy clients see."""

from __future__ import annotations

from typing import Any

import pytest

from aftershock.proxy.wire import (
    ApiError,
    Float32,
    GoObject,
    JsonNumber,
    bind,
    decode_body,
    encode,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.0, "0"),
        (0.5, "0.5"),
        (0.3, "0.3"),
        (0.1, "0.1"),
        (1 / 3, "0.33333334"),
        (1e-7, "1e-7"),
        (1.5e-12, "1.5e-12"),
        (2.5e21, "2.5e+21"),
        (-0.25, "-0.25"),
    ],
)
def test_float32_prints_like_go(value: float, text: str) -> None:
    assert encode(Float32(value)) == text.encode()


def test_strings_escape_html_like_go() -> None:
    assert encode({"a": "<&>", "b": "é"}) == '{"a":"\\u003c\\u0026\\u003e","b":"é"}'.encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "EOF"),
        (b"  \n", "EOF"),
        (b'{"a": 1', "unexpected EOF"),
        (b'{"a": "b', "unexpected EOF"),
        (b'{"a" 1}', "invalid character '1' after object key"),
        (b'{"a": 1 "b": 2}', "invalid character '\"' after object key:value pair"),
        (b"[1 2]", "invalid character '2' after array element"),
        (b"{'a': 1}", "invalid character '\\'' looking for beginning of object key string"),
        (b"NaN", "invalid character 'N' looking for beginning of value"),
        (b"}", "invalid character '}' looking for beginning of value"),
    ],
)
def test_decoder_messages_follow_go(body: bytes, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        decode_body(body)
    assert (caught.value.status, caught.value.message) == (400, f"bad request body: {message}")


def test_decoder_reads_one_value_and_ignores_the_rest() -> None:
    # Numbers stay as written, as Go's json.Number: each field converts them with its own rules.
    assert decode_body(b'{"a": 1} trailing') == GoObject([("a", JsonNumber("1"))])


def bound(body: bytes, fields: dict[str, str], target: dict[str, Any]) -> dict[str, Any]:
    bind(decode_body(body), fields, target, struct="S", go_type="pkg.S")
    return target


def test_bind_matches_keys_like_go() -> None:
    fields = {"name": "string", "rate": "int64"}
    start = {"name": "old", "rate": 7}
    assert bound(b'{"NAME": "x", "rate": null}', fields, dict(start)) == {"name": "x", "rate": 7}
    assert bound(b'{"name": "a", "name": "b"}', fields, dict(start))["name"] == "b"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"rate": 1.0}', "cannot unmarshal number 1.0 into Go struct field S.rate of type int64"),
        (
            b'{"rate": 9223372036854775808}',
            "cannot unmarshal number 9223372036854775808 into Go struct field S.rate of type int64",
        ),
        (b'{"rate": true}', "cannot unmarshal bool into Go struct field S.rate of type int64"),
        (b'{"name": 1}', "cannot unmarshal number into Go struct field S.name of type string"),
        (b"[]", "cannot unmarshal array into Go value of type pkg.S"),
    ],
)
def test_bind_refuses_wrong_kinds_with_go_messages(body: bytes, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        bound(body, {"name": "string", "rate": "int64"}, {})
    assert caught.value.message == f"bad request body: json: {message}"
