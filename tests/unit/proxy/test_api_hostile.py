"""Hostile requests get Go's answers, never a 500 or a traceback, and never leave unlistable state.

Each case here is a request that once crashed a handler or was read more
leniently than Toxiproxy's Go server reads it: lone surrogates in strings,
numbers beyond float32 or int64, numbers of thousands of digits, deep
nesting, malformed chunk sizes and Content-Lengths, odd request targets.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from aftershock.proxy import EmbeddedToxiproxy
from aftershock.proxy.httpserver import HTTPServer, Request, Response

from .helpers import connect, create_proxy

TEXT = "text/plain; charset=utf-8"


def _no_constants(name: str) -> Any:
    raise AssertionError(f"{name} is not JSON")


def strict_json(answer: httpx.Response) -> Any:
    """The body as JSON, refusing invalid UTF-8, NaN and Infinity."""
    return json.loads(answer.content.decode("utf-8"), parse_constant=_no_constants)


def assert_error(answer: httpx.Response, status: int, message: str) -> None:
    expected = json.dumps(
        {"error": message, "status": status}, separators=(",", ":"), ensure_ascii=False
    )
    expected += "\n"
    assert (answer.status_code, answer.text) == (status, expected)
    assert answer.headers["content-type"] == TEXT


async def assert_listable(api: httpx.AsyncClient) -> dict[str, Any]:
    """Every listing answers 200 with strict JSON; returns the proxy index."""
    index = await api.get("/proxies")
    assert index.status_code == 200, index.text
    proxies: dict[str, Any] = strict_json(index)
    for name in proxies:
        for path in (f"/proxies/{quote(name, safe='')}", f"/proxies/{quote(name, safe='')}/toxics"):
            answer = await api.get(path)
            assert answer.status_code == 200, (path, answer.text)
            strict_json(answer)
    return proxies


@pytest.fixture(autouse=True)
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if anything was logged with a traceback or over several lines."""
    caplog.set_level(logging.INFO)
    yield
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()
        assert "\n" not in record.getMessage(), record.getMessage()
    assert "Traceback" not in caplog.text


async def exchange(toxiproxy: EmbeddedToxiproxy, request: bytes) -> bytes:
    """Send raw bytes to the API and read until the server closes the connection."""
    async with connect((toxiproxy.host, toxiproxy.port)) as (reader, writer):
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(5):
            return await reader.read(-1)


# ---------------------------------------------------------------- item 1: surrogates


