"""ToxiproxyDriver against the embedded server, with real traffic through the proxy.

Each fault is injected in front of a real asyncio TCP service on 127.0.0.1, its
effect observed on the wire, reverted, the service observed healthy again, and
reverted a second time to prove idempotence.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from aftershock.drivers.toxiproxy import ToxiproxyDriver, toxic_attributes, toxic_name
from aftershock.drivers.toxiproxy.client import ToxiproxyClient
from aftershock.errors import (
    DriverUnavailable,
    FaultInjectionFailed,
    TargetNotFound,
    TargetRefused,
)
from aftershock.model.actions import RemoveToxicParams
from aftershock.model.faults import (
    TOXIPROXY_BANDWIDTH,
    TOXIPROXY_LATENCY,
    TOXIPROXY_SLICER,
    fault_type,
)
from aftershock.model.params import NoParams
from aftershock.model.targets import TargetSpec, ToxiproxyTarget
from aftershock.ports import ActionDriver, ActionRequest, FaultDriver, FaultRequest, Handle
from aftershock.proxy.server import EmbeddedToxiproxy
from aftershock.settings import Allowlist
from tests.contract.toxiproxy.peers import BLOB, Upstream, closed_port, connect

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def driver() -> AsyncIterator[ToxiproxyDriver]:
    drv = ToxiproxyDriver(Allowlist())
    async with AsyncExitStack() as stack:
        await drv.start(stack)
        yield drv


@pytest.fixture
async def proxy(client: ToxiproxyClient, upstream: Upstream) -> str:
    """A proxy named ``svc`` in front of the upstream; returns its listen address."""
    return (await client.create_proxy("svc", upstream.address)).listen


def target(api: str, **extra: Any) -> TargetSpec:
    return TargetSpec(toxiproxy=ToxiproxyTarget(api=api, proxy=extra.pop("proxy", "svc"), **extra))


def request(api: str, fault: str, params: dict[str, Any] | None = None, **kw: Any) -> FaultRequest:
    entry = fault_type(fault)
    return FaultRequest(
        run_id=kw.pop("run_id", "r1"),
        step=kw.pop("step", "step"),
        fault=entry,
        target_name="db",
        target=kw.pop("target", None) or target(api),
        params=entry.params.model_validate(params or {}),
    )


async def apply(driver: ToxiproxyDriver, req: FaultRequest) -> Handle:
    return await driver.inject(await driver.prepare(req))


# ---------------------------------------------------------------- observations


async def rtt(address: str, samples: int = 3) -> float:
    """Median round trip of one byte through an echo connection, in seconds."""
    async with connect(address) as (reader, writer):
        writer.write(b"echo\n")
        times = []
        for _ in range(samples):
            start = time.perf_counter()
            writer.write(b"x")
            await writer.drain()
            assert await asyncio.wait_for(reader.readexactly(1), 10) == b"x"
            times.append(time.perf_counter() - start)
    return statistics.median(times)


async def fetch(address: str, size: int) -> tuple[bytes, float]:
    """Ask for ``size`` bytes, read to EOF; the bytes and the seconds it took."""
    start = time.perf_counter()
    async with connect(address) as (reader, writer):
        writer.write(f"blob {size}\n".encode())
        data = await asyncio.wait_for(reader.read(), 20)
    return data, time.perf_counter() - start


async def healthy(address: str) -> None:
    data, elapsed = await fetch(address, 4096)
    assert data == BLOB[:4096]
    assert elapsed < 0.5
    assert await rtt(address, 1) < 0.1


async def roundtrip(
    driver: ToxiproxyDriver,
    req: FaultRequest,
    address: str,
    observe: Callable[[], Awaitable[None]],
) -> Handle:
    await healthy(address)
    handle = await apply(driver, req)
    await observe()
    await driver.revert(handle)
    await healthy(address)
    await driver.revert(handle)  # idempotent
    return handle


# ---------------------------------------------------------------- the eight faults


def test_the_driver_fulfils_both_ports() -> None:
    drv = ToxiproxyDriver(Allowlist())
    assert isinstance(drv, FaultDriver)
    assert isinstance(drv, ActionDriver)
    assert sorted(f.name for f in drv.faults) == sorted(
        [
            "toxiproxy.latency",
            "toxiproxy.bandwidth",
            "toxiproxy.slow_close",
            "toxiproxy.timeout",
            "toxiproxy.reset_peer",
            "toxiproxy.slicer",
            "toxiproxy.limit_data",
            "toxiproxy.down",
        ]
    )


async def test_latency(
    driver: ToxiproxyDriver, server: EmbeddedToxiproxy, client: ToxiproxyClient, proxy: str
) -> None:
    baseline = await rtt(proxy, 5)
    measured: list[float] = []

    async def observe() -> None:
        measured.append(await rtt(proxy, 5) - baseline)
        assert 0.180 <= measured[0] <= 0.220, f"added latency {measured[0] * 1000:.1f} ms"
        [toxic] = await client.toxics("svc")
        assert toxic.attributes == {"latency": 200, "jitter": 0}
        assert toxic.stream == "downstream"

    req = request(server.api_url, "toxiproxy.latency", {"latency": "200ms"})
    handle = await roundtrip(driver, req, proxy, observe)
    print(f"latency 200 ms measured as {measured[0] * 1000:.1f} ms (baseline {baseline * 1e3:.2f})")
    assert handle.resources == (f"{server.api_url}/proxies/svc/toxics/aftershock-r1-step",)
    assert handle.undo["toxic"] == "aftershock-r1-step"
    assert handle.undo["created_proxy"] is False
    assert await client.toxics("svc") == []


async def test_latency_upstream_with_toxicity(
    driver: ToxiproxyDriver, server: EmbeddedToxiproxy, client: ToxiproxyClient, proxy: str
) -> None:
    params = {"latency": "100ms", "jitter": "10ms", "stream": "upstream", "toxicity": 0.5}
    handle = await apply(driver, request(server.api_url, "toxiproxy.latency", params))
    [toxic] = await client.toxics("svc")
    assert (toxic.stream, toxic.toxicity) == ("upstream", 0.5)
    assert toxic.attributes == {"latency": 100, "jitter": 10}
    await driver.revert(handle)


async def test_bandwidth(driver: ToxiproxyDriver, server: EmbeddedToxiproxy, proxy: str) -> None:
    async def observe() -> None:
        data, elapsed = await fetch(proxy, 60_000)  # 60 KB at 50 KB/s
        assert data == BLOB[:60_000]
        assert 0.6 < elapsed < 5, elapsed

    await roundtrip(
        driver, request(server.api_url, "toxiproxy.bandwidth", {"rate": 50}), proxy, observe
    )


async def test_slow_close(driver: ToxiproxyDriver, server: EmbeddedToxiproxy, proxy: str) -> None:
    async def observe() -> None:
        data, elapsed = await fetch(proxy, 100)
        assert data == BLOB[:100]
        assert 0.45 <= elapsed < 3, elapsed

    req = request(server.api_url, "toxiproxy.slow_close", {"delay": "500ms"})
    await roundtrip(driver, req, proxy, observe)


async def test_timeout_stops_all_data(
    driver: ToxiproxyDriver, server: EmbeddedToxiproxy, proxy: str
) -> None:
    async def observe() -> None:
        async with connect(proxy) as (reader, writer):
            writer.write(b"echo\nhello")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.read(1), 0.5)

    await roundtrip(driver, request(server.api_url, "toxiproxy.timeout"), proxy, observe)


async def test_timeout_closes_after_its_timeout(
    driver: ToxiproxyDriver, server: EmbeddedToxiproxy, proxy: str
) -> None:
    async def observe() -> None:
        start = time.perf_counter()
        async with connect(proxy) as (reader, writer):
            writer.write(b"echo\nhello")
            try:
                data = await asyncio.wait_for(reader.read(), 5)
            except ConnectionResetError:
                data = b""
        assert data == b""
        assert 0.25 <= time.perf_counter() - start < 3

    req = request(server.api_url, "toxiproxy.timeout", {"timeout": "300ms"})
    await roundtrip(driver, req, proxy, observe)


async def test_reset_peer(driver: ToxiproxyDriver, server: EmbeddedToxiproxy, proxy: str) -> None:
    async def talk() -> bytes:
        async with connect(proxy) as (reader, writer):
            writer.write(b"echo\nhello")
            await writer.drain()
            return await asyncio.wait_for(reader.read(), 5)

    async def observe() -> None:
        with pytest.raises(ConnectionResetError):
            await talk()

    await roundtrip(driver, request(server.api_url, "toxiproxy.reset_peer"), proxy, observe)


async def test_slicer_delivers_intact_data(
    driver: ToxiproxyDriver, server: EmbeddedToxiproxy, client: ToxiproxyClient, proxy: str
) -> None:
    async def observe() -> None:
        [toxic] = await client.toxics("svc")
        assert toxic.attributes == {"average_size": 10, "size_variation": 5, "delay": 2000}
        data, elapsed = await fetch(proxy, 2000)  # ~200 slices, 2 ms apart
        assert data == BLOB[:2000]
        assert 0.2 < elapsed < 10, elapsed

    params = {"averageSize": 10, "sizeVariation": 5, "delay": "2ms"}
    await roundtrip(driver, request(server.api_url, "toxiproxy.slicer", params), proxy, observe)


async def test_limit_data_cuts_the_bytes(
    driver: ToxiproxyDriver, server: EmbeddedToxiproxy, proxy: str
) -> None:
    async def observe() -> None:
        data, _ = await fetch(proxy, 10_000)
        assert data == BLOB[:1000]

    req = request(server.api_url, "toxiproxy.limit_data", {"bytes": 1000})
    await roundtrip(driver, req, proxy, observe)


async def test_down_refuses_connections(
    driver: ToxiproxyDriver, server: EmbeddedToxiproxy, client: ToxiproxyClient, proxy: str
) -> None:
    async def observe() -> None:
        with pytest.raises(ConnectionRefusedError):
            async with connect(proxy):
                pass
        assert (await client.get_proxy("svc")).enabled is False

    handle = await roundtrip(driver, request(server.api_url, "toxiproxy.down"), proxy, observe)
    assert handle.undo["was_enabled"] is True
    assert handle.resources == (f"{server.api_url}/proxies/svc",)
    assert (await client.get_proxy("svc")).enabled is True


async def test_down_keeps_a_disabled_proxy_disabled(
    driver: ToxiproxyDriver, server: EmbeddedToxiproxy, client: ToxiproxyClient, proxy: str
) -> None:
    await client.update_proxy("svc", enabled=False)
    handle = await apply(driver, request(server.api_url, "toxiproxy.down"))
    assert handle.undo["was_enabled"] is False
    await driver.revert(handle)
    assert (await client.get_proxy("svc")).enabled is False


# ---------------------------------------------------------------- proxies, names, leftovers


async def test_proxy_created_from_listen_upstream_is_removed_on_revert(
    driver: ToxiproxyDriver, server: EmbeddedToxiproxy, client: ToxiproxyClient, upstream: Upstream
) -> None:
    spec = target(server.api_url, proxy="made", listen="127.0.0.1:0", upstream=upstream.address)
    req = request(server.api_url, "toxiproxy.latency", {"latency": "50ms"}, target=spec)
    handle = await driver.prepare(req)
    assert await client.proxies() == {}  # prepare changes nothing
    handle = await driver.inject(handle)
    assert handle.undo["created_proxy"] is True
    made = await client.get_proxy("made")
    assert [t.name for t in made.toxics] == ["aftershock-r1-step"]
    assert 0.04 < await rtt(made.listen, 1) < 0.5
    await driver.revert(handle)
    assert await client.proxies() == {}
    await driver.revert(handle)


async def test_existing_proxy_is_not_ours_to_delete(
    driver: ToxiproxyDriver,
    server: EmbeddedToxiproxy,
    client: ToxiproxyClient,
    proxy: str,
    upstream: Upstream,
) -> None:
    spec = target(server.api_url, listen="127.0.0.1:0", upstream=upstream.address)
    handle = await apply(driver, request(server.api_url, "toxiproxy.down", target=spec))
    assert handle.undo["created_proxy"] is False
    await driver.revert(handle)
    assert (await client.get_proxy("svc")).enabled is True


async def test_missing_proxy_without_upstream_is_target_not_found(
    driver: ToxiproxyDriver, server: EmbeddedToxiproxy
) -> None:
    with pytest.raises(TargetNotFound, match="proxy 'svc' not found"):
        await driver.prepare(request(server.api_url, "toxiproxy.timeout"))


async def test_refused_fault_is_fault_injection_failed(
    driver: ToxiproxyDriver, server: EmbeddedToxiproxy, client: ToxiproxyClient, proxy: str
) -> None:
    handle = await driver.prepare(request(server.api_url, "toxiproxy.timeout"))
    await client.delete_proxy("svc")  # gone between prepare and inject
    with pytest.raises(FaultInjectionFailed, match="404: proxy not found") as info:
        await driver.inject(handle)
    assert info.value.__cause__ is not None
    await driver.revert(handle)  # nothing there: still fine


async def test_inject_twice_is_harmless(
    driver: ToxiproxyDriver, server: EmbeddedToxiproxy, client: ToxiproxyClient, proxy: str
) -> None:
    handle = await driver.prepare(request(server.api_url, "toxiproxy.latency", {"latency": "5ms"}))
    await driver.inject(handle)
    await driver.inject(handle)
    assert [t.name for t in await client.toxics("svc")] == ["aftershock-r1-step"]
    await driver.revert(handle)


async def test_leftovers_by_run_id(
    driver: ToxiproxyDriver,
    server: EmbeddedToxiproxy,
    client: ToxiproxyClient,
    proxy: str,
    upstream: Upstream,
) -> None:
    api = server.api_url
    await client.create_proxy("other", upstream.address)
    await client.create_toxic("svc", "latency", name="someone-elses")
    await apply(
        driver, request(api, "toxiproxy.latency", {"latency": "1ms"}, run_id="r1", step="a")
    )
    await apply(
        driver,
        request(api, "toxiproxy.timeout", run_id="r1", step="b", target=target(api, proxy="other")),
    )
    await apply(
        driver, request(api, "toxiproxy.slow_close", {"delay": "1ms"}, run_id="r2", step="a")
    )

    assert await driver.leftovers(api) == [
        ("other", "aftershock-r1-b"),
        ("svc", "aftershock-r1-a"),
        ("svc", "aftershock-r2-a"),
    ]
    assert await driver.leftovers(api, "r1") == [
        ("other", "aftershock-r1-b"),
        ("svc", "aftershock-r1-a"),
    ]
    assert await driver.leftovers(api, "r3") == []

    assert await driver.remove_leftovers(api, "r1") == [
        ("other", "aftershock-r1-b"),
        ("svc", "aftershock-r1-a"),
    ]
    assert await driver.leftovers(api) == [("svc", "aftershock-r2-a")]
    assert [t.name for t in await client.toxics("svc")] == ["someone-elses", "aftershock-r2-a"]


def test_toxic_names_and_units() -> None:
    assert toxic_name("20240101-abc", "slow-db") == "aftershock-20240101-abc-slow-db"
    slicer = TOXIPROXY_SLICER.params.model_validate(
        {"averageSize": 64, "sizeVariation": 8, "delay": "1.5ms"}
    )
    assert toxic_attributes(TOXIPROXY_SLICER, slicer) == {
        "average_size": 64,
        "size_variation": 8,
        "delay": 1500,  # microseconds
    }
    latency = TOXIPROXY_LATENCY.params.model_validate({"latency": "1.5s", "jitter": "20ms"})
    assert toxic_attributes(TOXIPROXY_LATENCY, latency) == {"latency": 1500, "jitter": 20}
    with pytest.raises(FaultInjectionFailed):
        toxic_attributes(TOXIPROXY_BANDWIDTH, latency)


# ---------------------------------------------------------------- embedded


async def test_embedded_api_starts_a_server_and_records_its_url(upstream: Upstream) -> None:
    drv = ToxiproxyDriver(Allowlist(toxiproxy=("http://127.0.0.1:8474",)))
    spec = target("embedded", proxy="emb", listen="127.0.0.1:0", upstream=upstream.address)
    async with AsyncExitStack() as stack:
        await drv.start(stack)
        handle = await apply(
            drv, request("embedded", "toxiproxy.latency", {"latency": "100ms"}, target=spec)
        )
        api = handle.undo["api"]
        assert api.startswith("http://127.0.0.1:")
        assert handle.undo["embedded"] is True
        assert handle.resources == (f"{api}/proxies/emb/toxics/aftershock-r1-step",)
        async with ToxiproxyClient(api) as api_client:
            made = await api_client.get_proxy("emb")
            assert 0.09 < await rtt(made.listen, 1) < 0.5
            await drv.revert(handle)
            assert await api_client.proxies() == {}
        handle = await apply(drv, request("embedded", "toxiproxy.timeout", target=spec))
    # The server stopped with the stack: its faults are gone, and a later
    # revert (say, `aftershock recover` in another process) succeeds.
    other = ToxiproxyDriver(Allowlist())
    async with AsyncExitStack() as stack:
        await other.start(stack)
        await other.revert(handle)


# ---------------------------------------------------------------- failures


async def test_unreachable_api_is_driver_unavailable(
    server: EmbeddedToxiproxy, client: ToxiproxyClient, proxy: str
) -> None:
    api = f"http://127.0.0.1:{closed_port()}"
    drv = ToxiproxyDriver(Allowlist())
    async with AsyncExitStack() as stack:
        await drv.start(stack)
        with pytest.raises(DriverUnavailable) as info:
            await drv.prepare(request(api, "toxiproxy.latency", {"latency": "1s"}))
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith("db: ")
        assert api in message
        assert info.value.target == "db"
        assert isinstance(info.value.__cause__, DriverUnavailable)

        # A handle journaled against a server that has gone away since.
        live = await drv.prepare(request(server.api_url, "toxiproxy.timeout"))
        gone = live.with_undo(api=api)
        with pytest.raises(DriverUnavailable, match=r"^db: .*unreachable"):
            await drv.inject(gone)
        with pytest.raises(DriverUnavailable, match=r"^db: .*unreachable"):
            await drv.revert(gone)
    assert await client.toxics("svc") == []  # nothing left applied
    assert (await client.get_proxy("svc")).enabled is True


async def test_retries_only_unreachable_and_gives_up_after_three() -> None:
    attempts: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        attempts.append(req.url.path)
        if len(attempts) <= 2:
            raise httpx.ConnectError("refused", request=req)
        if req.url.path == "/proxies/svc":
            return httpx.Response(
                200,
                json={
                    "name": "svc",
                    "listen": "a:1",
                    "upstream": "b:2",
                    "enabled": True,
                    "toxics": [],
                },
            )
        return httpx.Response(404, json={"error": "proxy not found", "status": 404})

    api = "http://127.0.0.1:8474"
    drv = ToxiproxyDriver(Allowlist(), transport=httpx.MockTransport(handler))
    async with AsyncExitStack() as stack:
        await drv.start(stack)
        handle = await drv.prepare(request(api, "toxiproxy.timeout"))
        assert attempts == ["/proxies/svc"] * 3  # two refused, then answered
        attempts.clear()
        attempts.extend(["x", "x"])  # no more transport failures
        with pytest.raises(FaultInjectionFailed):
            await drv.inject(handle)
        assert attempts == ["x", "x", "/proxies/svc/toxics"]  # a 404 is not retried

    always: list[int] = []

    def down(req: httpx.Request) -> httpx.Response:
        always.append(1)
        raise httpx.ConnectError("refused", request=req)

    drv = ToxiproxyDriver(Allowlist(), transport=httpx.MockTransport(down))
    async with AsyncExitStack() as stack:
        await drv.start(stack)
        with pytest.raises(DriverUnavailable):
            await drv.prepare(request(api, "toxiproxy.timeout"))
    assert len(always) == 3


async def test_allowlist_refuses_other_servers(server: EmbeddedToxiproxy, proxy: str) -> None:
    drv = ToxiproxyDriver(Allowlist(toxiproxy=("http://127.0.0.1:1",)))
    async with AsyncExitStack() as stack:
        await drv.start(stack)
        with pytest.raises(TargetRefused, match="not in the allowlist"):
            await drv.prepare(request(server.api_url, "toxiproxy.down"))
        with pytest.raises(TargetRefused):
            await drv.act(action(server.api_url, "toxiproxy.reset"))


# ---------------------------------------------------------------- actions


def action(
    api: str, name: str, *, toxic: str | None = None, dry_run: bool = False
) -> ActionRequest:
    params = RemoveToxicParams(toxic=toxic) if name == "toxiproxy.removeToxic" else NoParams()
    return ActionRequest(
        action=name, target_name="db", target=target(api), params=params, dry_run=dry_run
    )


async def test_action_reset(
    driver: ToxiproxyDriver, server: EmbeddedToxiproxy, client: ToxiproxyClient, proxy: str
) -> None:
    await client.create_toxic("svc", "timeout")
    await client.update_proxy("svc", enabled=False)
    api = server.api_url
    assert await driver.act(action(api, "toxiproxy.reset", dry_run=True)) == [f"{api}/reset"]
    assert (await client.get_proxy("svc")).enabled is False  # dry run: untouched
    assert await driver.act(action(api, "toxiproxy.reset")) == [f"{api}/reset"]
    after = await client.get_proxy("svc")
    assert (after.enabled, after.toxics) == (True, ())
    await healthy(proxy)


async def test_action_enable(
    driver: ToxiproxyDriver, server: EmbeddedToxiproxy, client: ToxiproxyClient, proxy: str
) -> None:
    await client.update_proxy("svc", enabled=False)
    api = server.api_url
    assert await driver.act(action(api, "toxiproxy.enable", dry_run=True)) == [f"{api}/proxies/svc"]
    assert (await client.get_proxy("svc")).enabled is False
    assert await driver.act(action(api, "toxiproxy.enable")) == [f"{api}/proxies/svc"]
    assert (await client.get_proxy("svc")).enabled is True
    await healthy(proxy)


async def test_action_remove_toxic(
    driver: ToxiproxyDriver, server: EmbeddedToxiproxy, client: ToxiproxyClient, proxy: str
) -> None:
    api = server.api_url
    for name in ("a", "b", "c"):
        await client.create_toxic("svc", "latency", name=name)
    dry = await driver.act(action(api, "toxiproxy.removeToxic", dry_run=True))
    assert dry == [f"{api}/proxies/svc/toxics/*"]
    assert len(await client.toxics("svc")) == 3
    assert await driver.act(action(api, "toxiproxy.removeToxic", toxic="b")) == [
        f"{api}/proxies/svc/toxics/b"
    ]
    assert [t.name for t in await client.toxics("svc")] == ["a", "c"]
    assert await driver.act(action(api, "toxiproxy.removeToxic", toxic="b")) == []  # already gone
    assert await driver.act(action(api, "toxiproxy.removeToxic")) == [
        f"{api}/proxies/svc/toxics/a",
        f"{api}/proxies/svc/toxics/c",
    ]
    assert await client.toxics("svc") == []


async def test_action_on_missing_proxy_is_target_not_found(
    driver: ToxiproxyDriver, server: EmbeddedToxiproxy
) -> None:
    for name in ("toxiproxy.enable", "toxiproxy.removeToxic"):
        with pytest.raises(TargetNotFound, match="proxy 'svc' not found"):
            await driver.act(action(server.api_url, name))


async def test_action_on_unreachable_api() -> None:
    api = f"http://127.0.0.1:{closed_port()}"
    drv = ToxiproxyDriver(Allowlist())
    async with AsyncExitStack() as stack:
        await drv.start(stack)
        assert await drv.act(action(api, "toxiproxy.reset", dry_run=True)) == [f"{api}/reset"]
        with pytest.raises(DriverUnavailable, match=r"^db: .*unreachable"):
            await drv.act(action(api, "toxiproxy.reset"))
