"""TcpProbeAdapter against real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from aftershock.clock import ManualClock
from aftershock.model.probes import TcpProbe
from aftershock.ports import Probe
from aftershock.probes import TcpProbeAdapter
from tests.contract.probes.servers import LocalServer, closed_port

pytestmark = pytest.mark.timeout(30)

MARGIN = 0.5


async def wait_for_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Hold the connection until the client closes it."""
    while await reader.read(1024):
        pass


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A listening port whose accept queue is full, so a new connect never completes.

    Linux drops SYNs to a listener whose queue is full; the client keeps
    retransmitting, which is exactly a peer that does not answer in time.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.1)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


async def test_connect_succeeds_and_closes() -> None:
    async with LocalServer(wait_for_eof) as server:
        probe = TcpProbeAdapter(TcpProbe(address=server.address))
        assert isinstance(probe, Probe)
        result = await probe.check()
        assert result.ok
        assert result.detail == ""
        assert 0 < result.latency < 1
        assert server.connections == 1
        # The server's handler only returns once the probe closed its side.
        for _ in range(100):
            if not server._tasks:
                break
            await asyncio.sleep(0.01)
        assert not server._tasks


async def test_refused_is_a_failed_sample() -> None:
    port = closed_port()
    result = await TcpProbeAdapter(TcpProbe(address=f"127.0.0.1:{port}")).check()
    assert not result.ok
    assert result.detail == f"connect to 127.0.0.1:{port} failed: Connection refused"


async def test_unanswered_connect_times_out(full_backlog: int) -> None:
    probe = TcpProbeAdapter(TcpProbe(address=f"127.0.0.1:{full_backlog}", timeout="300ms"))
    started = time.monotonic()
    result = await probe.check()
    elapsed = time.monotonic() - started
    assert not result.ok
    assert result.detail == f"connect to 127.0.0.1:{full_backlog} timed out after 300ms"
    assert 0.25 <= elapsed < 0.3 + MARGIN


async def test_started_comes_from_the_injected_clock() -> None:
    clock = ManualClock(start=42.0)
    async with LocalServer(wait_for_eof) as server:
        result = await TcpProbeAdapter(TcpProbe(address=server.address), clock=clock).check()
    assert result.ok
    assert result.started == 42.0
    assert result.latency > 0  # latency is real time even on a manual clock


async def test_unknown_host_is_a_failed_sample() -> None:
    result = await TcpProbeAdapter(TcpProbe(address="no-such-host.invalid:80")).check()
    assert not result.ok
    assert result.detail.startswith("connect to no-such-host.invalid:80 ")
