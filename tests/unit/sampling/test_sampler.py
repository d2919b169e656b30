"""Sampler on a manual clock: schedule, no stacking, isolation, bounded series."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from aftershock.ports import ProbeResult
from aftershock.sampling import Sampler
from aftershock.testing import ManualClock


class TimedProbe:
    """A probe whose check takes ``duration`` seconds of clock time."""

    def __init__(self, clock: ManualClock, duration: float = 0.0, ok: bool = True) -> None:
        self.clock = clock
        self.duration = duration
        self.ok = ok
        self.in_flight = 0
        self.max_in_flight = 0
        self.starts: list[float] = []

    async def check(self) -> ProbeResult:
        self.starts.append(self.clock.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.duration:
                await self.clock.sleep(self.duration)
        finally:
            self.in_flight -= 1
        # A deliberately wrong ``started``: the sampler stamps its own.
        return ProbeResult(ok=self.ok, latency=self.duration, started=-1.0, status=200)


class RaisingProbe:
    async def check(self) -> ProbeResult:
        msg = "boom with a secret-ish message"
        raise RuntimeError(msg)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=100.0)


def starts(sampler: Sampler) -> list[float]:
    return [round(r.started - 100.0, 6) for r in sampler.samples()]


async def test_samples_on_every_tick(clock: ManualClock) -> None:
    probe = TimedProbe(clock)
    async with Sampler(probe, timedelta(seconds=1), clock=clock, name="api") as sampler:
        await clock.advance(5)
        assert starts(sampler) == [0, 1, 2, 3, 4, 5]
        assert all(r.ok and r.status == 200 for r in sampler.samples())


async def test_ticks_do_not_drift_with_check_time(clock: ManualClock) -> None:
    probe = TimedProbe(clock, duration=0.4)
    async with Sampler(probe, 1.0, clock=clock) as sampler:
        await clock.advance(4.3)
        assert starts(sampler) == [0, 1, 2, 3]  # the one started at 4 is still in flight
        assert [r.latency for r in sampler.samples()] == [0.4] * 4


async def test_slow_check_is_not_stacked(clock: ManualClock) -> None:
    probe = TimedProbe(clock, duration=2.5)
    async with Sampler(probe, 1.0, clock=clock) as sampler:
        await clock.advance(10)
        # The next check starts when the previous finishes (later than its tick).
        assert starts(sampler) == [0, 2.5, 5, 7.5]
        assert probe.max_in_flight == 1
        # Back to normal speed (the check in flight still takes 2.5 s): ticks
        # resume from where the last slow check ended, without a catch-up burst.
        probe.duration = 0
        await clock.advance(3)
        assert starts(sampler) == [0, 2.5, 5, 7.5, 10, 12.5]
        await clock.advance(2)
        assert starts(sampler)[-2:] == [13.5, 14.5]
    assert probe.max_in_flight == 1


async def test_slow_probe_does_not_delay_others(clock: ManualClock) -> None:
    slow, fast = TimedProbe(clock, duration=30), TimedProbe(clock)
    async with Sampler(slow, 1, clock=clock) as s1, Sampler(fast, 1, clock=clock) as s2:
        await clock.advance(10)
        assert starts(s2) == list(range(11))
        assert s1.samples() == []
        assert slow.starts == [100.0]


async def test_series_is_bounded(clock: ManualClock) -> None:
    async with Sampler(TimedProbe(clock), 1, clock=clock, capacity=5) as sampler:
        await clock.advance(20)
        assert starts(sampler) == [16, 17, 18, 19, 20]


async def test_samples_since_and_last(clock: ManualClock) -> None:
    sampler = Sampler(TimedProbe(clock), 0.5, clock=clock)
    assert sampler.last() is None
    assert sampler.samples(since=0) == []
    async with sampler:
        await clock.advance(3)
    assert [r.started for r in sampler.samples(since=102.0)] == [102.0, 102.5, 103.0]
    assert sampler.samples(since=103.01) == []
    assert len(sampler.samples(since=0)) == 7
    last = sampler.last()
    assert last is not None
    assert last.started == 103.0


async def test_a_raising_probe_is_a_failed_sample(clock: ManualClock) -> None:
    async with Sampler(RaisingProbe(), 1, clock=clock) as sampler:
        await clock.advance(2)
        assert sampler.running
    results = sampler.samples()
    assert len(results) == 3
    assert all(not r.ok for r in results)
    assert results[0].detail == "probe raised RuntimeError"


async def test_on_sample_sees_every_result(clock: ManualClock) -> None:
    seen: list[ProbeResult] = []
    async with Sampler(TimedProbe(clock, ok=False), 1, clock=clock, on_sample=seen.append) as s:
        await clock.advance(2)
        assert seen == s.samples()
        assert len(seen) == 3


async def test_a_failing_callback_is_reported_and_sampling_goes_on(clock: ManualClock) -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    calls = 0

    def callback(result: ProbeResult) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("callback bug")

    try:
        async with Sampler(TimedProbe(clock), 1, clock=clock, name="db", on_sample=callback) as s:
            await clock.advance(2)
            assert len(s.samples()) == 3
    finally:
        loop.set_exception_handler(None)
    assert calls == 3
    assert len(reported) == 3
    assert reported[0]["message"] == "on_sample callback of sampler 'db' failed"
    assert isinstance(reported[0]["exception"], ValueError)


async def test_stop_cancels_the_check_in_flight(clock: ManualClock) -> None:
    probe = TimedProbe(clock, duration=5)
    sampler = Sampler(probe, 1, clock=clock)
    sampler.start()
    sampler.start()  # already running: no second task
    await clock.advance(1)
    assert probe.in_flight == 1
    assert probe.max_in_flight == 1
    await sampler.stop()
    assert not sampler.running
    assert probe.in_flight == 0
    await clock.advance(10)
    assert sampler.samples() == []
    assert probe.starts == [100.0]
    await sampler.stop()  # idempotent


async def test_restart_after_stop(clock: ManualClock) -> None:
    sampler = Sampler(TimedProbe(clock), 1, clock=clock)
    async with sampler:
        await clock.advance(1)
    await clock.advance(5)
    async with sampler:
        await clock.advance(1)
    assert starts(sampler) == [0, 1, 6, 7]


@pytest.mark.parametrize(("every", "capacity"), [(0, 10), (-1, 10), (timedelta(0), 10), (1, 0)])
def test_invalid_arguments(clock: ManualClock, every: Any, capacity: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        Sampler(TimedProbe(clock), every, clock=clock, capacity=capacity)
