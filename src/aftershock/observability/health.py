"""The daemon's local HTTP endpoints: ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` answers 200 while the daemon's event loop turns (liveness, with
a status snapshot). ``/readyz`` answers 200 ``{"ready": true}`` when the
daemon does its job, else 503 with ``"ready": false`` and, when the readiness
callable gives one (a ``Readiness``), a ``"reason"``: for ``aftershock heal``
no healer running, or overload (the p95 of how late probe samples start,
over the last 30 s, exceeds three quarters of a sampling period; ``SampleGate.overload``).

The endpoints are served from a thread of their own, with its own event loop,
so they answer at once however busy the daemon's loop is: an overloaded healer
(its loop seconds behind) is alive, and a kubelet's liveness probe with a 1 s
timeout must not restart it for that. Liveness is a heartbeat the daemon's loop
writes every ``beat`` seconds: older than ``stall_after``, the loop is stuck
and ``/healthz`` answers 503 ``{"status": "stalled"}``. The status snapshot and
the readiness are still taken on the daemon's loop (they read its state): a
request asks for fresh ones and waits ``fresh_within`` at most; when the loop
is later than that, the answer carries the last ones taken and their age
(``"snapshot_age"``, seconds). ``/metrics`` is rendered on the health thread
(the Prometheus client's collection is thread-safe).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from aftershock.observability.metrics import CONTENT_TYPE
from aftershock.proxy.httpserver import HTTPServer, Request, Response

__all__ = ["BEAT", "FRESH_WITHIN", "STALL_AFTER", "HealthServer", "Readiness"]

BEAT: Final = 1.0
"""Seconds between two heartbeats of the daemon's loop."""
STALL_AFTER: Final = 10.0
"""Seconds without a heartbeat after which ``/healthz`` reports the loop stalled."""
FRESH_WITHIN: Final = 0.25
"""Seconds a request waits for a fresh snapshot before it is answered with the last one."""


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether the daemon is ready, and why not; true or false like the bool it replaces."""

    ready: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ready


@dataclass(frozen=True, slots=True)
class _Taken:
    value: Any
    at: float  # time.monotonic()


class _Snapshot:
    """One callable of the daemon's state, called on the daemon's loop for another thread.

    Requests arriving while a call is pending share it. The last value taken is
    kept for the requests that cannot wait for the loop.
    """

    def __init__(self, read: Callable[[], Any], loop: asyncio.AbstractEventLoop) -> None:
        self._read = read
        self._loop = loop
        self._pending: concurrent.futures.Future[Any] | None = None
        self.last: _Taken | None = None

    def prime(self) -> None:
        """Take a first value now, on the daemon's loop; one that fails is a 500 when asked."""
        with contextlib.suppress(Exception):
            self.last = _Taken(self._read(), time.monotonic())

    def _take(self, future: concurrent.futures.Future[Any]) -> None:  # on the daemon's loop
        if not future.set_running_or_notify_cancel():
            return
        try:
            taken = _Taken(self._read(), time.monotonic())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
            future.set_exception(exc)
        else:
            self.last = taken
            future.set_result(taken)

    async def fresh(self, within: float) -> _Taken | None:
        """A value taken now, or else the last one (``None`` if none was ever taken)."""
        if self._pending is None or self._pending.done():
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            try:
                self._loop.call_soon_threadsafe(self._take, future)
            except RuntimeError:  # the daemon's loop is closed
                return self.last
            self._pending = future
        with contextlib.suppress(TimeoutError):
            taken: _Taken = await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(self._pending)), within
            )
            return taken
        return self.last


