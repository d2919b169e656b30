"""Fuzzing the embedded Toxiproxy API the way a hostile client would, over real sockets.

The server is ``aftershock proxy --listen 127.0.0.1:P`` in a subprocess, so
its stderr is exactly what an operator would see. Every generated request
(JSON with surrogates, huge numbers, deep nesting and wrong types; garbage
bytes; truncated bodies; odd chunk framings and request targets) must get an
answer Go's Toxiproxy could give: never a 5xx for client garbage (the one
5xx Go gives is a 500 for a listen address it cannot bind), error bodies of
Go's shape, nothing on stderr, and a state that every listing still returns
as strict JSON.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


# ---------------------------------------------------------------- the server under test


@dataclass(frozen=True)
class Server:
    """The ``aftershock proxy`` subprocess: its API port and its stderr file."""

    port: int
    stderr: Path
    process: subprocess.Popen[bytes]

    def stderr_lines(self) -> list[str]:
        return self.stderr.read_text(encoding="utf-8", errors="replace").splitlines()

    def stderr_size(self) -> int:
        return self.stderr.stat().st_size

    def stderr_since(self, offset: int) -> str:
        with self.stderr.open("rb") as written:
            written.seek(offset)
            return written.read().decode("utf-8", "replace")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``aftershock proxy`` on a free loopback port, stopped with SIGTERM afterwards."""
    port = _free_port()
    stderr = tmp_path_factory.mktemp("proxy") / "stderr.txt"
    with stderr.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "aftershock", "proxy", "--listen", f"127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    running = Server(port, stderr, process)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                if request(running, "GET", "/version")[0] == 200:
                    break
            assert process.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, "the proxy did not start"
            time.sleep(0.05)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, running.stderr_lines()
    assert_quiet(running)


def assert_quiet(server: Server, since: int | None = None) -> None:
    """Nothing on stderr (after ``since``, else but the start-up line): no traceback, no error."""
    if since is not None:
        assert server.stderr_since(since) == ""
        return
    lines = server.stderr_lines()
    assert lines[:1] == [f"aftershock proxy: Toxiproxy API on http://127.0.0.1:{server.port}"]
    assert lines[1:] == [], "\n".join(lines)