async def test_lone_surrogate_toxic_name_becomes_a_replacement_character(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    await create_proxy(api, echo_upstream, "X")
    body = b'{"name":"\\ud83d","type":"latency","attributes":{"latency":700}}'
    answer = await api.post("/proxies/X/toxics", content=body)
    assert answer.status_code == 200, answer.text
    assert strict_json(answer) == {
        "attributes": {"latency": 700, "jitter": 0},
        "name": "\ufffd",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1,
    }
    await assert_listable(api)
    shown = await api.get("/proxies/X/toxics/" + quote("\ufffd"))
    assert (shown.status_code, strict_json(shown)["name"]) == (200, "\ufffd")
    assert (await api.post("/reset")).status_code == 204
    assert strict_json(await api.get("/proxies/X/toxics")) == []


@pytest.mark.parametrize(
    ("escaped", "decoded"),
    [
        (b"\\ud83d", "\ufffd"),  # lone high surrogate
        (b"\\udc00x", "\ufffdx"),  # lone low surrogate
        (b"\\ud83d\\ude00", "\U0001f600"),  # a pair is one character
        (b"\\ud83d\\ud83d\\ude00", "\ufffd\U0001f600"),  # the second escape pairs on its own
        (b"\\ud83d\\u0041", "\ufffdA"),
        (b"a\xff\xed\xa0\x80b", "a\ufffd\ufffd\ufffd\ufffdb"),  # invalid UTF-8: one per byte
        (b"\xf0\x9f\x98", "\ufffd\ufffd\ufffd"),  # a truncated sequence
    ],
)
async def test_every_string_is_decoded_as_go_decodes_it(
    api: httpx.AsyncClient, echo_upstream: str, escaped: bytes, decoded: str
) -> None:
    create = (
        b'{"name":"p' + escaped + b'","upstream":"' + escaped + b'","listen":"127.0.0.1:0",'
        b'"\\ud800' + escaped + b'":1}'
    )
    answer = await api.post("/proxies", content=create)
    assert answer.status_code == 201, answer.text
    assert (strict_json(answer)["name"], strict_json(answer)["upstream"]) == (
        "p" + decoded,
        decoded,
    )
    path = "/proxies/" + quote("p" + decoded, safe="")
    toxic = await api.post(path + "/toxics", content=b'{"type":"noop","name":"' + escaped + b'"}')
    assert (toxic.status_code, strict_json(toxic)["name"]) == (200, decoded)
    patched = await api.patch(path, content=b'{"upstream":"u' + escaped + b'"}')
    assert (patched.status_code, strict_json(patched)["upstream"]) == (200, "u" + decoded)
    populated = await api.post(
        "/populate", content=b'[{"name":"q' + escaped + b'","upstream":"' + escaped + b'"}]'
    )
    assert populated.status_code == 201, populated.text
    assert strict_json(populated)["proxies"][0]["name"] == "q" + decoded
    assert set(await assert_listable(api)) == {"p" + decoded, "q" + decoded}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"type":"\\ud83d"}', 400, "invalid toxic type"),
        (
            b'{"type":"latency","stream":"\\ud83d"}',
            400,
            "stream was invalid, can be either upstream or downstream",
        ),
    ],
)
async def test_surrogates_in_refused_toxics_leave_nothing(
    api: httpx.AsyncClient, echo_upstream: str, body: bytes, status: int, message: str
) -> None:
    await create_proxy(api, echo_upstream, "X")
    assert_error(await api.post("/proxies/X/toxics", content=body), status, message)
    assert strict_json(await api.get("/proxies/X/toxics")) == []


# ---------------------------------------------------------------- item 2: number ranges

FLOAT32_ERROR = (
    "bad request body: json: cannot unmarshal number {} into Go struct field"
    " ToxicWrapper.toxicity of type float32"
)


@pytest.mark.parametrize(
    "literal",
    [
        "1e39",
        "3.5e38",
        "-1e39",
        "1e400",
        "3.4028236e38",
        "1" + "0" * 39,
        "1e9999999999999999999",  # an exponent beyond what Python's Decimal takes
        "-1e" + "9" * 5000,
        # Exactly half an ulp above the largest float32: rounds to even, which is infinity.
        str(2**128 - 2**103),
    ],
)
async def test_toxicity_beyond_float32_is_refused(
    api: httpx.AsyncClient, echo_upstream: str, literal: str
) -> None:
    await create_proxy(api, echo_upstream, "X")
    body = b'{"type":"latency","toxicity":' + literal.encode() + b"}"
    assert_error(
        await api.post("/proxies/X/toxics", content=body), 400, FLOAT32_ERROR.format(literal)
    )
    assert strict_json(await api.get("/proxies/X/toxics")) == []

    await api.post("/proxies/X/toxics", json={"type": "latency", "toxicity": 0.5})
    update = b'{"toxicity":' + literal.encode() + b"}"
    assert_error(
        await api.patch("/proxies/X/toxics/latency_downstream", content=update),
        400,
        f"bad request body: json: cannot unmarshal number {literal}"
        " into Go struct field .toxicity of type float32",
    )
    assert strict_json(await api.get("/proxies/X/toxics"))[0]["toxicity"] == 0.5
    await assert_listable(api)


