"""ToxiproxyClient and driver against a real HTTP server on 127.0.0.1 that answers garbage.

Whatever comes back, the caller gets the project's own error naming the status,
the content type and a short escaped excerpt of the body, never an
``AttributeError`` from poking at the wrong type; and no more than a bounded
number of bytes is ever read.
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from aftershock.drivers.toxiproxy import ToxiproxyDriver
from aftershock.drivers.toxiproxy.client import ToxiproxyClient
from aftershock.drivers.toxiproxy.errors import ToxiproxyAPIError, ToxiproxyNotFound, excerpt
from aftershock.drivers.toxiproxy.resources import Proxy
from aftershock.errors import DriverUnavailable, UnexpectedAnswer
from aftershock.model.faults import TOXIPROXY_LATENCY
from aftershock.model.targets import TargetSpec, ToxiproxyTarget
from aftershock.ports import FaultRequest
from aftershock.settings import Allowlist
from tests.contract.toxiproxy.peers import Garbage

pytestmark = pytest.mark.timeout(60)

Call = Callable[[ToxiproxyClient], Awaitable[Any]]

CALLS: dict[str, Call] = {
    "version": lambda c: c.version(),
    "proxies": lambda c: c.proxies(),
    "get_proxy": lambda c: c.get_proxy("db"),
    "create_proxy": lambda c: c.create_proxy("db", "127.0.0.1:9"),
    "update_proxy": lambda c: c.update_proxy("db", enabled=False),
    "populate": lambda c: c.populate([{"name": "db", "upstream": "127.0.0.1:9"}]),
    "toxics": lambda c: c.toxics("db"),
    "create_toxic": lambda c: c.create_toxic("db", "latency"),
    "get_toxic": lambda c: c.get_toxic("db", "t"),
    "update_toxic": lambda c: c.update_toxic("db", "t", toxicity=0.5),
    "delete_proxy": lambda c: c.delete_proxy("db"),
    "delete_toxic": lambda c: c.delete_toxic("db", "t"),
    "reset": lambda c: c.reset(),
}

_NAN_TOXIC = b'{"name":"t","type":"latency","stream":"downstream","toxicity":NaN,"attributes":{}}'
GARBAGE: dict[str, tuple[str, bytes]] = {
    "plain text": ("text/plain; charset=utf-8", b"hello world\n"),
    "html": (
        "text/html; charset=utf-8",
        b"<!doctype html>\n<html><body>\x1b[31mBad \xe2\x80\xaeGateway\r\n</body></html>",
    ),
    "string": ("application/json", b'"str"'),
    "list": ("application/json", b"[]"),
    "empty object": ("application/json", b"{}"),
    "truncated": ("application/json", b'{"name": "db", "listen": "127.0.0.1:1", "upst'),
    "nan": (
        "application/json",
        b'{"name":"db","listen":"a:1","upstream":"b:2","enabled":true,"toxics":['
        + _NAN_TOXIC
        + b"]}",
    ),
    "wrong types": (
        "application/json",
        b'{"name":"db","listen":1,"upstream":"b:2","enabled":"yes","toxics":{}}',
    ),
    "toxicity nan": ("application/json", _NAN_TOXIC),
}

# Garbage that happens to be a valid answer for that call.
VALID = {
    ("empty object", "proxies"),  # no proxies at all
    ("list", "toxics"),  # no toxics
    ("list", "populate"),  # the oldest servers answered the bare list
}


@pytest.fixture
async def garbage() -> AsyncIterator[Garbage]:
    server = Garbage()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def assert_one_clean_line(message: str) -> None:
    assert all(unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp") for c in message), message
    # 200 characters of body at most, each escaped to at most six.
    assert len(message) < 1500, len(message)


@pytest.mark.parametrize("kind", list(GARBAGE))
async def test_every_call_reports_what_the_server_answered(garbage: Garbage, kind: str) -> None:
    content_type, body = GARBAGE[kind]
    garbage.answer = (200, content_type, body)
    async with ToxiproxyClient(garbage.url) as client:
        for name, call in CALLS.items():
            if (kind, name) in VALID:
                await call(client)
                continue
            with pytest.raises(UnexpectedAnswer) as info:
                await call(client)
            message = str(info.value)
            assert isinstance(info.value, DriverUnavailable)
            assert f"Toxiproxy API {garbage.url} answered" in message, message
            assert f"with 200 ({content_type}) and body" in message, message
            assert excerpt(body) in message, message
            assert f"({len(body)} bytes)" in message, message
            assert_one_clean_line(message)
            assert "has no attribute" not in message
    assert len(garbage.requests) == len(CALLS)  # one request each: nothing retried here


async def test_control_characters_are_escaped(garbage: Garbage) -> None:
    garbage.answer = (200, *GARBAGE["html"])
    async with ToxiproxyClient(garbage.url) as client:
        with pytest.raises(UnexpectedAnswer) as info:
            await client.get_proxy("db")
    message = str(info.value)
    assert f"Toxiproxy API {garbage.url} answered GET /proxies/db with 200" in message
    assert "'<!doctype html>\\x0a<html><body>\\x1b[31mBad \\u202eGateway\\x0d\\x0a" in message
    assert "the body is not JSON" in message


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("string", ": the proxy is a string, not an object"),
        ("list", ": the proxy is a list, not an object"),
        ("empty object", ": the proxy has no 'name'"),
        ("truncated", ": the body is not JSON (Unterminated string"),
        ("nan", ": NaN is not JSON"),
        ("wrong types", ": the proxy: 'listen' is a number, not a string"),
    ],
)
async def test_the_error_says_what_is_wrong(garbage: Garbage, kind: str, problem: str) -> None:
    garbage.answer = (200, *GARBAGE[kind])
    async with ToxiproxyClient(garbage.url) as client:
        with pytest.raises(UnexpectedAnswer, match="not a proxy") as info:
            await client.get_proxy("db")
    assert problem in str(info.value)


async def test_an_excerpt_is_bounded() -> None:
    assert excerpt(b"a" * 1000) == "'" + "a" * 200 + "'..."
    assert excerpt("é".encode() * 300, limit=3) == "'ééé'..."
    assert excerpt(b"\xff\xfe ok") == "'\ufffd\ufffd ok'"
    assert excerpt(b"") == "''"


async def test_an_endless_body_is_cut_and_the_connection_dropped(garbage: Garbage) -> None:
    garbage.answer = (200, "application/json", b'{"proxies": [' + b"1," * 32768)
    garbage.endless = True
    limit = 256 * 1024
    started = time.monotonic()
    async with ToxiproxyClient(garbage.url, max_body=limit) as client:
        with pytest.raises(UnexpectedAnswer) as info:
            await client.proxies()
        # The client hung up: the server's writes fail soon after.
        await asyncio.wait_for(garbage.hung_up.wait(), 10)
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert f"the body is longer than {limit} bytes" in message
    assert f"({limit}+ bytes)" in message
    assert '\'{"proxies": [1,1,1,' in message
    assert_one_clean_line(message)
    # Only what fits in the socket buffers went out beyond what was read.
    assert garbage.sent < limit + 64 * 1024 * 1024


async def test_an_endless_error_body_is_cut_too(garbage: Garbage) -> None:
    garbage.answer = (502, "text/html", b"<p>\x07" * 10000)
    garbage.endless = True
    async with ToxiproxyClient(garbage.url, max_body=100_000) as client:
        with pytest.raises(ToxiproxyAPIError) as info:
            await client.get_proxy("db")
    assert info.value.status == 502
    assert info.value.message.startswith("<p>\\x07<p>\\x07")
    assert info.value.message == "<p>\\x07" * 50 + "..."
    assert_one_clean_line(str(info.value))


async def test_a_trickling_answer_is_given_up_on(garbage: Garbage) -> None:
    garbage.answer = (200, "application/json", b"{" * 100)
    garbage.trickle = True
    started = time.monotonic()
    async with ToxiproxyClient(garbage.url, deadline=1.0) as client:
        with pytest.raises(
            DriverUnavailable, match=r"no full answer to GET /proxies in 1s"
        ) as info:
            await client.proxies()
    assert not isinstance(info.value, UnexpectedAnswer)  # slow, not wrong: worth a retry
    assert 0.9 < time.monotonic() - started < 5


async def test_a_redirect_is_not_an_answer(garbage: Garbage) -> None:
    garbage.answer = (301, "text/html", b"<a href='/elsewhere'>moved</a>")
    async with ToxiproxyClient(garbage.url) as client:
        with pytest.raises(UnexpectedAnswer, match=r"with 301 \(text/html\).*not a success status"):
            await client.proxies()


async def test_error_status_with_garbage_keeps_its_class(garbage: Garbage) -> None:
    garbage.answer = (404, "application/json", b'["not", "an", "object"]')
    async with ToxiproxyClient(garbage.url) as client:
        with pytest.raises(ToxiproxyNotFound) as info:
            await client.get_proxy("db")
    assert info.value.message == "Not Found"  # no "error" text: the reason phrase
    assert info.value.body == ["not", "an", "object"]


async def test_a_proxy_answer_that_is_right_still_parses(garbage: Garbage) -> None:
    garbage.answer = (
        200,
        "application/json",
        (
            b'{"name":"db","listen":"127.0.0.1:1","upstream":"127.0.0.1:2","enabled":false,'
            b'"Logger":{},"toxics":[{"name":"t","type":"latency","stream":"upstream",'
            b'"toxicity":0.5,"attributes":{"latency":3}}]}'
        ),
    )
    async with ToxiproxyClient(garbage.url) as client:
        proxy = await client.get_proxy("db")
    assert proxy == Proxy(
        name="db",
        listen="127.0.0.1:1",
        upstream="127.0.0.1:2",
        enabled=False,
        toxics=proxy.toxics,
    )
    assert [(t.name, t.stream, t.toxicity, dict(t.attributes)) for t in proxy.toxics] == [
        ("t", "upstream", 0.5, {"latency": 3})
    ]


# ---------------------------------------------------------------- through the driver


def request(api: str) -> FaultRequest:
    return FaultRequest(
        run_id="r1",
        step="slow",
        fault=TOXIPROXY_LATENCY,
        target_name="db",
        target=TargetSpec(toxiproxy=ToxiproxyTarget(api=api, proxy="db")),
        params=TOXIPROXY_LATENCY.params.model_validate({"latency": "10ms"}),
    )


async def test_the_driver_names_the_target_and_does_not_retry(garbage: Garbage) -> None:
    garbage.answer = (200, "text/html", b"<html>captive portal</html>")
    driver = ToxiproxyDriver(Allowlist())
    async with AsyncExitStack() as stack:
        await driver.start(stack)
        with pytest.raises(UnexpectedAnswer) as info:
            await driver.prepare(request(garbage.url))
    message = str(info.value)
    assert message.startswith("db: Toxiproxy API ")
    assert info.value.target == "db"
    assert "'<html>captive portal</html>'" in message
    assert isinstance(info.value.__cause__, UnexpectedAnswer)
    assert garbage.requests == ["GET /proxies/db"]  # the same server gives the same answer
