"""Proxies: a listener, its live connections and its toxic chains; and the set of all proxies.

These follow Toxiproxy's ``proxy.go``, ``toxic_collection.go`` and
``proxy_collection.go``: ``listen`` is rewritten to the bound address when a
proxy starts (so a port 0 becomes the real port and survives a restart),
changing ``listen`` or ``upstream`` restarts the listener and drops live
connections, and toxics are added to, updated on and removed from live
connections as well as new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from typing import Any

from aftershock.proxy.link import READ_SIZE, Connection
from aftershock.proxy.toxics import Direction, Toxic
from aftershock.proxy.wire import ApiError

__all__ = [
    "PROXY_ALREADY_EXISTS",
    "PROXY_NOT_FOUND",
    "TOXIC_ALREADY_EXISTS",
    "TOXIC_NOT_FOUND",
    "Proxy",
    "ProxyCollection",
    "split_host_port",
]

_log = logging.getLogger(__name__)

PROXY_NOT_FOUND = ApiError("proxy not found", 404)
PROXY_ALREADY_EXISTS = ApiError("proxy already exists", 409)
TOXIC_ALREADY_EXISTS = ApiError("toxic already exists", 409)
TOXIC_NOT_FOUND = ApiError("toxic not found", 404)
DIAL_TIMEOUT = 30.0
# Stream buffers hold a few reads, so one read can take a whole socket buffer.
READ_LIMIT = 2 * READ_SIZE


def split_host_port(address: str) -> tuple[str, int]:
    """Split "host:port" ("[v6]:port") as Go's net.SplitHostPort; ValueError says why not."""
    host, colon, port = address.rpartition(":")
    if not colon:
        raise ValueError(f"address {address}: missing port in address")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"address {address}: missing ']' in address")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"address {address}: too many colons in address")
    return host, _parse_port(port)