@pytest.mark.parametrize(
    ("literal", "shown"),
    [
        ("3.4028235e38", "3.4028235e+38"),
        ("-3.4028235e38", "-3.4028235e+38"),
        (str(2**128 - 2**103 - 1), "3.4028235e+38"),  # just under half an ulp: the largest float32
        ("1e-50", "0"),  # underflow is not an error in Go
        ("1e-9999999999999999999", "0"),
        ("-1e-99999999999999999999", "-0"),
        ("0e99999999999999999999", "0"),
        ("7.1e-46", "1e-45"),  # just over half the smallest float32 rounds up to it
        ("0." + "0" * 5000 + "1", "0"),
    ],
)
async def test_toxicity_within_float32_is_kept(
    api: httpx.AsyncClient, echo_upstream: str, literal: str, shown: str
) -> None:
    await create_proxy(api, echo_upstream, "X")
    body = b'{"type":"noop","toxicity":' + literal.encode() + b"}"
    answer = await api.post("/proxies/X/toxics", content=body)
    assert answer.status_code == 200, answer.text
    assert answer.text.endswith(f'"toxicity":{shown}}}')
    await assert_listable(api)


@pytest.mark.parametrize(
    ("kind", "attribute", "literal", "go_type"),
    [
        ("latency", "latency", "9223372036854775808", "int64"),
        ("latency", "jitter", "-9223372036854775809", "int64"),
        ("bandwidth", "rate", "1" + "0" * 30, "int64"),
        ("slicer", "delay", "9223372036854775808", "int"),
        ("limit_data", "bytes", "1e2", "int64"),
        ("timeout", "timeout", "1e99999999999999999999", "int64"),
        ("reset_peer", "timeout", "-0.0", "int64"),
    ],
)
async def test_integer_attributes_beyond_int64_are_refused(
    api: httpx.AsyncClient,
    echo_upstream: str,
    kind: str,
    attribute: str,
    literal: str,
    go_type: str,
) -> None:
    await create_proxy(api, echo_upstream, "X")
    body = f'{{"type":"{kind}","attributes":{{"{attribute}":{literal}}}}}'.encode()
    struct = {"latency": "Latency", "bandwidth": "Bandwidth", "slicer": "Slicer"}
    struct |= {"timeout": "Timeout", "reset_peer": "Reset", "limit_data": "LimitData"}
    name = struct[kind] + "Toxic"
    assert_error(
        await api.post("/proxies/X/toxics", content=body),
        400,
        f"bad request body: json: cannot unmarshal number {literal} into Go struct field"
        f" {name}.attributes.{attribute} of type {go_type}",
    )
    assert strict_json(await api.get("/proxies/X/toxics")) == []


async def test_integer_attributes_at_the_int64_limits_are_kept(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    await create_proxy(api, echo_upstream, "X")
    body = b'{"type":"latency","attributes":{"latency":9223372036854775807,"jitter":-9223372036854775808}}'
    answer = await api.post("/proxies/X/toxics", content=body)
    assert strict_json(answer)["attributes"] == {"latency": 2**63 - 1, "jitter": -(2**63)}
    await assert_listable(api)


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        ("NaN", "invalid character 'N' looking for beginning of value"),
        ("Infinity", "invalid character 'I' looking for beginning of value"),
        ("-Infinity", "invalid character 'I' in numeric literal"),
    ],
)
async def test_nan_and_infinity_are_not_json(
    api: httpx.AsyncClient, echo_upstream: str, literal: str, message: str
) -> None:
    await create_proxy(api, echo_upstream, "X")
    body = b'{"type":"latency","toxicity":' + literal.encode() + b"}"
    assert_error(
        await api.post("/proxies/X/toxics", content=body), 400, f"bad request body: {message}"
    )


# ---------------------------------------------------------------- item 3: size and depth

