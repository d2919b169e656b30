"""Real peers for the Toxiproxy contract suite: a TCP upstream, connections, a recorder.

Everything listens on 127.0.0.1 with ephemeral ports; every socket the tests
open is closed before the test ends (``filterwarnings = error`` turns a leaked
transport into a failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import httpx

BLOB = bytes(range(256)) * 4096
"""Payload served by ``blob N`` (1 MiB of a recognisable pattern)."""


class Upstream:
    """A real TCP service on 127.0.0.1.

    The first line selects the mode: ``echo`` echoes everything after it;
    ``blob N`` sends the first N bytes of ``BLOB`` and closes.
    """

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def address(self) -> str:
        """``host:port`` to use as a proxy upstream."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            line = await reader.readline()
            if line.startswith(b"blob "):
                writer.write(BLOB[: int(line.split()[1])])
                await writer.drain()
            else:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass  # toxics reset and cut connections on purpose
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def connect(address: str) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """Open a TCP connection to ``host:port`` and always close it."""
    host, _, port = address.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


def closed_port() -> int:
    """A 127.0.0.1 port that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Recorder(httpx.AsyncBaseTransport):
    """A real HTTP transport that remembers each request and the status it got."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.calls: list[tuple[httpx.Request, int]] = []

    @property
    def last_status(self) -> int:
        return self.calls[-1][1]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self.calls.append((request, response.status_code))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class Garbage:
    """A real HTTP/1.1 server on 127.0.0.1 that answers every request the same way.

    ``answer`` is ``(status, content_type, body)``. ``endless`` streams body
    bytes until the client hangs up; ``trickle`` sends one byte every 0.2 s.
    ``requests`` lists ``"METHOD /path"`` as they came; ``sent`` counts body
    bytes written and ``hung_up`` is set when a client stopped reading.
    """

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.answer: tuple[int, str, bytes] = (200, "text/plain", b"")
        self.endless = False
        self.trickle = False
        self.requests: list[str] = []
        self.sent = 0
        self.hung_up = asyncio.Event()
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            method, path, _ = (await reader.readline()).decode().split(" ", 2)
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            self.requests.append(f"{method} {path}")
            status, content_type, body = self.answer
            head = f"HTTP/1.1 {status} Whatever\r\nContent-Type: {content_type}\r\n"
            if self.endless or self.trickle:
                writer.write(f"{head}Connection: close\r\n\r\n".encode())
                while True:
                    chunk = body[:1] if self.trickle else body
                    writer.write(chunk)
                    await writer.drain()
                    self.sent += len(chunk)
                    await asyncio.sleep(0.2 if self.trickle else 0)
            writer.write(f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
            writer.write(body)
            await writer.drain()
        except (ConnectionError, OSError):
            self.hung_up.set()
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
