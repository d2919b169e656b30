"""Sampler: takes a probe's samples on a schedule into a bounded series.

Each sampler runs its own asyncio task, so a slow probe delays nobody else.
Ticks fall at ``t0 + k * every`` on the injected clock; a check that overruns
its period is never stacked with another: the next one starts when it finishes
or at the next tick, whichever is later, and the schedule is re-anchored there
instead of firing a burst of catch-up samples.

Samplers that share a ``SampleGate`` (every watch of a healer process) take
turns when there is more to sample than the process can serve: at most
``limit`` checks are in flight, the rest wait in one first-come-first-served
queue, and a check's own timeout starts only when it is let through. So an
overloaded process samples every watch less often, in turn, instead of
starting all checks at once and letting them time out together (the loop's
backlog would count against every one of their timeouts). A sample let
through more than one period late re-anchors its sampler's ticks at its start.
How late each sample starts against its tick (its *lag*) is reported to the
gate's ``on_lag`` and kept for ``overload()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Final, Self

from aftershock.ports import Clock, Probe, ProbeResult

__all__ = [
    "DEFAULT_CAPACITY",
    "GATE_LIMIT",
    "LAG_WINDOW",
    "OVERLOAD_PERIODS",
    "SampleGate",
    "Sampler",
]

DEFAULT_CAPACITY: Final = 100_000
"""Samples kept per probe: a day at one per second fits with room to spare."""

GATE_LIMIT: Final = 256
"""Checks in flight at once through one gate: enough for 1,000 samples a second
from endpoints 250 ms away; few enough that a saturated event loop still
finishes each admitted check within tens of milliseconds, inside its timeout."""

LAG_WINDOW: Final = 30.0
"""Seconds of recent samples ``SampleGate.overload`` looks at."""

_LAG_KEPT: Final = 8192  # recent lags kept for the p95 (spread over the window)
_OVERLOAD_QUANTILE: Final = 0.95
OVERLOAD_PERIODS: Final = 0.75
"""p95 lag, in periods, above which a process is overloaded. Not one whole period:
a sampler whose check starts more than a period late skips the tick it missed, so
an overloaded process settles with its samples' lag right about one period, and
its p95 sways around it; three quarters of a period is well clear of a process
that keeps up (milliseconds) and of that sway."""


class SampleGate:
    """Lets at most ``limit`` checks run at once, in arrival order; measures lag.

    ``on_lag(seconds)`` is called for every sample let through with how late it
    starts against its tick (0 when on time). ``overload()`` says whether the
    p95 of recent lags, each measured in its sampler's periods, exceeds
    ``OVERLOAD_PERIODS`` over the last ``window`` seconds on ``clock`` (a
    process sampling thousands a second keeps every n-th lag for it, so the
    window is whole at any rate: its lag sways over seconds when overloaded).
    """

    def __init__(
        self,
        *,
        clock: Clock,
        limit: int = GATE_LIMIT,
        window: float = LAG_WINDOW,
        on_lag: Callable[[float], None] | None = None,
    ) -> None:
        if limit < 1:
            msg = f"limit must be at least 1, got {limit}"
            raise ValueError(msg)
        self.limit = limit
        self.window = window
        self.on_lag = on_lag
        self._clock = clock
        self._free = limit
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._lags: deque[tuple[float, float, float]] = deque(maxlen=_LAG_KEPT)
        """(when, lag seconds, lag in periods) of recent samples, oldest first: every
        ``_stride``-th, so that the whole window fits in ``_LAG_KEPT`` at any rate."""
        self._per_second = max(_LAG_KEPT // max(math.ceil(window), 1), 1)
        self._second = -1
        self._in_second = 0
        self._stride = 1

    @property
    def in_flight(self) -> int:
        """Checks let through and not yet released."""
        return self.limit - self._free

    @property
    def waiting(self) -> int:
        """Samples queued for their turn."""
        return len(self._waiters)

    async def acquire(self) -> None:
        """Wait for a turn (first come, first served)."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the turn was handed over as we were cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """End a turn: hand it to the longest waiting sample, if any."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    def observe(self, lag: float, every: float) -> None:
        """Record one sample's lag (seconds late against its tick, with its period)."""
        lag = max(lag, 0.0)
        now = self._clock.monotonic()
        second = int(now)
        if second != self._second:
            # Thin by the rate of the second before: a busy process's whole window fits.
            busy = second == self._second + 1
            self._stride = max(self._in_second // self._per_second, 1) if busy else 1
            self._second, self._in_second = second, 0
        if self._in_second % self._stride == 0:
            self._lags.append((now, lag, lag / every))
        self._in_second += 1
        if self.on_lag is not None:
            self.on_lag(lag)

    def lag_p95(self) -> tuple[float, float, int] | None:
        """(p95 lag in seconds, p95 lag in periods, samples) over the window; None if empty."""
        since = self._clock.monotonic() - self.window
        recent = [(lag, periods) for at, lag, periods in self._lags if at >= since]
        if not recent:
            return None
        rank = max(math.ceil(_OVERLOAD_QUANTILE * len(recent)) - 1, 0)
        seconds = sorted(lag for lag, _ in recent)[rank]
        periods = sorted(p for _, p in recent)[rank]
        return seconds, periods, len(recent)

    def overload(self) -> str | None:
        """Why the process is overloaded (samples start more than a period late), or None.

        Overloaded: over the last ``window`` seconds, the 95th percentile of the
        samples' lag, each in its own sampler's periods, is above
        ``OVERLOAD_PERIODS``, so watches are sampled less often than declared
        (see ``OVERLOAD_PERIODS`` for why not one whole period).
        """
        p95 = self.lag_p95()
        if p95 is None or p95[1] <= OVERLOAD_PERIODS:
            return None
        seconds, periods, count = p95
        return (
            f"overloaded: p95 probe lag {seconds:.3f}s ({periods:.1f} periods) over the last "
            f"{self.window:g}s ({count} samples); watches are sampled less often than declared"
        )


class Sampler:
    """Samples one probe every ``every`` on ``clock``, keeping the last ``capacity`` results.

    Every result's ``started`` is stamped from the sampler's clock, so ``since``
    queries and the run's timeline share one scale whatever clock the probe uses.
    A probe that raises (it should not) is recorded as a failed sample. The
    ``on_sample`` callback runs for each result; if it raises, the error goes to
    the event loop's exception handler and sampling continues. With a ``gate``
    each check waits for its turn there (see the module docstring).
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
        gate: SampleGate | None = None,
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
        self.gate = gate
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
        gate = self.gate
        while True:
            if gate is None:
                started = self._clock.monotonic()
                result = await self._check(started)
            else:
                await gate.acquire()
                try:
                    started = self._clock.monotonic()
                    gate.observe(started - due, self.every)
                    if started - due > self.every:
                        due = started  # let through a period late or more: re-anchor here
                    result = await self._check(started)
                finally:
                    gate.release()
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
