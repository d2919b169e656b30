"""How a scheduler makes its blocking calls (store, ledger, lever) from the event loop.

``inline`` in the loop's own thread, for a store that answers in milliseconds (a
local SQLite file); ``in_thread`` in a worker thread, for a store over the
network (the operator's, in the Kubernetes API), so the loop goes on meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

__all__ = ["Blocking", "in_thread", "inline"]

_T = TypeVar("_T")


class Blocking(Protocol):
    """How a blocking call is made from the event loop."""

    def __call__(self, call: Callable[[], _T], /) -> Awaitable[_T]:
        """Make ``call`` and give its result (or raise its error)."""
        ...


async def inline(call: Callable[[], _T], /) -> _T:
    """In the event loop's own thread: for a store that answers in milliseconds."""
    return call()


async def in_thread(call: Callable[[], _T], /) -> _T:
    """In a worker thread (``asyncio.to_thread``): for a store over the network."""
    return await asyncio.to_thread(call)
