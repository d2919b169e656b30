"""The pure half of the Toxiproxy driver: fault names and attributes, error translation.

``toxic_name`` and ``toxic_attributes`` turn a method step into the toxic
aftershock adds. Errors are translated here (``_translated``): a server that
cannot be reached (after a few retries, ``_retrying``) → ``DriverUnavailable``;
an error answer → ``FaultInjectionFailed`` while injecting, ``RevertFailed``
while reverting; the client error is chained. ``_ignore_missing`` counts a 404
as done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import TypeVar

import stamina

from aftershock.drivers.toxiproxy_client import ToxiproxyError, ToxiproxyNotFound
from aftershock.errors import DriverError, DriverUnavailable, FaultInjectionFailed
from aftershock.model import params as p
from aftershock.model.base import Spec

__all__ = ["DOWN", "PREFIX", "toxic_attributes", "toxic_name"]

T = TypeVar("T")
PREFIX = "aftershock-"
"""Every toxic aftershock creates starts with this."""
DOWN = "toxiproxy.down"
_TYPES = {
    f"toxiproxy.{t}": t
    for t in ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data")
}


def toxic_name(run_id: str, step: str) -> str:
    """The toxic name of one method step of one run."""
    return f"{PREFIX}{run_id}-{step}"


def _ms(value: timedelta) -> int:
    return round(value / timedelta(milliseconds=1))


def toxic_attributes(fault: str, params: Spec) -> dict[str, int]:
    """The Toxiproxy attributes of a toxic fault (all integers; slicer delay in µs)."""
    match params:
        case p.LatencyParams() if fault == "toxiproxy.latency":
            return {"latency": _ms(params.latency), "jitter": _ms(params.jitter)}
        case p.BandwidthParams() if fault == "toxiproxy.bandwidth":
            return {"rate": params.rate}
        case p.SlowCloseParams() if fault == "toxiproxy.slow_close":
            return {"delay": _ms(params.delay)}
        case p.TimeoutParams() if fault in ("toxiproxy.timeout", "toxiproxy.reset_peer"):
            return {"timeout": _ms(params.timeout)}
        case p.SlicerParams() if fault == "toxiproxy.slicer":
            sizes = {"average_size": params.average_size, "size_variation": params.size_variation}
            return {**sizes, "delay": round(params.delay / timedelta(microseconds=1))}
        case p.LimitDataParams() if fault == "toxiproxy.limit_data":
            return {"bytes": params.bytes}
    msg = f"{fault} does not take {type(params).__name__}"
    raise FaultInjectionFailed(msg)


async def _retrying(call: Callable[[], Awaitable[T]]) -> T:
    # Only an unreachable server is worth retrying; an error answer will not change.
    async for attempt in stamina.retry_context(on=DriverUnavailable, attempts=3, timeout=10.0):
        with attempt:
            return await call()
    raise AssertionError("unreachable: stamina re-raises the last error")


def _refusal(api: str, exc: ToxiproxyError) -> str:
    return f"Toxiproxy API {api} answered {exc.status}: {exc.message}"


@contextmanager
def _translated(target: str, api: str, failure: type[DriverError]) -> Iterator[None]:
    """Client errors → the project tree: unreachable stays retryable, answers become ``failure``."""
    try:
        yield
    except DriverUnavailable as exc:
        if exc.target:
            raise
        # The client message names the URL; the target makes it the one line users see.
        raise DriverUnavailable(str(exc), target=target) from exc
    except ToxiproxyError as exc:
        raise failure(_refusal(api, exc), target=target) from exc


def _resource(api: str, action: str, proxy: str, toxic: str | None) -> str:
    if action == "toxiproxy.reset":
        return f"{api}/reset"
    if action == "toxiproxy.enable":
        return f"{api}/proxies/{proxy}"
    return f"{api}/proxies/{proxy}/toxics/{toxic}"


async def _ignore_missing(call: Callable[[], Awaitable[object]]) -> None:
    # Already gone is the state a revert wants: 404 counts as success.
    with suppress(ToxiproxyNotFound):
        await _retrying(call)
