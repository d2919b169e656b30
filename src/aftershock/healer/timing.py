"""Waiting on the injected clock.

``asyncio.timeout`` measures real time; the healer's time is the injected
``Clock``, so a time limit is a race between the work and ``clock.sleep``.
On a manual clock that makes a 20 s ``wait.healthy`` cost nothing in real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from aftershock.ports import Clock

__all__ = ["ClockTimeout", "race", "sleep_or_wake"]

T = TypeVar("T")


class ClockTimeout(TimeoutError):
    """The work did not finish within its time on the injected clock."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"timed out after {seconds:g}s")


async def _settle(tasks: set[asyncio.Future[Any]]) -> None:
    for task in tasks:
        if not task.done():
            task.cancel()
    if tasks:
        await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: a loser's error is not "never retrieved"


async def race(clock: Clock, work: Awaitable[T], seconds: float) -> T:
    """``await work``, or raise ``ClockTimeout`` once ``seconds`` pass on ``clock``.

    The loser is cancelled and awaited, also when the caller itself is
    cancelled, so nothing is left running; the work's own errors propagate.
    """
    job: asyncio.Future[T] = asyncio.ensure_future(work)
    timer: asyncio.Future[None] = asyncio.ensure_future(clock.sleep(seconds))
    racers: set[asyncio.Future[Any]] = {job, timer}
    try:
        done, _ = await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await _settle(racers)
    if job in done:
        return job.result()
    raise ClockTimeout(seconds)


async def sleep_or_wake(clock: Clock, seconds: float | None, *events: asyncio.Event) -> None:
    """Sleep ``seconds`` on ``clock`` (forever if None), or less if any event is set."""
    if any(event.is_set() for event in events):
        await asyncio.sleep(0)
        return
    waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(event.wait()) for event in events}
    if seconds is not None:
        waiters.add(asyncio.ensure_future(clock.sleep(seconds)))
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await _settle(waiters)
