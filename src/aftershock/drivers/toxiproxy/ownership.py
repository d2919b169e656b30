"""Proxies aftershock creates: creating one once, and deleting only the one it created.

A target with ``upstream`` makes aftershock create its proxy when it is
missing, journaled first (see ``driver``). Toxiproxy keeps no owner and the
name is the user's, so when the proxy is removed the journaled undo record is
the only evidence of which proxy is aftershock's: ``created_by_us`` is that
rule, ``create_once`` and ``release_proxy`` make and remove the proxy by it.
"""

from __future__ import annotations

import ipaddress
from typing import Final

from aftershock.drivers.toxiproxy.calls import retrying
from aftershock.drivers.toxiproxy.client import ToxiproxyClient
from aftershock.drivers.toxiproxy.errors import ToxiproxyConflict, ToxiproxyNotFound
from aftershock.drivers.toxiproxy.faults import PREFIX
from aftershock.drivers.toxiproxy.resources import Proxy
from aftershock.drivers.toxiproxy.undo import ToxiproxyUndo

__all__ = [
    "ABSENT",
    "DELETED",
    "FOREIGN",
    "PROXY",
    "create_once",
    "created_by_us",
    "release_proxy",
]

PROXY: Final = "toxiproxy.proxy"
"""The ``fault`` of the handle that journals a proxy aftershock provisions (not a fault)."""
DELETED: Final = "deleted"
ABSENT: Final = "absent"
FOREIGN: Final = "not ours"
"""What removing a proxy aftershock created came to (the ``resource.released`` outcome)."""
DEFAULT_LISTEN: Final = "127.0.0.1:0"


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


def created_by_us(found: Proxy, undo: ToxiproxyUndo, *, confirmed: bool) -> bool:
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
    listen, upstream = undo.created_listen, undo.created_upstream
    if confirmed and listen is not None and upstream is not None:
        return (found.listen, found.upstream) == (listen, upstream)
    if found.upstream != undo.upstream:
        return False
    if not _listen_matches(undo.listen or DEFAULT_LISTEN, found.listen):
        return False
    return all(t.name.startswith(PREFIX) for t in found.toxics)


async def create_once(client: ToxiproxyClient, undo: ToxiproxyUndo) -> Proxy | None:
    """Create the proxy ``undo`` describes; None when one of that name exists (409).

    Never retried: if a first POST landed but its answer was lost, a second one
    would answer 409 and make our own proxy look like someone else's.
    """
    if undo.upstream is None:
        msg = f"proxy {undo.proxy!r} has no upstream to create it with"
        raise ValueError(msg)
    try:
        return await client.create_proxy(undo.proxy, undo.upstream, undo.listen or DEFAULT_LISTEN)
    except ToxiproxyConflict:
        return None


async def release_proxy(client: ToxiproxyClient, undo: ToxiproxyUndo, *, confirmed: bool) -> str:
    """Delete the proxy ``undo`` journals creating if ``created_by_us``; say what came of it."""
    try:
        found = await retrying(lambda: client.get_proxy(undo.proxy))
        if not created_by_us(found, undo, confirmed=confirmed):
            return FOREIGN
        await retrying(lambda: client.delete_proxy(undo.proxy))
    except ToxiproxyNotFound:
        return ABSENT
    return DELETED
