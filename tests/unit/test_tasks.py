"""``first_of`` and ``shielded``: every task is awaited by its owner, cancellations are kept."""

from __future__ import annotations

import asyncio

import pytest

from aftershock.tasks import first_of, shielded


async def _after(seconds: float, value: str, log: list[str]) -> str:
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        log.append(f"cancelled {value}")
        raise
    log.append(f"done {value}")
    return value


async def test_the_first_to_finish_wins_and_the_others_are_awaited() -> None:
    log: list[str] = []
    result = await first_of(_after(0.2, "slow", log), _after(0.01, "fast", log))
    assert result == (1, "fast")
    assert log == ["done fast", "cancelled slow"]  # the loser was cancelled before we returned


async def test_an_error_cancels_the_others_and_propagates_as_itself() -> None:
    log: list[str] = []

    async def broken() -> str:
        await asyncio.sleep(0.01)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        await first_of(_after(1.0, "slow", log), broken())
    assert log == ["cancelled slow"]


async def test_cancelling_the_caller_cancels_every_part() -> None:
    log: list[str] = []
    task = asyncio.create_task(first_of(_after(1.0, "a", log), _after(1.0, "b", log)))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(log) == ["cancelled a", "cancelled b"]


async def test_a_cancellation_while_the_losers_clean_up_is_not_lost() -> None:
    """The loser takes time to stop; the caller is cancelled meanwhile."""
    stopping = asyncio.Event()

    async def slow_to_stop() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            stopping.set()
            await asyncio.sleep(0.05)  # cleanup that takes a while
            raise
        return "never"

    async def fast() -> str:
        await asyncio.sleep(0.01)
        return "fast"

    task = asyncio.create_task(first_of(slow_to_stop(), fast()))
    await stopping.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_first_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        await first_of()


async def test_shielded_work_finishes_and_the_cancellation_follows() -> None:
    log: list[str] = []
    task = asyncio.create_task(shielded(_after(0.05, "cleanup", log)))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.sleep(0.01)
    task.cancel()  # twice: still finishes
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["done cleanup"]


async def test_shielded_returns_the_result_when_not_cancelled() -> None:
    assert await shielded(_after(0.0, "x", [])) == "x"