def request(
    server: Server, method: str, path: str, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: status, lower-case headers, body."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, body=body)
        answer = connection.getresponse()
        headers = {name.lower(): value for name, value in answer.getheaders()}
        return answer.status, headers, answer.read()
    finally:
        connection.close()


def raw_exchange(server: Server, data: bytes) -> tuple[int, bytes]:
    """Send raw bytes, read until the server closes; the status and the whole answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(data)
        answer = bytearray()
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
    status_line = bytes(answer).split(b"\r\n", 1)[0].split(b" ")
    assert len(status_line) >= 2 and status_line[0] == b"HTTP/1.1", bytes(answer[:200])
    return int(status_line[1]), bytes(answer)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(body: bytes) -> Any:
    """``body`` as JSON: valid UTF-8, no NaN or Infinity, nothing after the value but a newline."""
    return json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)


def addressable(name: str) -> bool:
    """Whether a proxy called ``name`` can be named in a URL path (Go's router can't either)."""
    return bool(name) and "/" not in name and name not in (".", "..")


def proxy_path(name: str) -> str:
    return "/proxies/" + quote(name, safe="")


def assert_listable(server: Server) -> dict[str, Any]:
    """``GET /proxies`` and every proxy's toxics answer 200 with strict JSON."""
    status, _, body = request(server, "GET", "/proxies")
    assert status == 200, body[:300]
    proxies: dict[str, Any] = strict_json(body)
    for name, proxy in proxies.items():
        assert isinstance(proxy["toxics"], list)
        if addressable(name):
            status, _, body = request(server, "GET", proxy_path(name) + "/toxics")
            assert status == 200, (name, body[:300])
            assert strict_json(body) == proxy["toxics"]
    return proxies


def assert_go_answer(status: int, headers: dict[str, str], body: bytes) -> None:
    """An answer Go's Toxiproxy could give to client garbage, in Go's body shape."""
    if status == 204:
        assert body == b""
        return
    if status < 300:
        strict_json(body)
        return
    if (status, body) in ((404, b"404 page not found\n"), (405, b"")):
        return  # the router's own answers
    error = strict_json(body)
    assert {"error", "status"} <= set(error) and error["status"] == status, body[:300]
    if headers.get("content-type") == "application/json":  # /populate's error answer
        assert set(error) == {"error", "status", "proxies"}, body[:300]
    else:
        assert headers.get("content-type") == "text/plain; charset=utf-8"
        assert set(error) == {"error", "status"} and body.endswith(b"\n"), body[:300]
    # Go's only 5xx here: a proxy that cannot listen where it was told to.
    assert status < 500 or (status == 500 and error["error"].startswith("listen tcp")), body[:300]


def reset_state(server: Server) -> None:
    """Back to one proxy X (disabled, so it binds nothing) with one toxic T."""
    _, _, body = request(server, "GET", "/proxies")
    for name in strict_json(body):
        if addressable(name):
            request(server, "DELETE", proxy_path(name))
    create = b'{"name":"X","upstream":"127.0.0.1:1","listen":"127.0.0.1:0","enabled":false}'
    assert request(server, "POST", "/proxies", create)[0] == 201
    assert request(server, "POST", "/proxies/X/toxics", b'{"type":"latency","name":"T"}')[0] == 200


# ---------------------------------------------------------------- JSON bodies, as bytes

ESCAPES = [b"\\ud83d", b"\\udc00", b"\\ud83d\\ude00", b"\\ud800\\ud800", b"\\u0000", b"\\n"]
ESCAPES += [b'\\"', b"\\\\", b"\\/", b"\\u00e9", b"\\uFFFF"]
RAW_BYTES = [b"\xff", b"\xed\xa0\x80", b"\xf0\x9f\x98", b"\xc3", b"\x7f", b"\xe2\x82\xac"]


def _escape_text(text: str) -> bytes:
    return json.dumps(text, ensure_ascii=False)[1:-1].encode("utf-8")


STRING_BODY = st.lists(
    st.one_of(
        st.text(max_size=6).map(_escape_text),
        st.sampled_from(ESCAPES),
        st.sampled_from(RAW_BYTES),
    ),
    max_size=5,
).map(b"".join)
STRINGS = STRING_BODY.map(lambda body: b'"' + body + b'"')
BAD_STRINGS = st.sampled_from([b'"\\x"', b'"\\u12"', b'"\x01"', b'"abc', b'"\\ud83'])
NUMBER_LITERALS = [
    b"1e39", b"3.5e38", b"-1e39", b"1e400", b"-1e400", b"3.4028235e38", b"1e-50", b"-0",
    b"9223372036854775807", b"9223372036854775808", b"-9223372036854775809", b"0.5", b"1E2",
    b"1" * 5000, b"-" + b"9" * 4400, b"0." + b"0" * 4000 + b"1", b"1e9999999999999999999",
    b"1e-9999999999999999999", b"0e99999999999999999999", b"-1e" + b"9" * 5000, b"7.1e-46",
]  # fmt: skip
BAD_NUMBERS = [b"NaN", b"Infinity", b"-Infinity", b"1.", b"01", b"-", b"1e", b".5", b"+1", b"0x5"]


@st.composite
def composed_numbers(draw: st.DrawFn) -> bytes:
    """A JSON number with any sign, digits, fraction and exponent, however large."""
    text = draw(st.sampled_from(["", "-"])) + str(draw(st.integers(0, 10**45)))
    if draw(st.booleans()):
        text += "." + draw(st.text(alphabet="0123456789", min_size=1, max_size=50))
    if draw(st.booleans()):
        exponent = draw(st.integers(-(10**25), 10**25))
        plus = draw(st.sampled_from(["", "+"])) if exponent >= 0 else ""
        text += draw(st.sampled_from(["e", "E"])) + plus + str(exponent)
    return text.encode()


NUMBERS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(lambda n: str(n).encode()),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: repr(f).encode()),
    composed_numbers(),
    st.sampled_from(NUMBER_LITERALS),
)
LITERALS = st.sampled_from([b"true", b"false", b"null"])
BAD_LITERALS = st.sampled_from([b"tru", b"nul", b"True", b"None", b"undefined"])
DEEP = st.integers(min_value=1, max_value=10_050).map(lambda n: b"[" * n + b"]" * n)
SCALARS = st.one_of(STRINGS, NUMBERS, LITERALS)
BROKEN = st.one_of(BAD_STRINGS, st.sampled_from(BAD_NUMBERS), BAD_LITERALS, DEEP)
FIELD_NAMES = [
    "name", "upstream", "enabled", "type", "stream", "toxicity", "attributes",
    "latency", "jitter", "rate", "delay", "timeout", "average_size", "size_variation", "bytes",
    "NAME", "Type", "junk",
]  # fmt: skip
KEYS = st.one_of(st.sampled_from(FIELD_NAMES).map(lambda key: b'"' + key.encode() + b'"'), STRINGS)


def _object(members: list[tuple[bytes, bytes]]) -> bytes:
    return b"{" + b",".join(key + b":" + value for key, value in members) + b"}"


