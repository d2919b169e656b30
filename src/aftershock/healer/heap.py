"""Keeping a healer's long-lived objects out of the garbage collector's way.

A process watching thousands of endpoints holds hundreds of thousands of
long-lived objects (its policies, watches, samplers, probes and their
connections). Left in the collector's oldest generation, every full
collection walks all of them: about half a second at 8,000 endpoints, long
enough to time out every check in flight, whose connections are then opened
again (more garbage, more full collections: an overloaded process collapses
instead of sampling in turn). ``settle_heap`` freezes them (``gc.freeze``)
once they exist, so a full collection walks only what was made since and
takes milliseconds. ``HealerHost`` does it for the daemons.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Final

from aftershock.healer.reconciler import Healer
from aftershock.ports import Clock

__all__ = ["SETTLE_CAP", "settle_heap"]

SETTLE_CAP: Final = 60.0
"""Seconds ``settle_heap`` waits at most for every watch's first sample."""


async def settle_heap(
    healers: Sequence[Healer], clock: Clock, *, cap: float = SETTLE_CAP, poll: float = 0.5
) -> None:
    """Once every watch of ``healers`` has taken a sample, freeze the heap (``gc.freeze``).

    The connections are opened by each watch's first sample; after ``cap``
    seconds the heap is frozen anyway. Freezing moves the collector's lists
    in constant time; a full collection first would be one full pause, which
    is what this avoids. The two young generations are collected first (they
    hold only what was made since the last collections, milliseconds), so the
    cyclic garbage a freeze traps until ``gc.unfreeze()`` (when the healers
    stop) is at most the old generation's; a host that adds healers over
    time (the operator) freezes once per healer.
    """
    deadline = clock.monotonic() + cap
    while clock.monotonic() < deadline and not all(
        watch.samples for healer in healers for watch in healer.watches.values()
    ):
        await clock.sleep(poll)
    gc.collect(1)
    gc.freeze()
