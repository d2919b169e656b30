"""Real TCP through the embedded proxy to local upstreams: what each toxic does to the bytes."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from typing import Any

import httpx
import pytest

from .helpers import Stream, Upstreams, connect, create_proxy, read_all

LATENCY = 0.200


async def round_trip(stream: Stream, payload: bytes = b"ping") -> float:
    """Seconds for ``payload`` to come back from the echo upstream."""
    reader, writer = stream

    async def send() -> None:
        writer.write(payload)
        await writer.drain()

    began = time.perf_counter()
    # Sending while reading: a big payload would otherwise fill every buffer on the way.
    sending = asyncio.create_task(send())
    received = bytearray()
    while len(received) < len(payload):
        chunk = await reader.read(65536)
        assert chunk, "connection closed during a round trip"
        received += chunk
    await sending
    assert received == payload
    return time.perf_counter() - began


def assert_latency(trips: list[float]) -> None:
    """Every trip took the toxic's latency; the typical one within 10 % of it."""
    assert min(trips) >= LATENCY * 0.9, trips
    assert statistics.median(trips) <= LATENCY * 1.1, trips


async def add_toxic(api: httpx.AsyncClient, **toxic: Any) -> None:
    answer = await api.post("/proxies/p/toxics", json=toxic)
    assert answer.status_code == 200, answer.text


