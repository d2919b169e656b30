"""The health endpoints answer from their own thread, however busy the daemon's loop is."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from typing import Any

import pytest

from aftershock.observability.health import HealthServer, Readiness


def _get(address: tuple[str, int], path: str) -> tuple[int, dict[str, Any], float]:
    """GET ``path`` in the calling thread: status, JSON body, and when the answer came."""
    connection = http.client.HTTPConnection(*address, timeout=10)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        body = json.loads(answer.read())
        return answer.status, body, time.monotonic()
    finally:
        connection.close()


def _health_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "aftershock-health"]


async def test_answers_while_the_daemon_loop_is_blocked() -> None:
    state = {"polls": 0}

    def status() -> dict[str, Any]:
        state["polls"] += 1
        return {"polls": state["polls"]}

    server = HealthServer(
        status=status,
        ready=lambda: Readiness(ready=True),
        metrics=lambda: b"# nothing\n",
        fresh_within=0.1,
    )
    address = await server.start("127.0.0.1", 0)
    try:
        code, body, _ = await asyncio.to_thread(_get, address, "/healthz")
        # One snapshot was taken at start, this one for the request: fresh, no age.
        assert (code, body) == (200, {"status": "ok", "polls": 2})
        answers: dict[str, tuple[int, dict[str, Any], float]] = {}

        def poll() -> None:
            answers["healthz"] = _get(address, "/healthz")
            answers["readyz"] = _get(address, "/readyz")

        client = threading.Thread(target=poll)
        client.start()
        time.sleep(1.5)  # noqa: ASYNC251 - the daemon's loop is stuck: nothing of it runs
        unblocked = time.monotonic()
        await asyncio.to_thread(client.join)
    finally:
        await server.close()
    code, body, came = answers["healthz"]
    assert came < unblocked  # answered while the loop was still stuck
    assert code == 200
    assert body["polls"] == 2  # the last snapshot taken, with its age
    assert body["snapshot_age"] > 0
    code, body, came = answers["readyz"]
    assert came < unblocked
    assert code == 200
    assert body["ready"] is True
    assert "snapshot_age" in body
    assert _health_threads() == []


async def test_a_stalled_loop_fails_liveness_and_recovers() -> None:
    server = HealthServer(
        status=dict, ready=lambda: True, metrics=lambda: b"", beat=0.05, stall_after=0.5
    )
    address = await server.start("127.0.0.1", 0)
    try:
        answers: list[tuple[int, dict[str, Any], float]] = []

        def poll_later() -> None:
            time.sleep(1.0)
            answers.append(_get(address, "/healthz"))

        client = threading.Thread(target=poll_later)
        client.start()
        time.sleep(1.5)  # noqa: ASYNC251 - no heartbeat for longer than stall_after
        await asyncio.to_thread(client.join)
        code, body, _ = answers[0]
        assert code == 503
        assert body["status"] == "stalled"
        assert body["stalled_for"] > 0.5
        await asyncio.sleep(0.2)  # the loop beats again
        code, body, _ = await asyncio.to_thread(_get, address, "/healthz")
        assert (code, body["status"]) == (200, "ok")
    finally:
        await server.close()


async def test_a_failing_status_is_a_500_and_the_server_goes_on() -> None:
    def status() -> dict[str, Any]:
        raise RuntimeError("broken snapshot")

    server = HealthServer(status=status, ready=lambda: False, metrics=lambda: b"m 1\n")
    address = await server.start("127.0.0.1", 0)
    try:
        connection = http.client.HTTPConnection(*address, timeout=10)
        await asyncio.to_thread(connection.request, "GET", "/healthz")
        answer = await asyncio.to_thread(connection.getresponse)
        assert answer.status == 500
        answer.read()
        connection.close()
        code, body, _ = await asyncio.to_thread(_get, address, "/readyz")
        assert (code, body) == (503, {"ready": False})
    finally:
        await server.close()


async def test_a_busy_port_fails_start_and_leaves_no_thread() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = HealthServer(status=dict, ready=lambda: True, metrics=lambda: b"")
        with pytest.raises(OSError, match="in use"):
            await server.start(*taken.getsockname())
    assert _health_threads() == []
    await server.close()  # closing a server that never started is harmless
