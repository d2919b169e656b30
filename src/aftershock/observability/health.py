"""The daemon's local HTTP endpoints: ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` answers 200 while the process serves requests at all (liveness,
with a status snapshot). ``/readyz`` answers 200 ``{"ready": true}`` when the
daemon does its job, else 503 with ``"ready": false`` and, when the readiness
callable gives one (a ``Readiness``), a ``"reason"``: for ``aftershock heal``
no healer running, or overload (the p95 of how late probe samples start,
over the last 30 s, exceeds three quarters of a sampling period; ``SampleGate.overload``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aftershock.observability.metrics import CONTENT_TYPE
from aftershock.proxy.httpserver import HTTPServer, Request, Response

__all__ = ["HealthServer", "Readiness"]


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether the daemon is ready, and why not; true or false like the bool it replaces."""

    ready: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ready


class HealthServer:
    """Serves liveness, readiness and metrics on a local address."""

    def __init__(
        self,
        *,
        status: Callable[[], dict[str, Any]],
        ready: Callable[[], bool | Readiness],
        metrics: Callable[[], bytes],
    ) -> None:
        self._status = status
        self._ready = ready
        self._metrics = metrics
        self._server = HTTPServer(self._handle)
        self.address: tuple[str, int] | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; return the real address (port 0 picks a free one)."""
        self.address = await self._server.start(host, port)
        return self.address

    async def close(self) -> None:
        """Stop listening and close connections."""
        await self._server.close()

    async def _handle(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response.text(405, "method not allowed")
        if request.path == "/healthz":
            return _json(200, {"status": "ok", **self._status()})
        if request.path == "/readyz":
            answer = self._ready()
            ready = bool(answer)
            body: dict[str, Any] = {"ready": ready}
            if isinstance(answer, Readiness) and answer.reason:
                body["reason"] = answer.reason
            return _json(200 if ready else 503, body)
        if request.path == "/metrics":
            return Response(200, self._metrics(), [("Content-Type", CONTENT_TYPE)])
        return Response.text(404, "not found")


def _json(status: int, body: dict[str, Any]) -> Response:
    payload = json.dumps(body, default=str).encode()
    return Response(status, payload, [("Content-Type", "application/json")])
