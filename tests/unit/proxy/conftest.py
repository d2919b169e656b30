"""Fixtures for the embedded Toxiproxy: a running server, an API client, local upstreams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from aftershock.proxy import EmbeddedToxiproxy

from .helpers import Upstreams, echo


@pytest.fixture
async def toxiproxy() -> AsyncIterator[EmbeddedToxiproxy]:
    """A started embedded server on an ephemeral loopback port."""
    async with EmbeddedToxiproxy() as server:
        yield server


@pytest.fixture
async def api(toxiproxy: EmbeddedToxiproxy) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the server's API."""
    async with httpx.AsyncClient(base_url=toxiproxy.api_url, timeout=10) as client:
        yield client


@pytest.fixture
async def upstreams() -> AsyncIterator[Upstreams]:
    """A factory of local upstream servers, all closed after the test."""
    made = Upstreams([], set())
    yield made
    for server in made.servers:
        server.close()
    for task in list(made.tasks):
        task.cancel()
    await asyncio.gather(*made.tasks, return_exceptions=True)
    for server in made.servers:
        await server.wait_closed()


@pytest.fixture
async def echo_upstream(upstreams: Upstreams) -> str:
    """Address of a local echo server."""
    return await upstreams.start(echo)
