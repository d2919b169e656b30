"""The driver contract suite's parametrization: every driver, every fault case it lists.

``WORLDS`` is the list of drivers under contract; each ``World`` subclass lists
its ``FaultCase``s. A test that asks for ``world`` and ``case`` runs once per
(driver, fault) pair, with the driver's marks (``docker``, ``kube``): without
that backend the case is skipped with the reason, or fails when the backend
is required (``AFTERSHOCK_REQUIRE_DOCKER=1`` / ``AFTERSHOCK_REQUIRE_KUBE=1``,
through the fixtures of ``tests.support``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack

import httpx
import pytest

from tests.contract.drivers.docker_world import DockerWorld
from tests.contract.drivers.kubernetes_world import KubernetesWorld
from tests.contract.drivers.process_world import ProcessWorld
from tests.contract.drivers.toxiproxy_world import EmbeddedToxiproxyWorld, ExternalToxiproxyWorld
from tests.contract.drivers.world import FaultCase, World
from tests.support.docker import free_port, wait_for

WORLDS: tuple[type[World], ...] = (
    EmbeddedToxiproxyWorld,
    ExternalToxiproxyWorld,
    DockerWorld,
    ProcessWorld,
    KubernetesWorld,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``world_type`` and ``case`` over every driver's fault cases."""
    if "case" not in metafunc.fixturenames:
        return
    metafunc.parametrize(
        ("world_type", "case"),
        [
            pytest.param(world, case, id=f"{world.name}:{case.id}", marks=world.marks)
            for world in WORLDS
            for case in world.faults
        ],
    )


_SERVE = """\
import asyncio, signal, sys
from aftershock.proxy.server import serve

async def main() -> None:
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await serve("127.0.0.1", int(sys.argv[1]), stop)

asyncio.run(main())
"""
"""What ``aftershock proxy --listen 127.0.0.1:PORT`` runs, without the CLI around it."""


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/version", timeout=0.5, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def external_toxiproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API URL of a Toxiproxy server in a process of its own, reached only over HTTP.

    It is the embedded server's ``serve`` (what ``aftershock proxy`` runs) in a
    separate Python process: no ``toxiproxy-server`` binary is available here.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("external-toxiproxy") / "server.log"
    env = {**os.environ, "AFTERSHOCK_HOME": str(log.parent / "home")}
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-c", _SERVE, str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        if not wait_for(lambda: _answers(url), timeout=20):
            pytest.fail(
                f"the external Toxiproxy did not answer on {url}: {log.read_text()[-2000:]}"
            )
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def unstarted_world(request: pytest.FixtureRequest, world_type: type[World]) -> World:
    """The world of this case, with the fixtures its backend needs."""
    return world_type.build(request)


@pytest.fixture
async def world(unstarted_world: World, case: FaultCase) -> AsyncIterator[World]:
    """The world set up and its driver started; torn down (driver closed) after the test."""
    async with AsyncExitStack() as stack:
        await unstarted_world.setup(stack)
        yield unstarted_world


@pytest.fixture
async def dry_world(unstarted_world: World, case: FaultCase) -> AsyncIterator[World]:
    """The world set up with its driver built but never started, as a dry run leaves it."""
    unstarted_world.started = False
    async with AsyncExitStack() as stack:
        await unstarted_world.setup(stack)
        yield unstarted_world
