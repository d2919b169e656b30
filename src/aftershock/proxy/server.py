"""The embedded Toxiproxy-compatible server: the API over HTTP plus the proxies it manages."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from aftershock.errors import ConfigError
from aftershock.proxy.api import VERSION, ToxiproxyAPI
from aftershock.proxy.httpserver import HTTPServer
from aftershock.proxy.wire import ApiError, decode_body

__all__ = ["EmbeddedToxiproxy", "serve"]

_log = logging.getLogger(__name__)


class EmbeddedToxiproxy:
    """A Toxiproxy 2.12-compatible server running in this event loop.

    ``port=0`` picks a free port; :attr:`api_url` reports the real one.
    ``config`` is a list of proxies (the ``/populate`` body, as Toxiproxy's
    ``-config`` file) created at start. Use as an async context manager, or
    call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        config: Sequence[Mapping[str, Any]] | None = None,
        version: str = VERSION,
    ) -> None:
        self._host = host
        self._port = port
        self._config = list(config) if config is not None else None
        self.api = ToxiproxyAPI(version=version)
        self._http: HTTPServer | None = None

    @property
    def host(self) -> str:
        """The address the API listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The port the API listens on (the real one once started)."""
        return self._port

    @property
    def api_url(self) -> str:
        """Base URL of the API, e.g. ``http://127.0.0.1:8474``."""
        if self._http is None:
            raise RuntimeError("the embedded Toxiproxy is not started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    async def start(self) -> None:
        """Listen for API requests and create the configured proxies.

        Raises ConfigError, with the server stopped again, if ``config`` is refused.
        """
        if self._http is not None:
            return
        http = HTTPServer(self.api)
        self._host, self._port = await http.start(self._host, self._port)
        self._http = http
        if self._config is not None:
            try:
                await self.api.populate(decode_body(json.dumps(self._config).encode()))
            except ApiError as error:
                await self.stop()
                raise ConfigError(f"embedded Toxiproxy config: {error.message}") from None

    async def stop(self) -> None:
        """Stop the API, then every proxy and all their connections."""
        http, self._http = self._http, None
        if http is not None:
            await http.close()
        await self.api.drain()
        await self.api.collection.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve(
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    config: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """Run the embedded Toxiproxy on ``host:port`` until ``stop`` is set."""
    async with EmbeddedToxiproxy(host, port, config=config) as server:
        _log.info("embedded Toxiproxy API listening on %s", server.api_url)
        await stop.wait()
