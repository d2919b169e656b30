"""TCP probe: the sample's latency is the time to complete a connect."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Final, Self

from aftershock.model.probes import TcpProbe
from aftershock.ports import Clock, ProbeResult
from aftershock.probes.stopwatch import Stopwatch, format_seconds

__all__ = ["TcpProbeAdapter"]

_CLOSE_GRACE: Final = 1.0  # a peer that never acknowledges our FIN must not hold the sample


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into host and port."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _reason(exc: OSError) -> str:
    # asyncio words a refused connect as "Connect call failed (addr)"; the errno's
    # own text ("Connection refused") is what an operator recognises.
    if not isinstance(exc, socket.gaierror) and exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or type(exc).__name__


class TcpProbeAdapter:
    """``Probe`` for ``TcpProbe``: success = the connect completes within the timeout."""

    def __init__(self, spec: TcpProbe, *, clock: Clock | None = None) -> None:
        self.spec = spec
        self._clock = clock
        self._host, self._port = split_address(spec.address)
        self._timeout = spec.timeout.total_seconds()

    async def check(self) -> ProbeResult:
        """Connect once and close the connection again."""
        watch = Stopwatch(self._clock)
        try:
            async with asyncio.timeout(self._timeout):
                _, writer = await asyncio.open_connection(self._host, self._port)
        except TimeoutError:
            limit = format_seconds(self._timeout)
            return watch.result(
                ok=False, detail=f"connect to {self.spec.address} timed out after {limit}"
            )
        except (OSError, ValueError, OverflowError) as exc:  # a host IDNA refuses, a bad port
            reason = _reason(exc) if isinstance(exc, OSError) else str(exc)
            return watch.result(ok=False, detail=f"connect to {self.spec.address} failed: {reason}")
        latency = watch.elapsed()
        writer.close()
        # The peer may already have reset the connection: closing is best effort,
        # but it is awaited so no transport outlives the sample.
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(_CLOSE_GRACE):
                await writer.wait_closed()
        return watch.result(ok=True, latency=latency)

    async def aclose(self) -> None:
        """Nothing to release: every check closes its own connection."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
