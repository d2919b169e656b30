"""Sampler: takes a probe's samples on a schedule into a bounded series.

Each sampler runs its own asyncio task, so a slow probe delays nobody else.
Ticks fall at ``t0 + k * every`` on the injected clock; a check that overruns
its period is never stacked with another: the next one starts when it finishes
or at the next tick, whichever is later, and the schedule is re-anchored there
instead of firing a burst of catch-up samples.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Final, Self

from aftershock.ports import Clock, Probe, ProbeResult

__all__ = ["DEFAULT_CAPACITY", "Sampler"]

DEFAULT_CAPACITY: Final = 100_000
"""Samples kept per probe: a day at one per second fits with room to spare."""


class Sampler:
    """Samples one probe every ``every`` on ``clock``, keeping the last ``capacity`` results.

    Every result's ``started`` is stamped from the sampler's clock, so ``since``
    queries and the run's timeline share one scale whatever clock the probe uses.
    A probe that raises (it should not) is recorded as a failed sample. The
    ``on_sample`` callback runs for each result; if it raises, the error goes to
    the event loop's exception handler and sampling continues.
    """

    def __init__(
        self,
        probe: Probe,
        every: timedelta | float,
        *,
        clock: Clock,
        name: str = "",
        capacity: int = DEFAULT_CAPACITY,
        on_sample: Callable[[ProbeResult], None] | None = None,
    ) -> None:
        period = every.total_seconds() if isinstance(every, timedelta) else float(every)
        if period <= 0:
            msg = f"every must be positive, got {period}s"
            raise ValueError(msg)
        if capacity < 1:
            msg = f"capacity must be at least 1, got {capacity}"
            raise ValueError(msg)
        self.probe = probe
        self.every = period
        self.name = name
        self.on_sample = on_sample
        self._clock = clock
        self._series: deque[ProbeResult] = deque(maxlen=capacity)
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the sampling task is alive."""
        return self._task is not None and not self._task.done()

    def start(self, delay: float = 0.0) -> None:
        """Start sampling (the first sample after ``delay`` seconds); no-op when running."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(
                self._run(delay), name=f"sampler:{self.name or id(self)}"
            )

    def cancel(self) -> None:
        """Ask the sampling task to stop without waiting (``stop`` waits)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def stop(self) -> None:
        """Stop sampling, cancelling a check in flight; idempotent."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def samples(self, since: float | None = None) -> list[ProbeResult]:
        """Kept samples, oldest first; only those started at or after ``since`` if given."""
        if since is None:
            return list(self._series)
        recent: list[ProbeResult] = []
        # Samples are in start order: walk back from the newest and stop early,
        # so a short window over a full buffer costs only the window.
        for result in reversed(self._series):
            if result.started < since:
                break
            recent.append(result)
        recent.reverse()
        return recent

    def last(self) -> ProbeResult | None:
        """The newest sample, if any."""
        return self._series[-1] if self._series else None

    async def run(self, delay: float = 0.0) -> None:
        """Sample until cancelled, in the caller's task (a task group owns it); see ``start``."""
        await self._run(delay)

    async def _run(self, delay: float) -> None:
        if delay > 0:
            await self._clock.sleep(delay)
        due = self._clock.monotonic()
        while True:
            started = self._clock.monotonic()
            result = await self._check(started)
            self._record(result)
            due += self.every
            now = self._clock.monotonic()
            if now > due:
                due = now
            else:
                await self._clock.sleep(due - now)

    async def _check(self, started: float) -> ProbeResult:
        try:
            result = await self.probe.check()
        except Exception as exc:  # noqa: BLE001 - a broken probe must not end the series
            detail = f"probe raised {type(exc).__name__}"
            return ProbeResult(ok=False, latency=0.0, started=started, detail=detail)
        return replace(result, started=started)

    def _record(self, result: ProbeResult) -> None:
        self._series.append(result)
        if self.on_sample is None:
            return
        try:
            self.on_sample(result)
        except Exception as exc:  # noqa: BLE001 - reported below; sampling goes on
            asyncio.get_running_loop().call_exception_handler(
                {"message": f"on_sample callback of sampler {self.name!r} failed", "exception": exc}
            )

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
