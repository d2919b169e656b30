"""The toxics: their attributes, and what each one does to the data of one link.

A :class:`Toxic` is the configuration the API shows; a :class:`Stage` is that
toxic running on one direction of one connection. Stages see the data as
:class:`Chunk` objects (bytes plus the loop time they were read), pass them on
through ``emit``, and end the connection by raising :class:`LinkClosed`.
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aftershock.proxy.wire import Float32

__all__ = [
    "ATTRIBUTES",
    "GO_STRUCTS",
    "Chunk",
    "Direction",
    "Emit",
    "LinkClosed",
    "Stage",
    "Toxic",
    "new_stage",
]


class Direction(enum.IntEnum):
    """Which way data flows; the order is Toxiproxy's, so upstream toxics are listed first."""

    UPSTREAM = 0  # client -> server
    DOWNSTREAM = 1  # server -> client

    @classmethod
    def parse(cls, stream: str) -> Direction | None:
        """The direction named by ``stream`` (any case), or None."""
        return {"upstream": cls.UPSTREAM, "downstream": cls.DOWNSTREAM}.get(stream.lower())


# Attribute names per type, in Go struct order (the order the API prints them).
ATTRIBUTES: dict[str, dict[str, str]] = {
    "noop": {},
    "latency": {"latency": "int64", "jitter": "int64"},
    "bandwidth": {"rate": "int64"},
    "slow_close": {"delay": "int64"},
    "timeout": {"timeout": "int64"},
    "reset_peer": {"timeout": "int64"},
    "slicer": {"average_size": "int", "size_variation": "int", "delay": "int"},
    "limit_data": {"bytes": "int64"},
}

# Go type names, for decoder messages that must match Toxiproxy's.
GO_STRUCTS: dict[str, str] = {
    kind: "toxics." + ("Reset" if kind == "reset_peer" else kind.title().replace("_", "")) + "Toxic"
    for kind in ATTRIBUTES
}


@dataclass(eq=False, slots=True, kw_only=True)
class Toxic:
    """A toxic as configured through the API; updates replace ``attributes`` and ``toxicity``."""

    name: str
    type: str
    stream: str
    direction: Direction
    toxicity: float = 1.0
    attributes: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The API representation, members in Toxiproxy's order."""
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": Float32(self.toxicity),
        }


@dataclass(slots=True)
class Chunk:
    """Bytes read from one side, stamped with the loop time they arrived."""

    data: bytes
    stamp: float


Emit = Callable[[Chunk], Awaitable[None]]


class LinkClosed(Exception):
    """Raised by a stage to end the connection; ``reset`` asks for a TCP RST."""

    def __init__(self, *, reset: bool = False) -> None:
        super().__init__("reset" if reset else "closed")
        self.reset = reset


class Stage:
    """One toxic on one direction of one connection.

    The toxicity is rolled when the stage is created and again when the toxic
    is updated, as Toxiproxy restarts a toxic on each link for an update. An
    update or a removal interrupts the stage's sleeps so that a chunk held by
    it is released at once instead of being dropped.
    """

    kind: ClassVar[str] = "noop"

    def __init__(self, toxic: Toxic, close: Callable[[], None]) -> None:
        self.toxic = toxic
        self.removed = False
        self._close = close
        self._interrupt = asyncio.Event()
        self.active = random.random() < toxic.toxicity
        self.start()

    @property
    def live(self) -> bool:
        """Whether data must go through this stage."""
        return self.active and not self.removed

    def attr(self, name: str) -> int:
        """The current value of one integer attribute."""
        return self.toxic.attributes.get(name, 0)

    def start(self) -> None:
        """Called when the stage begins to run (creation and each update)."""

    def stop(self) -> None:
        """Called when the stage stops running (update, removal, connection closed)."""

    def restart(self) -> None:
        """Apply an update of the toxic: release held data, re-roll, start again."""
        self.stop()
        self._interrupt.set()
        self._interrupt = asyncio.Event()
        self.active = random.random() < self.toxic.toxicity
        self.start()

    def remove(self) -> None:
        """Take the stage out of its link for good."""
        self.removed = True
        self.stop()
        self._interrupt.set()

    async def sleep(self, seconds: float) -> bool:
        """Sleep unless interrupted; True if the whole time passed."""
        interrupt = self._interrupt
        if interrupt.is_set() or self.removed:
            return False
        if seconds <= 0:
            return True
        try:
            async with asyncio.timeout(seconds):
                await interrupt.wait()
        except TimeoutError:
            return True
        return False

    async def process(self, chunk: Chunk, emit: Emit) -> None:
        """Handle one chunk; the base stage passes it through unchanged."""
        await emit(chunk)

    async def at_eof(self) -> None:
        """Called when the source has closed, before the connection is closed."""