def sender(payload: bytes, *, then_close: bool = False) -> Any:
    """An upstream that sends ``payload`` on connect, then closes or waits for the client."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(payload)
        await writer.drain()
        if not then_close:
            await reader.read()

    return handle


# ---------------------------------------------------------------- latency


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
async def test_latency_adds_its_delay_to_each_round_trip(
    api: httpx.AsyncClient, echo_upstream: str, stream: str
) -> None:
    address = await create_proxy(api, echo_upstream)
    await add_toxic(api, type="latency", stream=stream, attributes={"latency": 200})
    async with connect(address) as conn:
        trips = [await round_trip(conn) for _ in range(3)]
    assert_latency(trips)


async def test_latency_reaches_already_open_connections_and_leaves_with_its_toxic(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    address = await create_proxy(api, echo_upstream)
    async with connect(address) as conn:
        assert await round_trip(conn) < 0.05
        await add_toxic(api, type="latency", attributes={"latency": 200})
        assert_latency([await round_trip(conn) for _ in range(3)])
        await api.delete("/proxies/p/toxics/latency_downstream")
        assert await round_trip(conn) < 0.05


async def test_latency_update_applies_to_live_connections(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    address = await create_proxy(api, echo_upstream)
    await add_toxic(api, type="latency", attributes={"latency": 5000})
    async with connect(address) as conn:
        await api.patch("/proxies/p/toxics/latency_downstream", json={"attributes": {"latency": 0}})
        assert await round_trip(conn) < 0.1


async def test_latency_is_pipelined_not_serialised(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    address = await create_proxy(api, echo_upstream)
    await add_toxic(api, type="latency", attributes={"latency": 200})
    async with connect(address) as (reader, writer):
        began = time.perf_counter()
        for _ in range(5):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.02)
        received = b""
        while len(received) < 5:
            received += await reader.read(10)
        elapsed = time.perf_counter() - began
    # Each byte is delayed 200 ms from when it was sent: about 280 ms in all, not 5 x 200.
    assert LATENCY <= elapsed < 0.4


async def test_toxicity_zero_never_applies_and_one_always_does(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    address = await create_proxy(api, echo_upstream)
    await add_toxic(api, type="latency", toxicity=0, attributes={"latency": 1000})
    for _ in range(5):
        async with connect(address) as conn:
            assert await round_trip(conn) < 0.1
    async with connect(address) as conn:
        await api.patch(
            "/proxies/p/toxics/latency_downstream",
            json={"toxicity": 1, "attributes": {"latency": 200}},
        )
        assert await round_trip(conn) >= LATENCY * 0.9


# ---------------------------------------------------------------- throughput and shape


async def test_bandwidth_throttles_to_its_rate(
    api: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    payload = bytes(range(256)) * 200  # 51,200 bytes
    address = await create_proxy(api, await upstreams.start(sender(payload, then_close=True)))
    async with connect(address) as (reader, _):
        began = time.perf_counter()
        assert await read_all(reader) == payload
        unthrottled = time.perf_counter() - began
    await add_toxic(api, type="bandwidth", attributes={"rate": 100})  # 100 KB/s
    async with connect(address) as (reader, _):
        began = time.perf_counter()
        assert await read_all(reader) == payload
        throttled = time.perf_counter() - began
    assert unthrottled < 0.1
    assert 0.45 <= throttled <= 1.0, throttled


async def test_slicer_cuts_data_into_small_packets(
    api: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    payload = bytes(range(256)) * 2
    address = await create_proxy(api, await upstreams.start(sender(payload, then_close=True)))
    await add_toxic(
        api, type="slicer", attributes={"average_size": 16, "size_variation": 4, "delay": 2000}
    )
    sizes: list[int] = []
    async with connect(address) as (reader, _):
        while chunk := await reader.read(65536):
            sizes.append(len(chunk))
    assert sum(sizes) == len(payload)
    assert len(sizes) >= 16, sizes
    assert sorted(sizes)[len(sizes) // 2] <= 20, sizes


async def test_limit_data_closes_after_exactly_its_bytes(
    api: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    payload = bytes(range(256)) * 40
    address = await create_proxy(api, await upstreams.start(sender(payload)))
    await add_toxic(api, type="limit_data", attributes={"bytes": 1000})
    async with connect(address) as (reader, _):
        async with asyncio.timeout(5):
            received = await read_all(reader)
    assert received == payload[:1000]


async def test_limit_data_upstream_counts_client_bytes(
    api: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.set_result(await read_all(reader))

    address = await create_proxy(api, await upstreams.start(record))
    await add_toxic(api, type="limit_data", stream="upstream", attributes={"bytes": 10})
    async with connect(address) as (reader, writer):
        writer.write(b"0123456789abcdef")
        await writer.drain()
        async with asyncio.timeout(5):
            assert await received == b"0123456789"
            assert await read_all(reader) == b""


# ---------------------------------------------------------------- failures


async def test_reset_peer_resets_the_client(api: httpx.AsyncClient, echo_upstream: str) -> None:
    address = await create_proxy(api, echo_upstream)
    await add_toxic(api, type="reset_peer", attributes={"timeout": 0})
    async with connect(address) as (reader, writer):
        writer.write(b"hello")
        await writer.drain()
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(5):
                await read_all(reader)


async def test_reset_peer_waits_for_its_timeout(api: httpx.AsyncClient, echo_upstream: str) -> None:
    address = await create_proxy(api, echo_upstream)
    await add_toxic(api, type="reset_peer", attributes={"timeout": 200})
    async with connect(address) as (reader, writer):
        writer.write(b"hello")
        await writer.drain()
        began = time.perf_counter()
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(5):
                await read_all(reader)
        assert time.perf_counter() - began >= 0.18


async def test_timeout_stops_data_then_closes(api: httpx.AsyncClient, echo_upstream: str) -> None:
    address = await create_proxy(api, echo_upstream)
    await add_toxic(api, type="timeout", attributes={"timeout": 300})
    async with connect(address) as (reader, writer):
        began = time.perf_counter()
        writer.write(b"lost")
        await writer.drain()
        async with asyncio.timeout(5):
            assert await read_all(reader) == b""
        assert 0.27 <= time.perf_counter() - began <= 1.0


async def test_timeout_zero_holds_until_removed(api: httpx.AsyncClient, echo_upstream: str) -> None:
    address = await create_proxy(api, echo_upstream)
    await add_toxic(api, type="timeout", attributes={"timeout": 0})
    async with connect(address) as (reader, writer):
        writer.write(b"lost")
        await writer.drain()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await reader.read(10)
        # Removing it closes the connections it held, as in Toxiproxy.
        await api.delete("/proxies/p/toxics/timeout_downstream")
        async with asyncio.timeout(5):
            assert await read_all(reader) == b""


async def test_slow_close_delays_the_close_not_the_data(
    api: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    address = await create_proxy(api, await upstreams.start(sender(b"bye", then_close=True)))
    await add_toxic(api, type="slow_close", attributes={"delay": 300})
    async with connect(address) as (reader, _):
        began = time.perf_counter()
        assert await reader.read(10) == b"bye"
        data_at = time.perf_counter() - began
        assert await read_all(reader) == b""
        closed_at = time.perf_counter() - began
    assert data_at < 0.1
    assert 0.28 <= closed_at <= 1.0


# ---------------------------------------------------------------- proxy state


async def test_disabling_drops_connections_and_refuses_new_ones(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    address = await create_proxy(api, echo_upstream)
    async with connect(address) as (reader, writer):
        await round_trip((reader, writer))
        await api.patch("/proxies/p", json={"enabled": False})
        async with asyncio.timeout(5):
            with contextlib.suppress(ConnectionResetError):
                assert await read_all(reader) == b""
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(*address)
    answer = await api.patch("/proxies/p", json={"enabled": True})
    assert answer.json()["listen"] == f"{address[0]}:{address[1]}"
    async with connect(address) as conn:
        assert await round_trip(conn) < 0.1


async def test_changing_upstream_restarts_on_the_same_port(
    api: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    address = await create_proxy(api, await upstreams.start(sender(b"one")))
    async with connect(address) as (reader, _):
        assert await reader.read(10) == b"one"
        await api.patch("/proxies/p", json={"upstream": await upstreams.start(sender(b"two"))})
        async with asyncio.timeout(5):
            with contextlib.suppress(ConnectionResetError):
                assert await read_all(reader) == b""
    async with connect(address) as (reader, _):
        assert await reader.read(10) == b"two"


async def test_unreachable_upstream_closes_the_client(api: httpx.AsyncClient) -> None:
    address = await create_proxy(api, "127.0.0.1:1")
    async with connect(address) as (reader, _):
        async with asyncio.timeout(5):
            with contextlib.suppress(ConnectionResetError):
                assert await read_all(reader) == b""


async def test_big_transfers_pass_unchanged(api: httpx.AsyncClient, echo_upstream: str) -> None:
    address = await create_proxy(api, echo_upstream)
    payload = bytes(range(256)) * 8192  # 2 MiB
    async with connect(address) as conn:
        assert await round_trip(conn, payload) < 5
