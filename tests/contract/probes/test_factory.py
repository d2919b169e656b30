"""build_probe / sample_once for every kind, and a Sampler driving real probes."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from aftershock.clock import SystemClock
from aftershock.model.probes import ProbeSpec
from aftershock.ports import Probe
from aftershock.probes import (
    CommandProbeAdapter,
    HttpProbeAdapter,
    PrometheusProbeAdapter,
    TcpProbeAdapter,
    build_probe,
    sample_once,
)
from aftershock.probes.factory import HttpEngine
from aftershock.probes.fastpath import FastSession
from aftershock.sampling import Sampler
from tests.contract.probes.servers import LocalServer, Request, Response, http_server

pytestmark = pytest.mark.timeout(30)


async def answer(request: Request) -> Response:
    if request.path == "/api/v1/query":
        data = {"resultType": "scalar", "result": [0, "1"]}
        return Response.json({"status": "success", "data": data})
    return Response(200, b"ok")


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with http_server(answer) as srv:
        yield srv


def specs(server: LocalServer) -> dict[str, ProbeSpec]:
    return {
        "http": ProbeSpec.model_validate({"http": {"url": server.url + "/health"}}),
        "tcp": ProbeSpec.model_validate({"tcp": {"address": server.address}}),
        "command": ProbeSpec.model_validate({"command": {"command": [sys.executable, "-c", ""]}}),
        "prometheus": ProbeSpec.model_validate(
            {"prometheus": {"url": server.url, "query": "up", "expect": "== 1"}}
        ),
    }


async def test_build_probe_picks_the_adapter(server: LocalServer) -> None:
    kinds = {
        "http": HttpProbeAdapter,
        "tcp": TcpProbeAdapter,
        "command": CommandProbeAdapter,
        "prometheus": PrometheusProbeAdapter,
    }
    for kind, spec in specs(server).items():
        probe = build_probe(spec)
        try:
            assert type(probe) is kinds[kind]
            assert isinstance(probe, Probe)  # check and aclose: the whole port
            assert (await probe.check()).ok, kind
        finally:
            await probe.aclose()


async def test_sample_once(server: LocalServer) -> None:
    for kind, spec in specs(server).items():
        result = await sample_once(spec)
        assert result.ok, (kind, result.detail)


async def test_shared_client(server: LocalServer) -> None:
    async with httpx.AsyncClient() as client:
        probes = [
            build_probe(specs(server)["http"], client=client, engine=HttpEngine.HTTPX),
            build_probe(specs(server)["prometheus"], client=client),
        ]
        for probe in probes:
            assert (await probe.check()).ok
            await probe.aclose()
        assert not client.is_closed
    assert server.connections == 1


async def test_plain_http_probes_take_the_fast_engine(server: LocalServer) -> None:
    async with httpx.AsyncClient() as client:
        # The fast engine keeps its own connection; the shared client is left unused.
        probe = build_probe(specs(server)["http"], client=client)
        try:
            assert isinstance(probe, HttpProbeAdapter)
            assert isinstance(probe._session, FastSession)
            for _ in range(3):
                assert (await probe.check()).ok
        finally:
            await probe.aclose()
        https = ProbeSpec.model_validate({"http": {"url": "https://127.0.0.1:1/health"}})
        other = build_probe(https, client=client)
        assert not isinstance(other._session, FastSession)  # type: ignore[attr-defined]
        await other.aclose()
    assert server.connections == 1


async def test_sampler_with_a_real_probe(server: LocalServer) -> None:
    clock = SystemClock()
    spec = ProbeSpec.model_validate({"http": {"url": server.url + "/health"}, "every": "50ms"})
    probe = build_probe(spec, clock=clock)
    try:
        async with Sampler(probe, spec.every, clock=clock, name="health") as sampler:
            await clock.sleep(0.4)
    finally:
        await probe.aclose()
    results = sampler.samples()
    assert 4 <= len(results) <= 10
    assert all(r.ok for r in results)
    assert server.connections == 1