def _array(items: list[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


VALUES = st.recursive(
    st.one_of(SCALARS, BROKEN),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(_array),
        st.lists(st.tuples(KEYS, inner), max_size=4).map(_object),
    ),
    max_leaves=12,
)
NAMES = st.one_of(
    st.sampled_from([b'"X"', b'"T"', b'"a b"', b'"?#%"', b'"\\u0000"', b'""', b'"."']),
    STRINGS,
)
# Addresses that never need a DNS lookup: an IP with odd ports, or malformed ones.
LISTENS = st.one_of(
    st.sampled_from(
        [
            b'"127.0.0.1:0"', b'""', b'"127.0.0.1:"', b'"127.0.0.1:+0"', b'"127.0.0.1:70000"',
            b'"127.0.0.1:-1"', b'"127.0.0.1:\xd9\xa3"', b'"nocolon"', b'"[::1"', b'"a:b:c"',
            b'"' + b"a" * 64 + b':0"', b'"127.0.0.1:0\\ud83d"', b'"127.0.0.1:' + b"0" * 5000 + b'"',
        ]
    ),
    STRING_BODY.filter(lambda body: b":" not in body).map(lambda body: b'"127.0.0.1:' + body + b'"'),
)  # fmt: skip
TOXIC_TYPES = ["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer"]
TOXIC_TYPES += ["limit_data", "noop", "Latency", "explode"]
TYPES = st.one_of(st.sampled_from(TOXIC_TYPES).map(lambda t: b'"' + t.encode() + b'"'), VALUES)
STREAMS = st.one_of(st.sampled_from([b'"upstream"', b'"DOWNSTREAM"', b'"sideways"']), VALUES)
ATTRIBUTE_NAMES = ["latency", "jitter", "rate", "delay", "timeout", "average_size"]
ATTRIBUTE_NAMES += ["size_variation", "bytes"]
ATTRIBUTES = st.one_of(
    st.lists(
        st.tuples(
            st.sampled_from(ATTRIBUTE_NAMES).map(lambda key: b'"' + key.encode() + b'"'),
            st.one_of(NUMBERS, VALUES),
        ),
        max_size=4,
    ).map(_object),
    VALUES,
)


def _some_of(fields: dict[bytes, st.SearchStrategy[bytes]]) -> st.SearchStrategy[bytes]:
    """Objects with any subset of ``fields``, in any order, sometimes repeated."""
    members = st.lists(
        st.sampled_from(sorted(fields)).flatmap(
            lambda key: fields[key].map(lambda value: (b'"' + key + b'"', value))
        ),
        max_size=len(fields) + 1,
    )
    return members.map(_object)


TOXIC_BODIES = _some_of(
    {
        b"name": NAMES,
        b"type": TYPES,
        b"stream": STREAMS,
        b"toxicity": st.one_of(NUMBERS, VALUES),
        b"attributes": ATTRIBUTES,
    }
)
PROXY_BODIES = _some_of(
    {
        b"name": NAMES,
        b"upstream": st.one_of(STRINGS, VALUES),
        b"listen": LISTENS,
        b"enabled": st.one_of(LITERALS, VALUES),
    }
)
BODIES = st.one_of(
    TOXIC_BODIES,
    PROXY_BODIES,
    st.lists(PROXY_BODIES, max_size=3).map(_array),
    VALUES,
    st.binary(max_size=64),
    st.tuples(st.one_of(TOXIC_BODIES, PROXY_BODIES), st.integers(0, 200)).map(
        lambda cut: cut[0][: cut[1]]
    ),
)
ROUTES = st.sampled_from(
    [
        ("POST", "/proxies"),
        ("POST", "/populate"),
        ("POST", "/proxies/X"),
        ("PATCH", "/proxies/X"),
        ("POST", "/proxies/X/toxics"),
        ("POST", "/proxies/X/toxics/T"),
        ("PATCH", "/proxies/X/toxics/T"),
        ("POST", "/reset"),
    ]
)


@settings(FUZZ, max_examples=400)
@given(route=ROUTES, body=BODIES)
def test_fuzzed_bodies(server: Server, route: tuple[str, str], body: bytes) -> None:
    reset_state(server)
    written = server.stderr_size()
    method, path = route
    assert_go_answer(*request(server, method, path, body))
    assert_listable(server)
    assert_quiet(server, since=written)


# ---------------------------------------------------------------- chunked framing

CHUNK_BODY = b'{"type":"noop","name":"c"}'


@st.composite
def chunk_size_lines(draw: st.DrawFn, size: int) -> tuple[bytes, bool]:
    """A chunk-size line for ``size`` and whether Go's chunked reader accepts it."""
    digits = draw(st.sampled_from([b"%x", b"%X"])) % size
    zeros = draw(st.integers(0, 18 - len(digits)))
    line = b"0" * zeros + digits
    valid = len(line) <= 16
    if draw(st.booleans()):
        line += b";" + draw(st.sampled_from([b"ext", b"a=b", b'q="x y"', b""]))
    line += draw(st.sampled_from([b"", b" ", b"\t", b"  \t"]))
    mutation = draw(
        st.sampled_from(
            [None] * 6 + [b"0x", b"+", b"-", b" ", b"_", b"bare-lf", b"cr", b"space-ext", b"g"]
        )
    )
    if mutation in (b"0x", b"+", b"-", b" "):
        line = mutation + line
    elif mutation == b"_":
        line = line[:1] + b"_" + line[1:]
    elif mutation == b"g":
        line = line + b"g" if b";" not in line else line.replace(b";", b"g;", 1)
    elif mutation == b"space-ext":
        line = line.split(b";")[0].rstrip() + b" ;ext"
    if mutation is not None and mutation not in (b"bare-lf", b"cr"):
        valid = False
    if mutation == b"bare-lf":
        return line + b"\n", False
    if mutation == b"cr":
        return line + b"\r\r\n", False
    return line + b"\r\n", valid


@st.composite
def chunked_bodies(draw: st.DrawFn) -> tuple[bytes, bool]:
    """CHUNK_BODY in chunks, with at most a few framing mistakes; and whether it is valid."""
    cuts = sorted(draw(st.sets(st.integers(1, len(CHUNK_BODY) - 1), max_size=4)))
    parts = [CHUNK_BODY[a:b] for a, b in zip([0, *cuts], [*cuts, len(CHUNK_BODY)], strict=True)]
    framed, valid = b"", True
    for part in parts:
        line, line_valid = draw(chunk_size_lines(len(part)))
        end = draw(st.sampled_from([b"\r\n"] * 5 + [b"\n", b"\r\r"]))
        framed += line + part + end
        valid = valid and line_valid and end == b"\r\n"
    last, last_valid = draw(chunk_size_lines(0))
    trailer = draw(st.sampled_from([b"\r\n", b"X-Trailer: 1\r\n\r\n"]))
    return framed + last + trailer, valid and last_valid


@settings(FUZZ, max_examples=250)
@given(chunked=chunked_bodies())
def test_fuzzed_chunked_bodies(server: Server, chunked: tuple[bytes, bool]) -> None:
    reset_state(server)
    written = server.stderr_size()
    framed, valid = chunked
    head = (
        b"POST /proxies/X/toxics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n"
    )
    status, answer = raw_exchange(server, head + framed)
    assert status == (200 if valid else 400), answer[:300]
    if valid:
        assert b'"name":"c"' in answer
    assert_listable(server)
    assert_quiet(server, since=written)


# ---------------------------------------------------------------- request targets and lengths

TARGET_PIECES = st.one_of(
    st.sampled_from(["proxies", "X", "toxics", "T", "..", ".", "", "%", "%zz", "%4", "%2F"]),
    st.sampled_from(["%E2%82%AC", "%FF", "%00", "#", "?a=b", "//", "reset", "version"]),
    st.text(alphabet=st.characters(codec="latin-1", exclude_characters=" \r\n"), max_size=6),
)
TARGETS = st.one_of(
    st.lists(TARGET_PIECES, max_size=5).map(lambda pieces: "/" + "/".join(pieces)),
    st.sampled_from(["*", "http://[::1/x", "http://x/proxies", "proxies", "//x/proxies"]),
)
LENGTHS = st.one_of(
    st.none(),
    st.sampled_from(["\xb2", "\xb9", "1" * 5000, "0" * 3000 + "2", "+2", "-1", "2 2", "", "0x2"]),
    st.integers(0, 2).map(str),  # never more than the two bytes sent
)


@settings(FUZZ, max_examples=250)
@given(
    method=st.sampled_from(["GET", "POST", "PATCH", "DELETE", "HEAD", "PUT"]),
    target=TARGETS,
    length=LENGTHS,
)
def test_fuzzed_request_targets(
    server: Server, method: str, target: str, length: str | None
) -> None:
    reset_state(server)
    written = server.stderr_size()
    head = f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    status, answer = raw_exchange(server, head.encode("latin-1") + b"\r\n{}")
    assert status < 500, answer[:300]
    if b"Location: " in answer:
        location = answer.split(b"Location: ", 1)[1].split(b"\r\n", 1)[0]
        assert location.isascii() and b" " not in location, location
    assert_listable(server)
    assert_quiet(server, since=written)
