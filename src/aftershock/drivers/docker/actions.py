"""The Docker healing actions: each catalog entry bound to what it does and to which containers.

Only containers in a state the action applies to are acted on (``docker.start``
leaves running ones alone), so an action may find nothing to do. ``start`` and
``restart`` wait until the container runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import docker

from aftershock.drivers.bindings import Bindings, action_handlers
from aftershock.drivers.docker.containers import grace_seconds, wait_running
from aftershock.model import actions as a
from aftershock.model.base import Spec
from aftershock.model.params import GraceParams, NoParams
from aftershock.model.targets import TargetKind

__all__ = ["ACTIONS", "ContainerAction"]

P = TypeVar("P", bound=Spec)
Perform = Callable[[docker.APIClient, str, P], None]
"""``(api, container id, params)``: act on one container."""


@dataclass(frozen=True, slots=True)
class ContainerAction(Generic[P]):
    """A healing action applied container by container."""

    action: a.ActionType[P]
    states: frozenset[str]
    """The Docker states it applies to; containers in others are left alone."""
    perform: Perform[P]

    def bound(self, params: Spec) -> Callable[[docker.APIClient, str], None]:
        """The action with ``params`` parsed (before any I/O): ``(api, container id)``."""
        typed = self.action.parse(params)
        return lambda api, cid: self.perform(api, cid, typed)


def _start(api: docker.APIClient, cid: str, params: NoParams) -> None:
    api.start(cid)
    wait_running(api, cid)


def _restart(api: docker.APIClient, cid: str, params: GraceParams) -> None:
    api.restart(cid, timeout=grace_seconds(params.grace))
    wait_running(api, cid)


def _unpause(api: docker.APIClient, cid: str, params: NoParams) -> None:
    api.unpause(cid)


ACTIONS: Final[Bindings[a.ActionType[Any], ContainerAction[Any]]] = action_handlers(
    TargetKind.DOCKER,
    ContainerAction(a.DOCKER_START, frozenset({"created", "exited"}), _start),
    ContainerAction(
        a.DOCKER_RESTART,
        frozenset({"created", "running", "paused", "exited", "restarting"}),
        _restart,
    ),
    ContainerAction(a.DOCKER_UNPAUSE, frozenset({"paused"}), _unpause),
)
"""Every Docker healing action of the catalog, bound to what it does."""