class HealthServer:
    """Serves liveness, readiness and metrics on a local address, from its own thread."""

    def __init__(
        self,
        *,
        status: Callable[[], dict[str, Any]],
        ready: Callable[[], bool | Readiness],
        metrics: Callable[[], bytes],
        beat: float = BEAT,
        stall_after: float = STALL_AFTER,
        fresh_within: float = FRESH_WITHIN,
    ) -> None:
        self._status = status
        self._ready = ready
        self._metrics = metrics
        self.beat = beat
        self.stall_after = stall_after
        self.fresh_within = fresh_within
        self.address: tuple[str, int] | None = None
        self._beat_at = time.monotonic()
        self._heart: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stop: Callable[[], object] | None = None
        self._snapshots: dict[str, _Snapshot] = {}

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; return the real address (port 0 picks a free one).

        The heartbeat starts on the calling loop, which is the one whose state
        the callables read; a port that cannot be taken raises here.
        """
        loop = asyncio.get_running_loop()
        self._snapshots = {
            "status": _Snapshot(self._status, loop),
            "ready": _Snapshot(self._ready, loop),
        }
        for snapshot in self._snapshots.values():
            snapshot.prime()  # a loop stuck from the start still has answers to give
        listening: concurrent.futures.Future[tuple[str, int]] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=asyncio.run,
            args=(self._serve(host, port, listening),),
            name="aftershock-health",
            daemon=True,  # never keeps a dying process alive; close() joins it
        )
        self._thread.start()
        try:
            self.address = await asyncio.wrap_future(listening)
        except BaseException:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
            raise
        self._beat_at = time.monotonic()
        self._heart = asyncio.create_task(self._heartbeat(), name="aftershock-health-beat")
        return self.address

    async def close(self) -> None:
        """Stop the heartbeat, stop listening, close connections and join the thread."""
        if self._heart is not None:
            self._heart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heart
            self._heart = None
        if self._thread is not None:
            if self._stop is not None:
                self._stop()
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    async def _heartbeat(self) -> None:
        while True:
            self._beat_at = time.monotonic()
            await asyncio.sleep(self.beat)

    async def _serve(
        self,
        host: str,
        port: int,
        listening: concurrent.futures.Future[tuple[str, int]],
    ) -> None:  # the health thread's whole life
        server = HTTPServer(self._handle)
        try:
            address = await server.start(host, port)
        except BaseException as exc:  # noqa: BLE001 - raised again by start() on the daemon's loop
            listening.set_exception(exc)
            return
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._stop = lambda: loop.call_soon_threadsafe(stopped.set)
        listening.set_result(address)
        try:
            await stopped.wait()
        finally:
            await server.close()

    async def _handle(self, request: Request) -> Response:  # on the health thread
        if request.method not in ("GET", "HEAD"):
            return Response.text(405, "method not allowed")
        if request.path == "/healthz":
            stalled = time.monotonic() - self._beat_at
            if stalled > self.stall_after:
                return _json(503, {"status": "stalled", "stalled_for": round(stalled, 3)})
            asked = time.monotonic()
            taken = await self._snapshots["status"].fresh(self.fresh_within)
            body: dict[str, Any] = {"status": "ok"}
            if taken is not None:
                body.update(taken.value)
            return _json(200, _aged(body, taken, asked))
        if request.path == "/readyz":
            asked = time.monotonic()
            taken = await self._snapshots["ready"].fresh(self.fresh_within)
            answer = taken.value if taken is not None else False
            ready = bool(answer)
            body = {"ready": ready}
            if isinstance(answer, Readiness) and answer.reason:
                body["reason"] = answer.reason
            return _json(200 if ready else 503, _aged(body, taken, asked))
        if request.path == "/metrics":
            return Response(200, self._metrics(), [("Content-Type", CONTENT_TYPE)])
        return Response.text(404, "not found")


def _aged(body: dict[str, Any], taken: _Taken | None, asked: float) -> dict[str, Any]:
    """``body``, with the snapshot's age when it was taken before the request came."""
    if taken is not None and taken.at < asked:
        body["snapshot_age"] = round(time.monotonic() - taken.at, 3)
    return body


def _json(status: int, body: dict[str, Any]) -> Response:
    payload = json.dumps(body, default=str).encode()
    return Response(status, payload, [("Content-Type", "application/json")])
