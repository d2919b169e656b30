"""The fast HTTP probe engine: plain ``http://`` over a raw asyncio protocol.

A healer samples hundreds of endpoints a second, and the cost that limits it
is the CPU each sample spends in the HTTP client. This engine is the floor of
that cost on asyncio: one ``asyncio.Protocol`` per keep-alive connection, the
request encoded once (``h11request``) and cached, the response parsed by
``h11wire`` straight from ``data_received`` into the future the probe awaits. No pool, no
streams, no per-request task. It does one thing: a request to an ``http://``
URL without proxies; ``https://`` and everything else stay with httpx
(``probes/http.py``), which the factory chooses for them.

``FastSession`` has the same ``fetch`` as ``HttpSession`` and the same error
contract: every failure is a ``FetchError`` whose text is the detail, within
``within`` seconds (connect, request and the whole response). A connection the
server closed while idle is noticed before reuse; if the server closes one in
the instant it is reused, before a byte of the answer, an idempotent request
is sent once more on a new connection, as browsers and httpx do.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping
from typing import Final

from aftershock.probes.h11request import Target, encode_request, parse_target
from aftershock.probes.h11wire import ProtocolError, Response, ResponseParser
from aftershock.probes.http import BODY_LIMIT, Fetched, FetchError
from aftershock.probes.stopwatch import format_seconds

__all__ = ["USER_AGENT", "FastSession", "supports"]

USER_AGENT: Final = "aftershock-probe"
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_IDLE_KEPT: Final = 2  # a probe samples one at a time; a second covers an overlapping call


def supports(url: str) -> bool:
    """Whether the fast engine can take ``url``: plain http with a valid host and port."""
    try:
        parse_target(url)
    except ValueError:
        return False
    return True


class _Wire(asyncio.Protocol):
    """One connection: hands each response's bytes to its parser, wakes the waiter."""

    __slots__ = ("closed", "parser", "transport", "waiter")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser: ResponseParser | None = None
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # A request is one small write; Nagle would hold it for the previous ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None:
            # Bytes nobody asked for on an idle connection: it cannot be trusted again.
            self.abort()
            return
        try:
            response = parser.feed(data)
        except ProtocolError as exc:
            self._finish(exc)
            return
        if response is not None:
            self._finish(response)

    def eof_received(self) -> bool:
        self.closed = True
        self._at_end(None)
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._at_end(exc)

    def _at_end(self, exc: Exception | None) -> None:
        parser = self.parser
        if parser is None:
            return
        if exc is not None:
            self._finish(exc)
            return
        try:
            response = parser.feed(b"")
        except ProtocolError as error:
            self._finish(error)
            return
        if response is not None:
            self._finish(response)

    def _finish(self, outcome: Response | BaseException) -> None:
        waiter, self.waiter, self.parser = self.waiter, None, None
        if waiter is None or waiter.done():
            return
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)

    def send(self, request: bytes, parser: ResponseParser) -> asyncio.Future[Response]:
        """Write one request; the future completes with its response (or its error)."""
        assert self.transport is not None
        waiter: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.parser, self.waiter = parser, waiter
        self.transport.write(request)
        return waiter

    @property
    def usable(self) -> bool:
        return (
            not self.closed
            and self.transport is not None
            and not self.transport.is_closing()
            and self.parser is None
        )

    def abort(self) -> None:
        self.closed = True
        self.parser = self.waiter = None
        if self.transport is not None:
            self.transport.abort()


class FastSession:
    """Keep-alive HTTP/1.1 to plain ``http://`` URLs; the ``HttpSession`` contract.

    Connections belong to the session (one per probe in practice) and are closed
    by ``aclose``.
    """

    def __init__(self) -> None:
        self._idle: list[_Wire] = []
        self._target_for: tuple[str, Target] | None = None
        self._request_key: tuple[object, ...] | None = None
        self._request = b""

    def _target(self, url: str) -> Target:
        cached = self._target_for
        if cached is not None and cached[0] == url:
            return cached[1]
        try:
            target = parse_target(url)
        except ValueError as exc:
            raise FetchError(f"InvalidURL: {exc}", bad_url=True) from None
        self._target_for = (url, target)
        return target

    def _encode(
        self,
        method: str,
        target: Target,
        headers: Mapping[str, str] | None,
        content: bytes | None,
    ) -> bytes:
        key = (method, target, tuple(headers.items()) if headers else (), content)
        if key != self._request_key:
            try:
                self._request = encode_request(
                    method, target, dict(headers or {}), content, user_agent=USER_AGENT
                )
            except (ValueError, UnicodeEncodeError) as exc:
                raise FetchError(f"LocalProtocolError: {exc}") from None
            self._request_key = key
        return self._request

    async def fetch(
        self,
        method: str,
        url: str,
        *,
        within: float,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        limit: int = BODY_LIMIT,
    ) -> Fetched:
        """Send one request and read at most ``limit`` body bytes, all ``within`` seconds."""
        target = self._target(url)
        request = self._encode(method, target, headers, content)
        wire: _Wire | None = None
        try:
            async with asyncio.timeout(within):
                for attempt in range(2):
                    wire, reused = await self._checkout(target)
                    parser = ResponseParser(limit=limit, head_only=method == "HEAD")
                    try:
                        response = await wire.send(request, parser)
                    except (ProtocolError, OSError) as exc:
                        wire.abort()
                        # The server closed a kept-alive connection as we reused it.
                        if attempt or not reused or parser.received or method not in _IDEMPOTENT:
                            raise _fetch_error(exc) from None
                        continue
                    break
        except TimeoutError:
            if wire is not None:
                wire.abort()
            msg = f"timed out after {format_seconds(within)}"
            raise FetchError(msg) from None
        except FetchError:
            raise
        except BaseException:
            if wire is not None:
                wire.abort()
            raise
        assert wire is not None  # the loop either answered on a connection or raised
        if response.keep_alive and wire.usable and len(self._idle) < _IDLE_KEPT:
            self._idle.append(wire)
        else:
            wire.abort()
        return Fetched(response.status, response.reason, response.body, response.truncated)

    async def _checkout(self, target: Target) -> tuple[_Wire, bool]:
        while self._idle:
            wire = self._idle.pop()
            if wire.usable:
                return wire, True
            wire.abort()
        loop = asyncio.get_running_loop()
        try:
            _, wire = await loop.create_connection(_Wire, target.host, target.port)
        except OSError as exc:
            raise FetchError(f"ConnectError: {_reason(exc)}") from None
        except (ValueError, OverflowError, UnicodeError) as exc:
            raise FetchError(f"ConnectError: {type(exc).__name__}: {exc}") from None
        return wire, False

    async def aclose(self) -> None:
        """Close every kept connection; idempotent."""
        idle, self._idle = self._idle, []
        for wire in idle:
            if wire.transport is not None:
                wire.transport.close()
            wire.closed = True


def _reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"name resolution failed: {exc.strerror or exc}"
    if exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def _fetch_error(exc: BaseException) -> FetchError:
    if isinstance(exc, ProtocolError):
        return FetchError(f"RemoteProtocolError: {exc}")
    if isinstance(exc, OSError) and exc.errno:
        return FetchError(f"ReadError: {os.strerror(exc.errno)}")
    return FetchError(f"ReadError: {type(exc).__name__}")
