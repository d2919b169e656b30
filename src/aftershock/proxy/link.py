"""One proxied TCP connection: a client socket, an upstream socket and a link each way.

Each link (upstream = client to server, downstream = server to client) has a
reader task that stamps and queues chunks, and a pump task that passes them
through the link's stages and writes them out. The queue decouples reading
from delaying, so a latency toxic delays every chunk from the time it was read
without limiting throughput.

Like Toxiproxy, the proxy does not carry half-closes: when one side closes,
the link flushes what it holds (honouring slow_close) and the whole
connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable, Iterable

from aftershock.proxy.toxics import Chunk, Direction, LinkClosed, Stage, Toxic, new_stage

__all__ = ["Connection", "Link"]

READ_SIZE = 64 * 1024
# Chunks a link may hold while its stages delay them (Toxiproxy's latency buffer).
QUEUE_CHUNKS = 1024
# How long a graceful close may wait for the peer to take buffered data.
CLOSE_GRACE = 30.0


class Link:
    """The toxics of one direction of one connection, and the tasks moving its data."""

    def __init__(
        self,
        connection: Connection,
        direction: Direction,
        source: asyncio.StreamReader,
        dest: asyncio.StreamWriter,
        toxics: Iterable[Toxic],
    ) -> None:
        self.direction = direction
        self._connection = connection
        self._source = source
        self._dest = dest
        self._queue: asyncio.Queue[Chunk | None] = asyncio.Queue(QUEUE_CHUNKS)
        self._idle = False  # the pump waits for a chunk
        self.stages: list[Stage] = [new_stage(toxic, connection.close) for toxic in toxics]

    def attach(self, toxic: Toxic) -> None:
        """Start a new toxic on this link, at the end of its chain."""
        self.stages.append(new_stage(toxic, self._connection.close))

    def update(self, toxic: Toxic) -> None:
        """Restart ``toxic`` with its new attributes and toxicity."""
        for stage in self.stages:
            if stage.toxic is toxic:
                stage.restart()

    def detach(self, toxic: Toxic) -> None:
        """Stop ``toxic`` on this link."""
        for stage in [s for s in self.stages if s.toxic is toxic]:
            self.stages.remove(stage)
            stage.remove()

    def stop(self) -> None:
        """Stop every stage's timers (the connection is closing)."""
        for stage in self.stages:
            stage.stop()

    async def read(self) -> None:
        """Queue what the source sends, then None for its end."""
        loop = asyncio.get_running_loop()
        try:
            while data := await self._source.read(READ_SIZE):
                if self._idle and self._queue.empty() and not any(s.live for s in self.stages):
                    # Nothing to apply and nothing queued: skipping the pump saves a task
                    # switch per chunk without reordering anything.
                    self._dest.write(data)
                    await self._dest.drain()
                else:
                    await self._queue.put(Chunk(data, loop.time()))
        except OSError:
            pass
        await self._queue.put(None)

    async def _next(self) -> Chunk | None:
        self._idle = True
        try:
            return await self._queue.get()
        finally:
            self._idle = False

    async def pump(self) -> None:
        """Pass queued chunks through the stages to the destination."""
        try:
            while (chunk := await self._next()) is not None:
                chain = tuple(stage for stage in self.stages if stage.live)
                if chain:
                    await self._through(chain, 0, chunk)
                else:
                    self._dest.write(chunk.data)
                    await self._dest.drain()
            for stage in tuple(self.stages):
                if stage.live:
                    await stage.at_eof()
            self._connection.close()
        except LinkClosed as closed:
            if closed.reset:
                self._connection.reset()
            else:
                self._connection.close()
        except OSError:
            self._connection.abort()

    async def _through(self, chain: tuple[Stage, ...], index: int, chunk: Chunk) -> None:
        while index < len(chain) and not chain[index].live:
            index += 1
        if index == len(chain):
            self._dest.write(chunk.data)
            await self._dest.drain()
            return

        async def emit(out: Chunk) -> None:
            await self._through(chain, index + 1, out)

        await chain[index].process(chunk, emit)


class Connection:
    """A client connection and its upstream connection, joined by two links."""

    def __init__(
        self,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        chains: dict[Direction, list[Toxic]],
        on_closed: Callable[[Connection], None],
    ) -> None:
        self._writers = (client[1], upstream[1])
        self._on_closed = on_closed
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._done: asyncio.Task[None] | None = None
        self.links = {
            Direction.UPSTREAM: Link(
                self, Direction.UPSTREAM, client[0], upstream[1], chains[Direction.UPSTREAM]
            ),
            Direction.DOWNSTREAM: Link(
                self, Direction.DOWNSTREAM, upstream[0], client[1], chains[Direction.DOWNSTREAM]
            ),
        }

    def start(self) -> None:
        """Start moving data both ways."""
        for link in self.links.values():
            self._tasks.append(asyncio.create_task(link.read()))
            self._tasks.append(asyncio.create_task(link.pump()))

    def close(self) -> None:
        """Close both sockets gracefully: data already written is still delivered."""
        self._shutdown(graceful=True)

    def reset(self) -> None:
        """Close both sockets with a TCP RST ("connection reset by peer")."""
        linger = struct.pack("ii", 1, 0)  # linger 0: close() sends RST instead of FIN
        for writer in self._writers:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        self.abort()

    def abort(self) -> None:
        """Close both sockets now, dropping buffered data."""
        self._shutdown(graceful=False)
        for writer in self._writers:
            writer.transport.abort()

    def _shutdown(self, *, graceful: bool) -> None:
        if self._closing:
            return
        self._closing = True
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for link in self.links.values():
            link.stop()
        if graceful:
            for writer in self._writers:
                writer.close()
        self._done = asyncio.create_task(self._finish())

    async def _finish(self) -> None:
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                await self._wait_writers()
        except TimeoutError:
            for writer in self._writers:
                writer.transport.abort()
            await self._wait_writers()
        current = asyncio.current_task()
        await asyncio.gather(*(t for t in self._tasks if t is not current), return_exceptions=True)
        self._on_closed(self)

    async def _wait_writers(self) -> None:
        for writer in self._writers:
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until both sockets are closed and every task has ended."""
        if self._done is not None:
            await asyncio.shield(self._done)
