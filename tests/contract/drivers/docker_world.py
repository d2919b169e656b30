"""The Docker driver's world: the private daemon and two busybox containers of this test.

The target is one container (``sleep``, host networking, from the imported
busybox image); a second container of the same test is never targeted and
must never change. The snapshot is every container of the test as the daemon
inspects it: id, name, the whole ``State`` (pid, start and finish times
included) and the restart count.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any, ClassVar

import docker
import docker.errors
import pytest
from docker.models.containers import Container

from aftershock.drivers.docker import DockerDriver
from aftershock.model.params import GraceParams, NoParams, SignalParams
from aftershock.model.targets import DockerTarget, TargetSpec
from aftershock.ports import Handle
from aftershock.settings import Allowlist
from tests.contract.drivers.world import FaultCase, Snapshot, World
from tests.support.docker import ContainerFactory

__all__ = ["DockerWorld"]

_RESTARTED = ("Pid", "StartedAt", "FinishedAt", "ExitCode", "Error")
"""State fields a container started again legitimately has anew."""


class DockerWorld(World):
    """Containers on the private daemon (``tests.support.docker``)."""

    name: ClassVar[str] = "docker"
    marks: ClassVar[tuple[pytest.MarkDecorator, ...]] = (pytest.mark.docker,)
    faults: ClassVar[tuple[FaultCase, ...]] = (
        FaultCase(fault="docker.pause", params=NoParams()),
        FaultCase(
            fault="docker.kill", params=SignalParams(signal="SIGKILL"), identical_after_revert=False
        ),
        FaultCase(
            fault="docker.restart",
            params=GraceParams(grace=timedelta(0)),
            identical_after_revert=False,
        ),
    )

    def __init__(self, host: str, client: docker.DockerClient, factory: ContainerFactory) -> None:
        self.host = host
        self.client = client
        self.factory = factory
        self.victim: Container | None = None

    @classmethod
    def build(cls, request: pytest.FixtureRequest) -> DockerWorld:
        return cls(
            request.getfixturevalue("docker_host"),
            request.getfixturevalue("docker_client"),
            request.getfixturevalue("container_factory"),
        )

    async def setup(self, stack: AsyncExitStack) -> None:
        self.victim = await asyncio.to_thread(self.factory, "victim")
        await asyncio.to_thread(self.factory, "bystander")
        driver = DockerDriver(Allowlist(containers=(r"^ast-",)))
        await self.launch(driver, stack)

    def _inspect(self) -> dict[str, Any]:
        found = self.client.containers.list(
            all=True, filters={"label": f"aftershock.test={self.factory.prefix}"}
        )
        seen: dict[str, Any] = {}
        for container in found:
            attrs = container.attrs
            seen[str(container.name)] = {
                "Id": attrs["Id"],
                "State": attrs["State"],
                "RestartCount": attrs["RestartCount"],
            }
        return seen

    async def snapshot(self) -> Snapshot:
        return await asyncio.to_thread(self._inspect)

    def shape(self, snapshot: Snapshot) -> Snapshot:
        return {
            name: {
                **seen,
                "State": {k: v for k, v in seen["State"].items() if k not in _RESTARTED},
            }
            for name, seen in snapshot.items()
        }

    def target(self, case: FaultCase) -> TargetSpec:
        assert self.victim is not None
        return TargetSpec(docker=DockerTarget(host=self.host, names=[str(self.victim.name)]))

    async def vanish(self, handle: Handle) -> None:
        def remove() -> None:
            for cid in handle.resources:
                self.client.containers.get(cid).remove(force=True)

        await asyncio.to_thread(remove)

    def fresh_config(self) -> Mapping[str, Any]:
        return {"kind": "docker"}