LONG = "1" * 5000


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/proxies/X/toxics",
            f'{{"type":"latency","toxicity":{LONG}}}',
            FLOAT32_ERROR.format(LONG),
        ),
        (
            "/proxies/X/toxics",
            f'{{"type":"latency","attributes":{{"latency":{LONG}}}}}',
            (
                f"bad request body: json: cannot unmarshal number {LONG} into Go struct field"
                " LatencyToxic.attributes.latency of type int64"
            ),
        ),
        (
            "/proxies",
            f'{{"name":{LONG},"upstream":"x:1"}}',
            (
                "bad request body: json: cannot unmarshal number into Go struct field"
                " Proxy.name of type string"
            ),
        ),
        (
            "/proxies",
            "[" * 10_001,
            "bad request body: invalid character '[' exceeded max depth",
        ),
        (
            "/proxies",
            '{"name":"p","upstream":"x:1","junk":' + "[" * 10_000 + "]" * 10_000 + "}",
            "bad request body: invalid character '[' exceeded max depth",  # 10,001 with the object
        ),
        (
            "/proxies",
            "[" * 10_000 + "]" * 10_000,
            "bad request body: json: cannot unmarshal array into Go value of type toxiproxy.Proxy",
        ),
    ],
)
async def test_huge_numbers_and_deep_nesting_are_refused_with_400(
    api: httpx.AsyncClient, echo_upstream: str, path: str, body: str, message: str
) -> None:
    await create_proxy(api, echo_upstream, "X")
    assert_error(await api.post(path, content=body.encode()), 400, message)
    assert list(await assert_listable(api)) == ["X"]


@pytest.mark.parametrize(
    "junk", [LONG, "-" + LONG + ".5e-3", "[" * 1000 + "]" * 1000, "[" * 9_999 + "]" * 9_999]
)
async def test_huge_values_in_unknown_fields_are_ignored_as_go_ignores_them(
    api: httpx.AsyncClient, echo_upstream: str, junk: str
) -> None:
    body = f'{{"name":"p","upstream":"{echo_upstream}","junk":{junk}}}'
    answer = await api.post("/proxies", content=body.encode())
    assert answer.status_code == 201, answer.text[:200]
    assert list(await assert_listable(api)) == ["p"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"-", "unexpected EOF"),
        (b"[1,]", "invalid character ']' looking for beginning of value"),
        (b'{"name":"a",}', "invalid character '}' looking for beginning of object key string"),
        (b'{"name" "a"}', "invalid character '\"' after object key"),
        (b'{"name":"a" "b"}', "invalid character '\"' after object key:value pair"),
        (b'{"name":"a\x01"}', "invalid character '\\x01' in string literal"),
        (b'{"name":"\\x"}', "invalid character 'x' in string escape code"),
        (b'{"name":"\\u12x4"}', "invalid character 'x' in \\u hexadecimal character escape"),
        (b'{"n":1.x}', "invalid character 'x' after decimal point in numeric literal"),
        (b'{"n":1e+}', "invalid character '}' in exponent of numeric literal"),
        (b'{"n":-a}', "invalid character 'a' in numeric literal"),
        (b'{"n":tru}', "invalid character '}' in literal true (expecting 'e')"),
        (b"\xef\xbb\xbf{}", "invalid character '\u00ef' looking for beginning of value"),
        (b"\x80", "invalid character '\\u0080' looking for beginning of value"),
        (b'{"a":[1', "unexpected EOF"),
        (b" \t\r\n", "EOF"),
    ],
)
async def test_syntax_errors_carry_go_messages(
    api: httpx.AsyncClient, body: bytes, message: str
) -> None:
    assert_error(await api.post("/proxies", content=body), 400, f"bad request body: {message}")


# ---------------------------------------------------------------- item 4: chunked bodies

CHUNKED_HEAD = b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


