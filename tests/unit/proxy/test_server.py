"""The API's HTTP framing (raw sockets) and embedding the server: start, stop, config, serve."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from aftershock.errors import ConfigError
from aftershock.proxy import VERSION, EmbeddedToxiproxy, serve

from .helpers import connect, create_proxy, port_refuses


def error_body(message: str, status: int) -> str:
    return json.dumps({"error": message, "status": status}, separators=(",", ":")) + "\n"


async def exchange(address: tuple[str, int], request: bytes) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    async with connect(address) as (reader, writer):
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(5):
            return await reader.read(-1)


def api_address(toxiproxy: EmbeddedToxiproxy) -> tuple[str, int]:
    return toxiproxy.host, toxiproxy.port


async def test_unclean_paths_are_redirected(toxiproxy: EmbeddedToxiproxy) -> None:
    raw = await exchange(
        api_address(toxiproxy),
        b"GET /proxies/../version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert raw.startswith(b"HTTP/1.1 301 Moved Permanently\r\n")
    assert b"\r\nLocation: /version\r\n" in raw


async def test_keep_alive_serves_several_requests_on_one_connection(
    toxiproxy: EmbeddedToxiproxy,
) -> None:
    request = b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
    closing = b"DELETE /proxies/none HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    raw = await exchange(api_address(toxiproxy), request + request + closing)
    assert raw.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert raw.count(b"HTTP/1.1 404 Not Found\r\n") == 1
    assert raw.endswith(error_body("proxy not found", 404).encode())
    assert b"Connection: close\r\n" in raw


async def test_http_10_closes_after_one_answer(toxiproxy: EmbeddedToxiproxy) -> None:
    raw = await exchange(api_address(toxiproxy), b"GET /version HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b'"}\n')


async def test_204_answers_have_no_body_or_length(toxiproxy: EmbeddedToxiproxy) -> None:
    raw = await exchange(
        api_address(toxiproxy),
        b"POST /reset HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 204 No Content\r\n")
    assert b"Content-Length" not in head
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_chunked_and_expect_continue_bodies(
    toxiproxy: EmbeddedToxiproxy, echo_upstream: str
) -> None:
    body = json.dumps({"name": "c", "upstream": echo_upstream}).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:]) if part)
    raw = await exchange(
        api_address(toxiproxy),
        b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Expect: 100-continue\r\nConnection: close\r\n\r\n" + chunked + b"0\r\n\r\n",
    )
    assert raw.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n")
    assert b'"name":"c"' in raw


async def test_bodies_up_to_one_mebibyte_are_read(
    toxiproxy: EmbeddedToxiproxy, echo_upstream: str
) -> None:
    body = json.dumps({"name": "big", "upstream": echo_upstream, "pad": ""}).encode()
    body = body.replace(b'"pad": ""', b'"pad": "' + b"a" * (1024 * 1024 - len(body)) + b'"')
    assert len(body) == 1024 * 1024
    raw = await exchange(
        api_address(toxiproxy),
        b"POST /proxies HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body),
    )
    assert raw.startswith(b"HTTP/1.1 201 Created\r\n")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET /version HTTP/1.1\r\n\r\n", b"400"),  # no Host
        (b"GET /version HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n", b"400"),
        (b"GET /version HTTP/2.0\r\nHost: x\r\n\r\n", b"505"),
        (b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", b"413"),
        (b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", b"400"),
        (b"GET /version HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", b"431"),
        (b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", b"501"),
    ],
)
async def test_malformed_requests_are_refused_and_closed(
    toxiproxy: EmbeddedToxiproxy, request_bytes: bytes, status: bytes
) -> None:
    raw = await exchange(api_address(toxiproxy), request_bytes)
    assert raw.startswith(b"HTTP/1.1 " + status + b" ")
    assert b"Connection: close\r\n" in raw


# ---------------------------------------------------------------- embedding


async def test_config_populates_proxies_at_start(echo_upstream: str) -> None:
    config = [{"name": "boot", "upstream": echo_upstream, "listen": "127.0.0.1:0"}]
    async with (
        EmbeddedToxiproxy(config=config) as server,
        httpx.AsyncClient(base_url=server.api_url) as client,
    ):
        assert server.api_url == f"http://127.0.0.1:{server.port}"
        assert server.port > 0
        proxy = (await client.get("/proxies/boot")).json()
        assert proxy["enabled"] is True


async def test_bad_config_raises_and_leaves_nothing_running() -> None:
    server = EmbeddedToxiproxy(config=[{"name": "broken"}])
    with pytest.raises(ConfigError, match="missing required field: upstream at proxy 1"):
        await server.start()
    with pytest.raises(RuntimeError):
        _ = server.api_url


async def test_stop_closes_the_api_and_every_proxy(echo_upstream: str) -> None:
    async with (
        EmbeddedToxiproxy() as server,
        httpx.AsyncClient(base_url=server.api_url) as client,
    ):
        address = await create_proxy(client, echo_upstream)
        api_port = server.port
    assert await port_refuses("127.0.0.1", api_port)
    assert await port_refuses(*address)


async def test_serve_runs_until_stopped() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    stop = asyncio.Event()
    running = asyncio.create_task(serve("127.0.0.1", port, stop))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(100):
            try:
                answer = await client.get("/version")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.01)
        assert answer.json() == {"version": VERSION}
    stop.set()
    await asyncio.wait_for(running, 5)
    assert await port_refuses("127.0.0.1", port)
