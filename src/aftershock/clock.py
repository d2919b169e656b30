"""Clocks: the real one, and a manual one for tests measured in simulated time."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta

__all__ = ["ManualClock", "SystemClock"]


class SystemClock:
    """Real time: ``time.monotonic``, aware UTC ``now``, ``asyncio.sleep``."""

    def monotonic(self) -> float:
        """Seconds on the monotonic clock."""
        return time.monotonic()

    def now(self) -> datetime:
        """The aware UTC time."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Sleep in real time."""
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """Time that moves only when a test calls ``advance``.

    Sleepers wake in deadline order, and the event loop is given a chance to
    run between wake-ups, so a loop that sleeps, acts and sleeps again sees
    every tick of a simulated hour in milliseconds of real time.
    """

    def __init__(self, start: float = 0.0, *, epoch: datetime | None = None) -> None:
        self._t = start
        self._epoch = epoch or datetime(2026, 1, 5, tzinfo=UTC)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        """The simulated seconds."""
        return self._t

    def now(self) -> datetime:
        """The simulated wall-clock time."""
        return self._epoch + timedelta(seconds=self._t)

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced past ``now + seconds``."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._t + seconds, next(self._order), future))
        await future

    @property
    def sleepers(self) -> int:
        """How many coroutines are waiting on this clock."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def settle(self) -> None:
        """Let every ready task run until it blocks again."""
        for _ in range(50):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper at its own deadline."""
        target = self._t + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self._t = max(self._t, deadline)
            if not future.done():
                future.set_result(None)
                await self.settle()
        self._t = target
        await self.settle()
