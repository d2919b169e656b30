"""What one driver's entry in the contract suite provides: a world, a driver, requests.

A ``World`` is one driver together with the real backend it acts on, set up
for one test: it builds and starts the driver as a run does, photographs the
backend (``snapshot``: every id, pid and resourceVersion, so that any write
shows), says which part of a snapshot a revert must bring back when a fault
legitimately replaces things (``shape``: a restarted container has a new pid,
a rescaled Deployment new pods), builds the request of each ``FaultCase``,
makes a fault's resource disappear (``vanish``), and tells a fresh process how
to build the same driver (``fresh_config``, read by ``fresh_revert.py``).

Adding a driver to the suite is adding one ``World`` subclass to ``WORLDS`` in
``conftest.py``.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import pytest

from aftershock.model.base import Spec
from aftershock.model.faults import fault_type
from aftershock.model.targets import TargetSpec
from aftershock.ports import FaultDriver, FaultRequest, Handle

__all__ = ["ClosableDriver", "FaultCase", "Snapshot", "World", "until"]

Snapshot = Any
"""Plain, comparable data (dicts, lists, strings, numbers) describing the backend."""


class ClosableDriver(FaultDriver, Protocol):
    """A fault driver that can also be closed without having been started (every one can)."""

    async def aclose(self) -> None:
        """Close what the driver opened."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultCase:
    """One fault a world exercises, and what its revert promises."""

    fault: str
    params: Spec
    variant: str = ""
    """Tells apart two cases of one fault (``creates-proxy``: the target's proxy is missing)."""
    identical_after_revert: bool = True
    """Revert brings back the exact snapshot; False: only its ``shape`` (new pids, new pods)."""
    fresh_revert_restores: bool = True
    """A revert from the journal in a fresh process brings the world back by itself.

    False where the driver documents that it cannot (a killed process that only
    its supervisor can start again): that revert must still succeed.
    """

    @property
    def id(self) -> str:
        """The case's name in test ids."""
        return f"{self.fault}-{self.variant}" if self.variant else self.fault


class World(ABC):
    """One driver and its real backend, for one test."""

    name: ClassVar[str]
    """The driver's id in the parametrization."""
    faults: ClassVar[tuple[FaultCase, ...]]
    marks: ClassVar[tuple[pytest.MarkDecorator, ...]] = ()
    restore_timeout: ClassVar[float] = 0.0
    """Seconds the backend may take, after ``revert`` returns, to show the restored shape.

    Zero: the revert itself must have restored it (Toxiproxy, Docker, processes).
    Kubernetes controllers replace pods after the revert has set the replicas back.
    """
    driver: FaultDriver
    started: bool = True
    """Whether ``setup`` starts the driver; a dry run never starts drivers."""

    @classmethod
    @abstractmethod
    def build(cls, request: pytest.FixtureRequest) -> World:
        """The world for one test, taking the fixtures its backend needs from ``request``."""

    @abstractmethod
    async def setup(self, stack: AsyncExitStack) -> None:
        """Make the backend's objects and ``launch`` the driver."""

    async def launch(self, driver: ClosableDriver, stack: AsyncExitStack) -> None:
        """Start ``driver`` on ``stack`` as a run does; unless not ``started``: then only
        close it with the stack, as a dry run leaves it (built, never started)."""
        if self.started:
            await driver.start(stack)
        else:
            stack.push_async_callback(driver.aclose)
        self.driver = driver

    @abstractmethod
    async def snapshot(self) -> Snapshot:
        """Everything of the backend a fault could change, identities and versions included."""

    def shape(self, snapshot: Snapshot) -> Snapshot:
        """What a revert must bring back when ``identical_after_revert`` is False."""
        return snapshot

    @abstractmethod
    def target(self, case: FaultCase) -> TargetSpec:
        """The target a case acts on."""

    @abstractmethod
    async def vanish(self, handle: Handle) -> None:
        """Make the resources of ``handle`` disappear, as someone else might."""

    @abstractmethod
    def fresh_config(self) -> Mapping[str, Any]:
        """What ``fresh_revert.py`` needs to build this driver in another process."""

    def fresh_env(self) -> Mapping[str, str]:
        """Environment the fresh process needs beyond this one's (``KUBECONFIG``, ...)."""
        return {}

    async def quiet(self) -> None:  # noqa: B027 - most backends are at rest at once
        """Wait until the backend has stopped changing by itself (controllers at rest)."""

    def request(self, case: FaultCase, *, step: str = "contract") -> FaultRequest:
        """The request of ``case``, as the runner builds it from a method step."""
        return FaultRequest(
            run_id="20261204T000000Z-c0ffee",
            step=step,
            fault=fault_type(case.fault),
            target_name="victim",
            target=self.target(case),
            params=case.params,
            seed=11,
        )


async def until(
    probe: Callable[[], Awaitable[Snapshot]],
    accept: Callable[[Snapshot], bool],
    *,
    within: float,
    interval: float = 0.05,
) -> Snapshot:
    """Poll ``probe`` until ``accept`` holds or ``within`` seconds pass; return the last value.

    With ``within`` 0 it looks exactly once: the caller asserts on what it got.
    """
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if accept(value) or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(interval)