INVALID_BYTE = "invalid byte in chunk length"


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        (b"0x5\r\nabcde\r\n0\r\n\r\n", INVALID_BYTE),
        (b"1_0\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n", INVALID_BYTE),
        (b"-5\r\nabcde\r\n0\r\n\r\n", INVALID_BYTE),
        (b"+5\r\nabcde\r\n0\r\n\r\n", INVALID_BYTE),
        (b" 5\r\nabcde\r\n0\r\n\r\n", INVALID_BYTE),
        (b"\xd9\xa3\r\nabc\r\n0\r\n\r\n", INVALID_BYTE),
        # Go trims trailing space from the line, then cuts the extension: "5 " is left.
        (b"5 ;ext\r\nabcde\r\n0\r\n\r\n", INVALID_BYTE),
        (b"5\t;ext\r\nabcde\r\n0\r\n\r\n", INVALID_BYTE),
        (b"\r\nabcde\r\n0\r\n\r\n", "empty hex number for chunk length"),
        (b";ext\r\nabcde\r\n0\r\n\r\n", "empty hex number for chunk length"),
        (b"00000000000000005\r\nabcde\r\n0\r\n\r\n", "http chunk length too large"),
        (b"5\nabcde\r\n0\r\n\r\n", "chunked line ends with bare LF"),
        (b"5\r\r\nabcde\r\n0\r\n\r\n", "invalid CR in chunked line"),
        (b"5\r\nabcde\n0\r\n\r\n", "malformed chunked encoding"),
        (b"5;" + b"x" * 5000 + b"\r\nabcde\r\n0\r\n\r\n", "header line too long"),
        (b"5;" + b"x" * 70_000 + b"\r\nabcde\r\n0\r\n\r\n", "header line too long"),
    ],
)
async def test_malformed_chunk_sizes_are_refused_with_400(
    toxiproxy: EmbeddedToxiproxy, chunks: bytes, message: str
) -> None:
    raw = await exchange(toxiproxy, CHUNKED_HEAD + chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), raw[:80]
    # The body reader's error, reported by the handler as Go's decoder reports it.
    expected = {"error": f"bad request body: {message}", "status": 400}
    assert json.loads(body) == expected
    assert b"Connection: close\r\n" in head


