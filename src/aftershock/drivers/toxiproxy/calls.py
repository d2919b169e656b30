"""How the Toxiproxy driver calls its server: retries, and errors translated into the project tree.

A server that cannot be reached is retried a few times (``retrying``): an
error answer will not change, and neither will a server that answers
something else than the API. ``translated`` then maps what is left: still
unreachable → ``DriverUnavailable`` naming the target; an error answer →
``FaultInjectionFailed`` while injecting, ``RevertFailed`` while reverting
(the caller says which), the client error chained. ``ignore_missing`` counts a
404 as done, which is what a revert wants.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TypeVar

import stamina

from aftershock.drivers.toxiproxy.errors import ToxiproxyError, ToxiproxyNotFound
from aftershock.errors import DriverError, DriverUnavailable, UnexpectedAnswer

__all__ = ["ignore_missing", "refusal", "retrying", "translated"]

T = TypeVar("T")


def _unreachable(exc: Exception) -> bool:
    return isinstance(exc, DriverUnavailable) and not isinstance(exc, UnexpectedAnswer)


async def retrying(call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, tried again (3 attempts, 10 s at most) while the server is unreachable."""
    async for attempt in stamina.retry_context(on=_unreachable, attempts=3, timeout=10.0):
        with attempt:
            return await call()
    raise AssertionError("unreachable: stamina re-raises the last error")


def refusal(api: str, exc: ToxiproxyError) -> str:
    """One line saying what the server refused."""
    return f"Toxiproxy API {api} answered {exc.status}: {exc.message}"


@contextmanager
def translated(target: str, api: str, failure: type[DriverError]) -> Iterator[None]:
    """Client errors → the project tree: unreachable stays retryable, answers become ``failure``."""
    try:
        yield
    except DriverUnavailable as exc:
        if exc.target:
            raise
        # The client message names the URL; the target makes it the one line users see.
        raise type(exc)(str(exc), target=target) from exc
    except ToxiproxyError as exc:
        raise failure(refusal(api, exc), target=target) from exc


async def ignore_missing(call: Callable[[], Awaitable[object]]) -> None:
    """``call()`` retried while unreachable; a 404 (already gone) counts as success."""
    with suppress(ToxiproxyNotFound):
        await retrying(call)
