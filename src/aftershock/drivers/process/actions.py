"""The process healing actions: each catalog entry bound to what it does to a supervised process.

``process.start`` starts a target that is not running, ``process.restart``
terminates and starts it again, ``process.resume`` sends SIGCONT to a stopped
one. Each returns the pids acted on (``pid:<n>``).
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from aftershock.drivers.bindings import Bindings, action_handlers
from aftershock.drivers.process.faults import SETTLE
from aftershock.drivers.process.proc import STOPPED, send, state_of, until
from aftershock.drivers.process.supervisor import Supervisor
from aftershock.errors import FaultInjectionFailed, TargetNotFound
from aftershock.model import actions as a
from aftershock.model.base import Spec
from aftershock.model.params import GraceParams, NoParams
from aftershock.model.targets import ProcessTarget, TargetKind

__all__ = ["ACTIONS", "ProcessAction"]

P = TypeVar("P", bound=Spec)
Perform = Callable[[Supervisor, str, ProcessTarget, P], Awaitable[list[str]]]
"""``(supervisor, target name, target, params)`` → the pids acted on."""
Bound = Callable[[Supervisor, str, ProcessTarget], Awaitable[list[str]]]


@dataclass(frozen=True, slots=True)
class ProcessAction(Generic[P]):
    """A healing action on one supervised process."""

    action: a.ActionType[P]
    perform: Perform[P]

    def bound(self, params: Spec) -> Bound:
        """The action with ``params`` parsed (before anything is touched)."""
        typed = self.action.parse(params)
        return lambda supervisor, name, target: self.perform(supervisor, name, target, typed)


async def _start(
    supervisor: Supervisor, name: str, target: ProcessTarget, params: NoParams
) -> list[str]:
    return [f"pid:{await supervisor.ensure_started(name, target)}"]


async def _restart(
    supervisor: Supervisor, name: str, target: ProcessTarget, params: GraceParams
) -> list[str]:
    sup = supervisor.supervised(name, target)
    return [f"pid:{await supervisor.restart(name, sup, params.grace.total_seconds())}"]


async def _resume(
    supervisor: Supervisor, name: str, target: ProcessTarget, params: NoParams
) -> list[str]:
    sup = supervisor.supervised(name, target)
    pid = sup.pid
    if pid is None:
        raise TargetNotFound("is not running; nothing to resume", target=name)
    if state_of(pid) in STOPPED:
        send(pid, sup.starttime, signal.SIGCONT, name, FaultInjectionFailed)
        await until(lambda: state_of(pid) not in STOPPED, SETTLE)
    return [f"pid:{pid}"]


ACTIONS: Final[Bindings[a.ActionType[Any], ProcessAction[Any]]] = action_handlers(
    TargetKind.PROCESS,
    ProcessAction(a.PROCESS_START, _start),
    ProcessAction(a.PROCESS_RESTART, _restart),
    ProcessAction(a.PROCESS_RESUME, _resume),
)
"""Every process healing action of the catalog, bound to what it does."""
