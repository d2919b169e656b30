"""The fast HTTP engine against hostile and broken servers on 127.0.0.1.

Each server here misbehaves on the wire in one way; whatever it does, a sample
ends within its timeout as a failed sample with a detail, or as the answer a
correct client reads, and a connection is reused only when that is safe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aftershock.model.probes import HttpProbe
from aftershock.ports import ProbeResult
from aftershock.probes import HttpProbeAdapter
from aftershock.probes.fastpath import FastSession
from tests.contract.probes.servers import LocalServer

pytestmark = pytest.mark.timeout(30)

MARGIN = 0.5  # scheduling slack on a busy CI machine

Conn = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def probe(url: str, **fields: Any) -> HttpProbeAdapter:
    spec = HttpProbe.model_validate({"url": url, **fields})
    return HttpProbeAdapter(spec, session=FastSession())


async def sample(server: LocalServer, **fields: Any) -> ProbeResult:
    async with probe(server.url + "/health", **fields) as adapter:
        return await adapter.check()


def answering(raw: bytes, *, then_close: bool = False) -> Conn:
    """A server that answers every request with ``raw`` (and optionally closes)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            writer.write(raw)
            await writer.drain()
            if then_close:
                return

    return serve


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n",
        b"\x16\x03\x01\x00\x2a" + b"\x00" * 64,
    ],
)
async def test_garbage_status_line_is_a_failed_sample(raw: bytes) -> None:
    async with LocalServer(answering(raw)) as server:
        result = await sample(server, timeout="2s")
    assert not result.ok
    assert result.status is None
    assert result.detail.startswith("RemoteProtocolError: malformed status line"), result.detail


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    ],
)
async def test_malformed_framing_is_a_failed_sample(raw: bytes) -> None:
    async with LocalServer(answering(raw)) as server:
        result = await sample(server, timeout="2s")
    assert not result.ok
    assert result.detail.startswith("RemoteProtocolError: "), result.detail


async def test_slowloris_headers_are_cut_by_the_timeout() -> None:
    async def slowloris(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for i in range(1000):
            writer.write(b"X-Slow-%d: y\r\n" % i)
            await writer.drain()
            await asyncio.sleep(0.05)

    async with LocalServer(slowloris) as server:
        started = time.monotonic()
        result = await sample(server, timeout="300ms")
        elapsed = time.monotonic() - started
    assert not result.ok
    assert result.detail == "timed out after 300ms"
    assert 0.25 <= elapsed < 0.3 + MARGIN


async def test_huge_headers_are_refused_without_reading_forever() -> None:
    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n")
        line = b"X-Big: " + b"y" * 8000 + b"\r\n"
        for _ in range(10_000):  # 80 MB if nobody stops reading
            writer.write(line)
            await writer.drain()

    async with LocalServer(huge) as server:
        result = await sample(server, timeout="5s")
    assert not result.ok
    assert result.detail == "RemoteProtocolError: response head larger than 64 KiB"


async def test_chunked_body_is_decoded_for_body_checks() -> None:
    body = b'{"status": "ok", "pad": "' + b"p" * 5000 + b'"}'
    chunks = b"".join(
        b"%x;ext=1\r\n%s\r\n" % (len(body[i : i + 700]), body[i : i + 700])
        for i in range(0, len(body), 700)
    )
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\nX-T: 1\r\n\r\n"

    async def dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            for i in range(0, len(raw), 333):  # chunk boundaries fall anywhere
                writer.write(raw[i : i + 333])
                await writer.drain()
                await asyncio.sleep(0)

    async with LocalServer(dribble) as server:
        adapter = probe(server.url + "/health", expectBody={"jsonPath": "$.status", "equals": "ok"})
        async with adapter:
            first, second = await adapter.check(), await adapter.check()
        assert server.connections == 1  # a complete chunked body leaves the connection reusable
    assert first.ok, first.detail
    assert second.ok, second.detail
    assert first.body is not None
    assert first.body.startswith('{"status": "ok"')


async def test_close_delimited_body_is_read_to_the_end() -> None:
    raw = b"HTTP/1.0 200 OK\r\n\r\nhealthy and done"
    async with LocalServer(answering(raw, then_close=True)) as server:
        async with probe(server.url + "/", expectBody={"regex": "done$"}) as adapter:
            results = [await adapter.check(), await adapter.check()]
        assert server.connections == 2  # no length: the connection ends with the body
    assert all(r.ok for r in results), [r.detail for r in results]


async def test_reset_mid_body_is_a_failed_sample() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.transport.abort()  # RST, not FIN

    async with LocalServer(reset) as server:
        started = time.monotonic()
        result = await sample(server, timeout="2s")
        elapsed = time.monotonic() - started
    assert not result.ok
    assert result.status is None
    assert result.detail.startswith(("ReadError", "RemoteProtocolError")), result.detail
    assert elapsed < 1.0


async def test_close_mid_body_is_a_failed_sample() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part"
    async with LocalServer(answering(raw, then_close=True)) as server:
        result = await sample(server, timeout="2s")
    assert not result.ok
    assert result.detail == (
        "RemoteProtocolError: server closed the connection in the body (incomplete response)"
    )


async def test_keep_alive_reuse_after_the_server_closed_the_idle_connection() -> None:
    # The server answers once per connection and closes it after a moment,
    # while the probe holds it idle: the next sample must use a new one.
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK)
        await writer.drain()
        await asyncio.sleep(0.05)

    async with LocalServer(once) as server:
        async with probe(server.url + "/health") as adapter:
            results = []
            for _ in range(3):
                results.append(await adapter.check())
                await asyncio.sleep(0.2)
        assert server.connections == 3
    assert all(r.ok for r in results), [r.detail for r in results]


