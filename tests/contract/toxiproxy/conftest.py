"""Fixtures for the Toxiproxy contract suite: the embedded server, a client, an upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aftershock.drivers.toxiproxy.client import ToxiproxyClient
from aftershock.proxy.server import EmbeddedToxiproxy
from tests.contract.toxiproxy.peers import Recorder, Upstream


@pytest.fixture
async def server() -> AsyncIterator[EmbeddedToxiproxy]:
    """A fresh embedded Toxiproxy-compatible server per test."""
    async with EmbeddedToxiproxy(host="127.0.0.1", port=0) as srv:
        yield srv


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def client(server: EmbeddedToxiproxy, recorder: Recorder) -> AsyncIterator[ToxiproxyClient]:
    async with ToxiproxyClient(server.api_url, transport=recorder) as api:
        yield api


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    service = Upstream()
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
