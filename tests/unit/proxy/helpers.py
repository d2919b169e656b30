"""Helpers for the embedded Toxiproxy tests: local upstream servers and client connections."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx

StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class Upstreams:
    """Starts TCP servers on 127.0.0.1 for the duration of one test."""

    servers: list[asyncio.Server]
    tasks: set[asyncio.Task[None]]

    async def start(self, handler: StreamHandler) -> str:
        """Serve ``handler``; returns "127.0.0.1:port"."""

        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self.tasks.add(task)
            try:
                await handler(reader, writer)
            except (OSError, asyncio.CancelledError):
                # Not re-raised: asyncio's stream callback would raise it again.
                pass
            finally:
                writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

        server = await asyncio.start_server(tracked, "127.0.0.1", 0)
        self.servers.append(server)
        return f"127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Send back everything received, until the peer closes."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


async def create_proxy(api: httpx.AsyncClient, upstream: str, name: str = "p") -> tuple[str, int]:
    """Create a proxy on an ephemeral port; returns its (host, port)."""
    answer = await api.post(
        "/proxies", json={"name": name, "upstream": upstream, "listen": "127.0.0.1:0"}
    )
    assert answer.status_code == 201, answer.text
    host, _, port = answer.json()["listen"].rpartition(":")
    return host, int(port)


@contextlib.asynccontextmanager
async def connect(
    address: tuple[str, int],
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A client connection, closed (and waited for) on exit whatever happened to it."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def read_all(reader: asyncio.StreamReader) -> bytes:
    """Everything until the peer closes."""
    data = bytearray()
    while chunk := await reader.read(65536):
        data += chunk
    return bytes(data)


async def port_refuses(host: str, port: int) -> bool:
    """Whether nothing listens on ``host:port``."""
    try:
        _, writer = await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        return True
    writer.close()
    await writer.wait_closed()
    return False