async def test_a_connection_closed_as_it_is_reused_is_retried_once() -> None:
    # The server keeps the connection open after its answer but closes it on
    # the next request without a byte: the race a client loses when a server's
    # idle timer fires just as the request leaves. A GET is sent again.
    served = 0

    async def racy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await reader.readuntil(b"\r\n\r\n")
        served += 1
        writer.write(OK)
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # the reuse: dropped unanswered

    async with LocalServer(racy) as server, probe(server.url + "/health") as adapter:
        results = [await adapter.check() for _ in range(4)]
    assert all(r.ok for r in results), [r.detail for r in results]
    assert served == 4


async def test_a_post_is_not_retried_on_a_dropped_reused_connection() -> None:
    requests = 0

    async def racy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        await reader.readuntil(b"\r\n\r\n")
        requests += 1
        writer.write(OK)
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        requests += 1

    async with LocalServer(racy) as server, probe(server.url + "/h", method="POST") as adapter:
        first, second = await adapter.check(), await adapter.check()
    assert first.ok
    assert not second.ok
    assert second.detail == "RemoteProtocolError: server closed the connection without answering"
    assert requests == 2


async def test_bytes_past_the_body_stop_reuse() -> None:
    raw = OK + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno"  # one request, two answers
    async with LocalServer(answering(raw)) as server:
        async with probe(server.url + "/health", expectBody={"regex": "^ok$"}) as adapter:
            results = [await adapter.check() for _ in range(3)]
        assert server.connections == 3
    assert all(r.ok for r in results), [r.detail for r in results]


async def test_interim_100_answers_are_skipped_and_gzip_is_decoded() -> None:
    import gzip

    packed = gzip.compress(b"healthy")
    raw = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
        % (len(packed), packed)
    )
    async with LocalServer(answering(raw)) as server:
        result = await sample(server, expectBody={"regex": "^healthy$"})
    assert result.ok, result.detail
    assert result.body == "healthy"


async def test_a_large_body_is_cut_at_the_limit_and_the_connection_dropped() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3000000\r\n\r\n" + b"z" * 3_000_000
    async with LocalServer(answering(raw)) as server:
        async with probe(server.url + "/", expectBody={"regex": "never"}) as adapter:
            first, second = await adapter.check(), await adapter.check()
        assert server.connections == 2
    assert "1048576+ bytes" in first.detail
    assert second.status == 200


async def test_request_on_the_wire() -> None:
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        body = await reader.readexactly(5)
        seen.append(head + body)
        writer.write(OK)
        await writer.drain()

    async with LocalServer(record) as server:
        port = server.port
        url = f"http://user:p%40ss@127.0.0.1:{port}/a/b?x=1&y=2"
        async with probe(url, method="PUT", body="hello", headers={"X-One": "1"}) as adapter:
            assert (await adapter.check()).ok
    request = seen[0].decode()
    assert request.startswith("PUT /a/b?x=1&y=2 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{port}\r\n" in request
    assert "Authorization: Basic dXNlcjpwQHNz\r\n" in request  # user:p@ss
    assert "X-One: 1\r\n" in request
    assert "Content-Length: 5\r\n" in request
    assert request.endswith("\r\n\r\nhello")


async def test_a_header_value_with_a_line_break_is_refused_not_sent() -> None:
    async with LocalServer(answering(OK)) as server:
        result = await sample(server, headers={"X-Bad": "a\r\nInjected: yes"})
        assert server.requests == []
    assert not result.ok
    assert result.detail.startswith("LocalProtocolError: header")


async def test_cancelling_a_sample_drops_its_connection() -> None:
    async with LocalServer(answering(OK)) as server, probe(server.url, timeout="5s") as adapter:
        assert (await adapter.check()).ok
        task = asyncio.ensure_future(adapter.check())
        await asyncio.sleep(0)  # the request is on its way
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await adapter.check()).ok