class LatencyStage(Stage):
    """Delays each chunk by latency ± jitter from the time it was read.

    Counting from the read time rather than from now keeps chunks pipelined:
    data behind a delayed chunk is not delayed a second time.
    """

    kind = "latency"

    async def process(self, chunk: Chunk, emit: Emit) -> None:
        delay = self.attr("latency")
        jitter = self.attr("jitter")
        if jitter > 0:
            delay += random.randrange(2 * jitter) - jitter
        due = chunk.stamp + delay / 1000
        await self.sleep(due - asyncio.get_running_loop().time())
        chunk.stamp = max(chunk.stamp, due)
        await emit(chunk)


class BandwidthStage(Stage):
    """Limits throughput to ``rate`` KB/s, cutting big chunks into 100 ms slices."""

    kind = "bandwidth"

    def start(self) -> None:
        self._debt = 0.0

    async def process(self, chunk: Chunk, emit: Emit) -> None:
        rate = self.attr("rate")
        data = chunk.data
        if rate <= 0:
            self._debt = 0.0
            await emit(chunk)
            return
        self._debt += len(data) / (rate * 1000)
        slice_size = rate * 100
        while len(data) > slice_size:
            if not await self.sleep(0.1):
                await emit(Chunk(data, chunk.stamp))
                return
            await emit(Chunk(data[:slice_size], chunk.stamp))
            data = data[slice_size:]
            self._debt -= 0.1
        loop = asyncio.get_running_loop()
        began = loop.time()
        finished = await self.sleep(self._debt)
        # Sleeps overshoot a little; carrying the error keeps the average rate exact.
        self._debt -= loop.time() - began
        if not finished:
            self._debt = 0.0
        await emit(Chunk(data, chunk.stamp))


class SlowCloseStage(Stage):
    """Holds the close of the connection back by ``delay`` ms once the source has closed."""

    kind = "slow_close"

    async def at_eof(self) -> None:
        await self.sleep(self.attr("delay") / 1000)


class TimeoutStage(Stage):
    """Drops all data; closes the connection after ``timeout`` ms (0: never).

    Removing the toxic closes the connections it held, as Toxiproxy does:
    the data it dropped leaves the stream unusable.
    """

    kind = "timeout"
    _timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        timeout = self.attr("timeout")
        if self.active and timeout > 0:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(timeout / 1000, self._close)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def remove(self) -> None:
        super().remove()
        if self.active:
            self._close()

    async def process(self, chunk: Chunk, emit: Emit) -> None:
        return


class ResetPeerStage(Stage):
    """On the first data, waits ``timeout`` ms and resets the connection (TCP RST)."""

    kind = "reset_peer"

    async def process(self, chunk: Chunk, emit: Emit) -> None:
        await asyncio.sleep(self.attr("timeout") / 1000)
        raise LinkClosed(reset=True)


class SlicerStage(Stage):
    """Cuts chunks into slices of about ``average_size`` bytes, ``delay`` µs apart."""

    kind = "slicer"

    def _cuts(self, start: int, end: int, cuts: list[int]) -> None:
        average = self.attr("average_size")
        variation = max(self.attr("size_variation"), 0)
        if (end - start) - average <= variation:
            cuts.append(end)
            return
        mid = start + (end - start) // 2
        if variation > 0:
            mid += random.randrange(2 * variation) - variation
        mid = min(max(mid, start + 1), end - 1)
        self._cuts(start, mid, cuts)
        self._cuts(mid, end, cuts)

    async def process(self, chunk: Chunk, emit: Emit) -> None:
        data = chunk.data
        if self.attr("average_size") <= 0:
            await emit(chunk)
            return
        cuts: list[int] = []
        self._cuts(0, len(data), cuts)
        start = 0
        for end in cuts:
            await emit(Chunk(data[start:end], chunk.stamp))
            start = end
            if start < len(data) and not await self.sleep(self.attr("delay") / 1e6):
                await emit(Chunk(data[start:], chunk.stamp))
                return


class LimitDataStage(Stage):
    """Closes the connection once ``bytes`` bytes have gone through it."""

    kind = "limit_data"
    _sent = 0

    async def process(self, chunk: Chunk, emit: Emit) -> None:
        remaining = max(self.attr("bytes") - self._sent, 0)
        if remaining < len(chunk.data):
            chunk = Chunk(chunk.data[:remaining], chunk.stamp)
        if chunk.data:
            await emit(chunk)
            self._sent += len(chunk.data)
        if self.attr("bytes") - self._sent <= 0:
            raise LinkClosed


_STAGES: dict[str, type[Stage]] = {
    cls.kind: cls
    for cls in (
        Stage,
        LatencyStage,
        BandwidthStage,
        SlowCloseStage,
        TimeoutStage,
        ResetPeerStage,
        SlicerStage,
        LimitDataStage,
    )
}


def new_stage(toxic: Toxic, close: Callable[[], None]) -> Stage:
    """Start ``toxic`` on a link; ``close()`` closes the link's connection."""
    return _STAGES[toxic.type](toxic, close)
