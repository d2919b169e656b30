"""SampleGate on a manual clock: bounded, first come first served, lag and overload."""

from __future__ import annotations

import asyncio

import pytest

from aftershock.ports import ProbeResult
from aftershock.sampling import SampleGate, Sampler
from aftershock.testing import ManualClock


class SlowProbe:
    """A check that takes ``duration`` seconds of clock time; counts its starts."""

    def __init__(self, clock: ManualClock, duration: float) -> None:
        self.clock = clock
        self.duration = duration
        self.starts: list[float] = []

    async def check(self) -> ProbeResult:
        self.starts.append(self.clock.monotonic())
        await self.clock.sleep(self.duration)
        return ProbeResult(ok=True, latency=self.duration, started=0.0)

    async def aclose(self) -> None:
        """Nothing held."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=0.0)


async def test_on_time_samples_have_no_lag_and_no_overload(clock: ManualClock) -> None:
    lags: list[float] = []
    gate = SampleGate(clock=clock, limit=10, on_lag=lags.append)
    probes = [SlowProbe(clock, 0.01) for _ in range(5)]
    samplers = [Sampler(p, 1.0, clock=clock, gate=gate) for p in probes]
    for sampler in samplers:
        sampler.start()
    await clock.advance(10)
    for sampler in samplers:
        await sampler.stop()
    assert all(len(p.starts) == 11 for p in probes)
    assert max(lags) == 0.0
    assert gate.overload() is None
    assert gate.in_flight == 0


async def test_an_overloaded_gate_delays_every_watch_in_turn(clock: ManualClock) -> None:
    # Capacity: one check of 0.5 s at a time = 2 samples a second; demand: 6 a second.
    lags: list[float] = []
    gate = SampleGate(clock=clock, limit=1, on_lag=lags.append)
    probes = [SlowProbe(clock, 0.5) for _ in range(6)]
    samplers = [Sampler(p, 1.0, clock=clock, gate=gate) for p in probes]
    for sampler in samplers:
        sampler.start()
    await clock.advance(59.9)
    counts = [len(p.starts) for p in probes]
    for sampler in samplers:
        await sampler.stop()
    # Served at capacity (no time-outs en masse), shared evenly: each watch its turn.
    assert sum(counts) == 120  # one 0.5 s check after another from 0 to 59.5
    assert max(counts) - min(counts) <= 1
    # Each watch is sampled every 3 s instead of every 1 s: its samples start late.
    gaps = [b - a for a, b in zip(probes[0].starts[1:], probes[0].starts[2:], strict=False)]
    assert all(abs(gap - 3.0) < 1e-6 for gap in gaps)
    assert max(lags) >= 2.0
    reason = gate.overload()
    assert reason is not None
    assert reason.startswith("overloaded: p95 probe lag 2.")


async def test_a_cancelled_waiter_gives_no_turn_away(clock: ManualClock) -> None:
    gate = SampleGate(clock=clock, limit=1)
    await gate.acquire()
    waiting = asyncio.ensure_future(gate.acquire())
    second = asyncio.ensure_future(gate.acquire())
    await asyncio.sleep(0)
    assert gate.waiting == 2
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    gate.release()
    await second  # the turn went to the next waiter, not to the cancelled one
    assert gate.in_flight == 1
    gate.release()
    assert gate.in_flight == 0
    assert gate.waiting == 0


async def test_a_turn_handed_over_while_cancelled_is_passed_on(clock: ManualClock) -> None:
    gate = SampleGate(clock=clock, limit=1)
    await gate.acquire()
    first = asyncio.ensure_future(gate.acquire())
    second = asyncio.ensure_future(gate.acquire())
    await asyncio.sleep(0)
    gate.release()  # the turn is handed to ``first``...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert gate.in_flight == 1


async def test_overload_looks_at_the_recent_window_only(clock: ManualClock) -> None:
    gate = SampleGate(clock=clock, window=30.0)
    for _ in range(100):
        gate.observe(5.0, 1.0)
    assert gate.overload() is not None
    await clock.advance(31)
    assert gate.overload() is None
    assert gate.lag_p95() is None
    for _ in range(100):
        gate.observe(0.5, 1.0)  # late, but within one period: delayed, not overloaded
    assert gate.overload() is None


def test_limit_must_be_positive(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SampleGate(clock=clock, limit=0)


async def test_samples_settled_about_one_period_late_are_an_overload(clock: ManualClock) -> None:
    """Missed ticks are skipped, so an overloaded process's lag settles near one period."""
    gate = SampleGate(clock=clock)
    for k in range(100):
        gate.observe(0.85 + (k % 3) * 0.05, 1.0)  # 0.85..0.95 periods: never a whole one
    reason = gate.overload()
    assert reason is not None
    assert reason.startswith("overloaded: p95 probe lag 0.950s (0.9 periods)")


async def test_a_busy_gate_keeps_its_whole_window(clock: ManualClock) -> None:
    """At 10,000 samples a second the overload still looks back over the whole window."""
    gate = SampleGate(clock=clock, window=30.0)
    for second in range(30):
        lag = 2.0 if second < 10 else 0.0  # late for the first 10 s, on time after
        for _ in range(10_000):
            gate.observe(lag, 1.0)
        await clock.advance(1)
    p95 = gate.lag_p95()
    assert p95 is not None
    assert p95[2] <= 8192
    assert gate.overload() is not None  # a third of the window was late
