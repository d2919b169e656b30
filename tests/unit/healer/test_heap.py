"""``settle_heap`` freezes the heap once every watch has sampled, or after its cap."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest

from aftershock.healer import Healer, settle_heap
from aftershock.testing import ManualClock


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()


def healer(*samples: int) -> Healer:
    """A stand-in with what ``settle_heap`` reads: each watch's sample count."""
    watches = {f"w{k}": SimpleNamespace(samples=n) for k, n in enumerate(samples)}
    return cast("Healer", SimpleNamespace(watches=watches))


async def test_the_heap_is_frozen_when_every_watch_has_sampled() -> None:
    clock = ManualClock()
    waiting = healer(1, 0)
    settling = asyncio.create_task(settle_heap([healer(2), waiting], clock, poll=0.5))
    await asyncio.sleep(0)
    await clock.advance(5)
    assert not settling.done()
    assert gc.get_freeze_count() == 0
    watch: Any = waiting.watches["w1"]
    watch.samples = 1
    await clock.advance(0.5)
    await asyncio.wait_for(settling, 1)
    assert gc.get_freeze_count() > 0


async def test_the_heap_is_frozen_anyway_after_the_cap() -> None:
    clock = ManualClock()
    settling = asyncio.create_task(settle_heap([healer(0)], clock, cap=3, poll=1))
    for _ in range(4):
        await asyncio.sleep(0)
        await clock.advance(1)
    await asyncio.wait_for(settling, 1)
    assert gc.get_freeze_count() > 0