def _parse_port(port: str) -> int:
    """A port number as Go's net package reads one (``parsePort``, then the range check)."""
    if not port:
        return 0  # Go's legacy rule: an empty port is port 0
    digits = port[1:] if port[0] in "+-" else port
    # ASCII only: str.isdigit() also accepts digits like "٣" that Go would look up as a name.
    if digits and not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"lookup tcp/{port}: unknown port")
    digits = digits.lstrip("0") or "0"
    # Checking the length first keeps int() clear of its limit on digits.
    number = int(digits) if len(digits) <= 5 else 65536
    if port[0] == "-" and number != 0:
        number = -1
    if not 0 <= number <= 65535:
        raise ValueError(f"address {port}: invalid port")
    return number


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Proxy:
    """One proxy: listens on ``listen`` and forwards every connection to ``upstream``."""

    def __init__(self, name: str, listen: str, upstream: str) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.chains: dict[Direction, list[Toxic]] = {d: [] for d in Direction}
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()
        self._dialing: set[asyncio.Task[None]] = set()

    def to_json(self) -> dict[str, Any]:
        """The API representation, with toxics."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxic_array(),
        }

    # ---------------------------------------------------------------- listener

    async def start(self) -> None:
        """Listen; raises ApiError 500 with Go's wording if the address cannot be bound."""
        if self.enabled:
            return
        try:
            # Go binds every interface for an empty address; the embedded proxy stays on loopback.
            host, port = split_host_port(self.listen or "127.0.0.1:0")
        except ValueError as exc:
            raise ApiError(f"listen tcp: {exc}", 500) from None
        try:
            # ":port" means every interface, as in Go.
            address = await self._resolve(host or "0.0.0.0", port)  # noqa: S104
            self._server = await asyncio.start_server(
                self._accept, address, port, reuse_address=True, limit=READ_LIMIT
            )
        except (socket.gaierror, ValueError):
            # ValueError: a host IDNA cannot encode (a label over 63 characters) or with a NUL.
            raise ApiError(f"listen tcp: lookup {host}: no such host", 500) from None
        except OSError as exc:
            reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            raise ApiError(f"listen tcp {self.listen}: bind: {reason}", 500) from None
        bound = self._server.sockets[0].getsockname()
        self.listen = _join_host_port(bound[0], bound[1])
        self.enabled = True

    @staticmethod
    async def _resolve(host: str, port: int) -> str:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        if not infos:
            raise OSError(errno.EADDRNOTAVAIL, "no address")
        # Go listens on one address of a name, preferring IPv4.
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        return str(infos[0][4][0])

    async def stop(self) -> None:
        """Stop listening and close every live connection."""
        if not self.enabled:
            return
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in self._dialing:
            task.cancel()
        for connection in list(self._connections):
            connection.abort()
        await asyncio.gather(*self._dialing, return_exceptions=True)
        await asyncio.gather(*(c.wait_closed() for c in list(self._connections)))
        if server is not None:
            await server.wait_closed()

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Apply a PATCH: restart on a new address, then enable or disable."""
        if listen != self.listen or upstream != self.upstream:
            await self.stop()
            self.listen, self.upstream = listen, upstream
        if enabled != self.enabled:
            if enabled:
                await self.start()
            else:
                await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.enabled:  # accepted just before the listener closed
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._dialing.add(task)
        try:
            await self._connect(reader, writer)
        except (OSError, TimeoutError, ValueError) as exc:
            _log.info("proxy %s: cannot reach upstream %s: %s", self.name, self.upstream, exc)
            writer.transport.abort()
        except asyncio.CancelledError:
            # Cancelled by stop(); not re-raised, as asyncio's stream callback calls
            # task.exception(), which raises again for a cancelled task.
            writer.transport.abort()
        finally:
            self._dialing.discard(task)

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = split_host_port(self.upstream)
        async with asyncio.timeout(DIAL_TIMEOUT):
            upstream = await asyncio.open_connection(host, port, limit=READ_LIMIT)
        connection = Connection((reader, writer), upstream, self.chains, self._connections.discard)
        self._connections.add(connection)
        connection.start()

    # ---------------------------------------------------------------- toxics

    def toxic_array(self) -> list[dict[str, Any]]:
        """Every toxic: the upstream chain, then the downstream chain, each in creation order."""
        return [toxic.to_json() for d in Direction for toxic in self.chains[d]]

    def find_toxic(self, name: str) -> Toxic | None:
        """The toxic called ``name``, in either direction."""
        for chain in self.chains.values():
            for toxic in chain:
                if toxic.name == name:
                    return toxic
        return None

    def get_toxic(self, name: str) -> Toxic:
        """The toxic called ``name``; ApiError 404 if there is none."""
        toxic = self.find_toxic(name)
        if toxic is None:
            raise TOXIC_NOT_FOUND
        return toxic

    def add_toxic(self, toxic: Toxic) -> None:
        """Append ``toxic`` to its chain and start it on every live connection."""
        if self.find_toxic(toxic.name) is not None:
            raise TOXIC_ALREADY_EXISTS
        self.chains[toxic.direction].append(toxic)
        try:
            for connection in self._connections:
                connection.links[toxic.direction].attach(toxic)
        except BaseException:
            # All or nothing: a toxic the API refused must not stay on some connections.
            self.chains[toxic.direction].remove(toxic)
            for connection in list(self._connections):
                connection.links[toxic.direction].detach(toxic)
            raise

    def update_toxic(self, toxic: Toxic, attributes: dict[str, int], toxicity: float) -> None:
        """Replace the attributes and toxicity of ``toxic`` and restart it everywhere."""
        toxic.attributes = attributes
        toxic.toxicity = toxicity
        for connection in self._connections:
            connection.links[toxic.direction].update(toxic)

    def remove_toxic(self, name: str) -> None:
        """Remove the toxic called ``name`` everywhere; ApiError 404 if there is none."""
        toxic = self.get_toxic(name)
        self.chains[toxic.direction].remove(toxic)
        for connection in list(self._connections):
            connection.links[toxic.direction].detach(toxic)

    def reset_toxics(self) -> None:
        """Remove every toxic."""
        for chain in self.chains.values():
            for toxic in list(chain):
                self.remove_toxic(toxic.name)


class ProxyCollection:
    """All proxies by name. Mutations are serialised by ``lock``."""

    def __init__(self) -> None:
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()

    def get(self, name: str) -> Proxy:
        """The proxy called ``name``; ApiError 404 if there is none."""
        proxy = self.proxies.get(name)
        if proxy is None:
            raise PROXY_NOT_FOUND
        return proxy

    async def add(self, proxy: Proxy, *, start: bool) -> None:
        """Add a new proxy, started if asked; ApiError 409 if the name is taken."""
        if proxy.name in self.proxies:
            raise PROXY_ALREADY_EXISTS
        if start:
            await proxy.start()
        self.proxies[proxy.name] = proxy

    async def add_or_replace(self, proxy: Proxy, *, start: bool) -> Proxy:
        """Populate one proxy: keep an identical existing one, else replace it."""
        existing = self.proxies.get(proxy.name)
        if existing is not None:
            if existing.listen == proxy.listen and existing.upstream == proxy.upstream:
                return existing
            await existing.stop()
        if start:
            await proxy.start()
        self.proxies[proxy.name] = proxy
        return proxy

    async def remove(self, name: str) -> None:
        """Stop and forget the proxy called ``name``; ApiError 404 if there is none."""
        proxy = self.get(name)
        await proxy.stop()
        del self.proxies[name]

    async def clear(self) -> None:
        """Stop and forget every proxy."""
        for name in list(self.proxies):
            with contextlib.suppress(ApiError):
                await self.remove(name)
