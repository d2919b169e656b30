"""Structured concurrency helpers: every task has one owner that waits for it.

``first_of`` races awaitables inside a ``TaskGroup``: the first to finish wins,
the others are cancelled and awaited before it returns, and a cancellation of
the caller cancels them all. ``shielded`` runs cleanup to its end even when the
caller is cancelled meanwhile, and delivers that cancellation afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

__all__ = ["first_of", "shielded"]

T = TypeVar("T")


async def first_of(*awaitables: Awaitable[T]) -> tuple[int, T]:
    """Await ``awaitables`` concurrently; return (index, result) of the first to finish.

    The others are cancelled and awaited before this returns. An exception
    raised by any of them propagates as itself (the first one, when several
    fail together), after the others are cancelled. A cancellation of the
    caller cancels them all and propagates.
    """
    if not awaitables:
        msg = "first_of needs at least one awaitable"
        raise ValueError(msg)
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_awaited(awaitable)) for awaitable in awaitables]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            index = next(i for i, task in enumerate(tasks) if task.done())
            for task in tasks:
                task.cancel()  # a done task ignores it
    except BaseExceptionGroup as raised:
        raise _first_leaf(raised) from None
    return index, tasks[index].result()


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first


async def shielded(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end even if the caller is cancelled while it runs.

    A cancellation that arrives meanwhile is re-raised once ``coro`` has
    finished, so the caller still learns it was cancelled.
    """
    task = asyncio.ensure_future(coro)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        break
    if cancelled:
        raise asyncio.CancelledError
    return result
