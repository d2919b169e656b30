"""The Docker faults: each catalog entry bound to what it does to one container and how it reverts.

``docker.kill`` signals through the API, which Docker records as a manual
stop, so restart policies stay quiet; ``docker.crash`` signals the main
process from the host, so they fire. ``docker.stop`` and ``docker.restart``
take a grace period; ``docker.pause`` freezes the container and is reverted
by unpausing it. Every other fault is reverted by starting (or unpausing) the
container again and waiting until it runs. What a fault's parameters set (the
signal, the grace) goes into the undo record at prepare, so a revert from the
journal needs nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import docker

from aftershock.drivers.bindings import Bindings, fault_handlers
from aftershock.drivers.docker.containers import (
    DEFAULT_GRACE,
    crash,
    ensure_running,
    grace_seconds,
    unpause_if_paused,
)
from aftershock.drivers.docker.undo import DockerUndo
from aftershock.model import faults as f
from aftershock.model.base import Spec
from aftershock.model.params import GraceParams, NoParams, SignalParams
from aftershock.model.targets import TargetKind

__all__ = ["FAULTS", "FAULT_STATES", "ContainerFault", "Settings"]

P = TypeVar("P", bound=Spec)
FAULT_STATES: Final = frozenset({"running"})
"""A fault needs a running (not paused) container to break."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """What of a fault's parameters the undo record keeps."""

    signal: str | None = None
    grace: int | None = None


Apply = Callable[[docker.APIClient, str, DockerUndo, str], None]
"""``(api, container id, undo record, target name)``: break one container."""
Restore = Callable[[docker.APIClient, str], None]
"""``(api, container id)``: undo the fault on one container (gone: nothing to do)."""


@dataclass(frozen=True, slots=True)
class ContainerFault(Generic[P]):
    """A fault applied container by container."""

    fault: f.FaultType[P]
    settings: Callable[[P], Settings]
    apply: Apply
    restore: Restore

    def settings_for(self, params: Spec) -> Settings:
        """What the undo record keeps of ``params``."""
        return self.settings(self.fault.parse(params))


def _signal(params: SignalParams) -> Settings:
    return Settings(signal=params.signal)


def _grace(params: GraceParams) -> Settings:
    return Settings(grace=grace_seconds(params.grace))


def _nothing(params: NoParams) -> Settings:
    return Settings()


def _kill(api: docker.APIClient, cid: str, undo: DockerUndo, target: str) -> None:
    # Through the API, Docker records a manual stop: restart policies stay quiet.
    api.kill(cid, signal=undo.signal or "SIGKILL")


def _crash(api: docker.APIClient, cid: str, undo: DockerUndo, target: str) -> None:
    crash(api, cid, undo.signal or "SIGKILL", target)


def _stop(api: docker.APIClient, cid: str, undo: DockerUndo, target: str) -> None:
    api.stop(cid, timeout=DEFAULT_GRACE if undo.grace is None else undo.grace)


def _pause(api: docker.APIClient, cid: str, undo: DockerUndo, target: str) -> None:
    api.pause(cid)


def _restart(api: docker.APIClient, cid: str, undo: DockerUndo, target: str) -> None:
    api.restart(cid, timeout=DEFAULT_GRACE if undo.grace is None else undo.grace)


FAULTS: Final[Bindings[f.FaultType[Any], ContainerFault[Any]]] = fault_handlers(
    TargetKind.DOCKER,
    ContainerFault(f.DOCKER_KILL, _signal, _kill, ensure_running),
    ContainerFault(f.DOCKER_CRASH, _signal, _crash, ensure_running),
    ContainerFault(f.DOCKER_STOP, _grace, _stop, ensure_running),
    ContainerFault(f.DOCKER_PAUSE, _nothing, _pause, unpause_if_paused),
    ContainerFault(f.DOCKER_RESTART, _grace, _restart, ensure_running),
)
"""Every Docker fault of the catalog, bound to what it does."""
