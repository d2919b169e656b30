"""The Toxiproxy driver's helpers: fault names and attributes, proxy ownership, errors.

``toxic_name`` and ``toxic_attributes`` turn a method step into the toxic
aftershock adds; ``created_by_us`` decides whether a proxy found on a server
is the one aftershock journaled creating (``create_once`` and ``release_proxy``
make and remove it). Errors are translated here (``_translated``): a server that
cannot be reached (after a few retries, ``_retrying``) → ``DriverUnavailable``;
an error answer → ``FaultInjectionFailed`` while injecting, ``RevertFailed``
while reverting; the client error is chained. ``_ignore_missing`` counts a 404
as done.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import Any, Final, TypeVar

import stamina

from aftershock.drivers.toxiproxy.client import (
    Proxy,
    ToxiproxyClient,
    ToxiproxyConflict,
    ToxiproxyError,
    ToxiproxyNotFound,
)
from aftershock.errors import (
    DriverError,
    DriverUnavailable,
    FaultInjectionFailed,
    UnexpectedAnswer,
)
from aftershock.model import params as p
from aftershock.model.base import Spec

__all__ = [
    "DOWN",
    "PREFIX",
    "PROXY",
    "create_once",
    "created_by_us",
    "release_proxy",
    "toxic_attributes",
    "toxic_name",
]

T = TypeVar("T")
PREFIX = "aftershock-"
"""Every toxic aftershock creates starts with this."""
DOWN = "toxiproxy.down"
PROXY: Final = "toxiproxy.proxy"
"""The ``fault`` of the handle that journals a proxy aftershock provisions (not a fault)."""
DELETED, ABSENT, FOREIGN = "deleted", "absent", "not ours"
"""What removing a proxy aftershock created came to (the ``resource.released`` outcome)."""
_TYPES = {
    f"toxiproxy.{t}": t
    for t in ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data")
}


def toxic_name(run_id: str, step: str) -> str:
    """The toxic name of one method step of one run."""
    return f"{PREFIX}{run_id}-{step}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _listen_matches(asked: str, found: str) -> bool:
    host, _, port = asked.rpartition(":")
    found_host, _, found_port = found.rpartition(":")
    if port not in ("", "0") and found_port != port:
        return False
    # A name ("localhost") comes back as the address it resolved to.
    return found_host == host or not _is_ip(host)


def created_by_us(found: Proxy, undo: Mapping[str, Any], *, confirmed: bool) -> bool:
    """Whether ``found`` is the proxy aftershock journaled creating (``undo``).

    Toxiproxy keeps no owner and the name is the user's, so a name proves
    nothing; the journal is the only evidence, and the rule is:

    * A proxy that existed before the run is never journaled: aftershock reads
      first and records an intent only for a proxy that is missing, so such a
      proxy is never deleted.
    * ``confirmed`` (the creating call's answer was journaled, ``created_listen``
      and ``created_upstream``): it is ours only if its listen address and
      upstream are exactly those. With ``listen`` port 0 the server chose a free
      port, which a proxy created later under the same name does not get back.
    * Not confirmed (a crash came between the intent and the answer; the POST may
      or may not have landed): it is ours only if its upstream is the one we
      asked for, its listen address matches what we asked for (the same port
      unless we asked for port 0, the same host unless we named one) and it
      carries no toxics but aftershock's. A proxy someone else created under the
      same name with another upstream or listen address, or with toxics of its
      own, is left alone.
    """
    listen, upstream = undo.get("created_listen"), undo.get("created_upstream")
    if confirmed and isinstance(listen, str) and isinstance(upstream, str):
        return (found.listen, found.upstream) == (listen, upstream)
    if found.upstream != undo.get("upstream"):
        return False
    if not _listen_matches(str(undo.get("listen") or "127.0.0.1:0"), found.listen):
        return False
    return all(t.name.startswith(PREFIX) for t in found.toxics)


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


def _unreachable(exc: Exception) -> bool:
    return isinstance(exc, DriverUnavailable) and not isinstance(exc, UnexpectedAnswer)


async def _retrying(call: Callable[[], Awaitable[T]]) -> T:
    # Only an unreachable server is worth retrying: an error answer will not
    # change, and neither will a server that answers something else than the API.
    async for attempt in stamina.retry_context(on=_unreachable, attempts=3, timeout=10.0):
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
        raise type(exc)(str(exc), target=target) from exc
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


async def create_once(client: ToxiproxyClient, undo: Mapping[str, Any]) -> Proxy | None:
    """Create the proxy ``undo`` describes; None when one of that name exists (409).

    Never retried: if a first POST landed but its answer was lost, a second one
    would answer 409 and make our own proxy look like someone else's.
    """
    listen, upstream = str(undo.get("listen") or "127.0.0.1:0"), str(undo["upstream"])
    try:
        return await client.create_proxy(str(undo["proxy"]), upstream, listen)
    except ToxiproxyConflict:
        return None


async def release_proxy(
    client: ToxiproxyClient, undo: Mapping[str, Any], *, confirmed: bool
) -> str:
    """Delete the proxy ``undo`` journals creating if ``created_by_us``; say what came of it."""
    name = str(undo["proxy"])
    try:
        found = await _retrying(lambda: client.get_proxy(name))
        if not created_by_us(found, undo, confirmed=confirmed):
            return FOREIGN
        await _retrying(lambda: client.delete_proxy(name))
    except ToxiproxyNotFound:
        return ABSENT
    return DELETED