async def test_a_bad_chunked_body_is_ignored_by_routes_that_read_none(
    toxiproxy: EmbeddedToxiproxy,
) -> None:
    raw = await exchange(
        toxiproxy,
        b"GET /version HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nabcde\r\n"
        b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    # Answered, then the connection is closed: what follows the bad chunk is not read.
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n"), raw[:80]
    assert raw.count(b"HTTP/1.1 ") == 1
    assert b"Connection: close\r\n" in raw


@pytest.mark.parametrize(
    "size_line", [b"%x", b"%X", b"%x;name=value", b"%x  ", b"%x;ext \t", b"000000000000%04x"]
)
async def test_well_formed_chunk_sizes_are_read(
    toxiproxy: EmbeddedToxiproxy, echo_upstream: str, size_line: bytes
) -> None:
    body = json.dumps({"name": "c", "upstream": echo_upstream}).encode()
    chunked = (size_line % len(body)) + b"\r\n" + body + b"\r\n0\r\n\r\n"
    raw = await exchange(
        toxiproxy, CHUNKED_HEAD.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n") + chunked
    )
    assert raw.startswith(b"HTTP/1.1 201 Created\r\n"), raw[:80]


# ---------------------------------------------------------------- request framing


@pytest.mark.parametrize(
    "length", [b"\xb2", b"\xb9", b"1" * 5000, b"9223372036854775808", b"+5", b"5 5"]
)
async def test_malformed_content_lengths_are_refused_with_400(
    toxiproxy: EmbeddedToxiproxy, length: bytes
) -> None:
    raw = await exchange(
        toxiproxy, b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n{}"
    )
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n"), raw[:80]


async def test_content_length_with_leading_zeros_is_read(
    toxiproxy: EmbeddedToxiproxy, echo_upstream: str
) -> None:
    body = json.dumps({"name": "z", "upstream": echo_upstream}).encode()
    raw = await exchange(
        toxiproxy,
        b"POST /proxies HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: " + b"0" * 5000 + b"%d\r\n\r\n%s" % (len(body), body),
    )
    assert raw.startswith(b"HTTP/1.1 201 Created\r\n"), raw[:80]


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (b"http://[::1/proxies", b"400"),
        (b"/proxies/%zz", b"400"),
        (b"/proxies/%4", b"400"),
        (b"/proxies/a\x01b", b"400"),
    ],
)
async def test_malformed_request_targets_are_refused(
    toxiproxy: EmbeddedToxiproxy, target: bytes, status: bytes
) -> None:
    raw = await exchange(toxiproxy, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 " + status + b" "), raw[:80]


@pytest.mark.parametrize(
    ("target", "location"),
    [
        (b"/proxies/%E2%82%AC/./", b"/proxies/%E2%82%AC/"),
        (b"/proxies/%FF/.", b"/proxies/%FF"),  # not UTF-8: the same byte goes back
        (b"/proxies/a%20b%3F!/../c", b"/proxies/c"),
        (b"/x/./a%20b%3F!", b"/x/a%20b%3F%21"),
    ],
)
async def test_redirects_escape_the_cleaned_path(
    toxiproxy: EmbeddedToxiproxy, target: bytes, location: bytes
) -> None:
    raw = await exchange(
        toxiproxy, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert raw.startswith(b"HTTP/1.1 301 Moved Permanently\r\n"), raw[:80]
    assert b"\r\nLocation: " + location + b"\r\n" in raw


async def test_a_hash_in_the_request_path_is_part_of_the_name(
    toxiproxy: EmbeddedToxiproxy, api: httpx.AsyncClient, echo_upstream: str
) -> None:
    await create_proxy(api, echo_upstream, "a#b")
    raw = await exchange(
        toxiproxy, b"GET /proxies/a#b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n"), raw[:80]
    assert b'"name":"a#b"' in raw


# ---------------------------------------------------------------- listen addresses


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("a" * 64 + ":0", f"listen tcp: lookup {'a' * 64}: no such host"),
        ("127.0.0.1:\u0663", "listen tcp: lookup tcp/\u0663: unknown port"),
        ("127.0.0.1:http2x", "listen tcp: lookup tcp/http2x: unknown port"),
        ("127.0.0.1:70000", "listen tcp: address 70000: invalid port"),
        ("127.0.0.1:-1", "listen tcp: address -1: invalid port"),
        ("127.0.0.1:" + "9" * 5000, f"listen tcp: address {'9' * 5000}: invalid port"),
    ],
)
async def test_unusable_listen_addresses_get_go_messages_and_create_nothing(
    api: httpx.AsyncClient, listen: str, message: str
) -> None:
    answer = await api.post("/proxies", json={"name": "p", "upstream": "x:1", "listen": listen})
    assert_error(answer, 500, message)
    assert await assert_listable(api) == {}


@pytest.mark.parametrize("port", ["", "+0", "0" * 5000])
async def test_go_port_spellings_of_zero_bind_a_free_port(
    api: httpx.AsyncClient, port: str
) -> None:
    answer = await api.post(
        "/proxies", json={"name": "p", "upstream": "x:1", "listen": "127.0.0.1:" + port}
    )
    assert answer.status_code == 201, answer.text[:200]
    assert not strict_json(answer)["listen"].endswith(":0")


# ---------------------------------------------------------------- failing handlers


async def test_a_failing_handler_is_answered_500_and_logged_on_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("first line\nsecond line")

    server = HTTPServer(broken)
    host, port = await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            answer = await client.get("/anything")
    finally:
        await server.close()
    assert (answer.status_code, answer.text) == (500, "Internal Server Error\n")
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1
    assert "RuntimeError" in errors[0].getMessage()
    assert "\n" not in errors[0].getMessage()
    assert errors[0].exc_info is None
