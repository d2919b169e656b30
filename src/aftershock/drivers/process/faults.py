"""The process faults: each catalog entry bound to what it does to a supervised process.

``process.kill`` sends a signal (SIGKILL by default); revert starts the process
again if this driver supervises it. ``process.stop`` sends SIGSTOP and waits
until the process shows stopped; revert sends SIGCONT. ``process.restart``
terminates (SIGTERM, grace, SIGKILL) and starts the process again. Every
signal goes through ``proc.send``, guarded by the recorded start time.

From the journal alone (``aftershock recover`` in a fresh process) a stopped
process is resumed; a killed or restarted one cannot be started again there
(see ``driver``), and that revert succeeds with nothing left to undo.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Final, Generic, TypeVar

from aftershock.drivers.bindings import Bindings, fault_handlers
from aftershock.drivers.process.proc import STOPPED, send, state_of, until
from aftershock.drivers.process.supervisor import Supervisor, reap_if_dead
from aftershock.drivers.process.undo import ProcessUndo
from aftershock.errors import DriverError, FaultInjectionFailed, RevertFailed
from aftershock.model import faults as f
from aftershock.model.base import Spec
from aftershock.model.params import GraceParams, NoParams, SignalParams
from aftershock.model.targets import TargetKind

__all__ = ["FAULTS", "SETTLE", "ProcessFault"]

P = TypeVar("P", bound=Spec)
SETTLE: Final = 5.0
"""How long a signal may take to show in /proc or in the exit status."""

Inject = Callable[[Supervisor, str, str, ProcessUndo], Awaitable[ProcessUndo]]
"""``(supervisor, target name, fault name, undo)`` → the undo record, enriched."""
Revert = Callable[[Supervisor, str, str, ProcessUndo], Awaitable[None]]
"""``(supervisor, target name, fault name, undo)``: undo the fault; already undone is success."""


@dataclass(frozen=True, slots=True)
class ProcessFault(Generic[P]):
    """A fault on one supervised process."""

    fault: f.FaultType[P]
    signal: Callable[[P], str]
    """The signal the fault sends, from its parameters."""
    grace: Callable[[P], float | None]
    inject: Inject
    revert: Revert
    needs_running: bool = True
    """Refuse a process that has exited (a restart starts it anyway)."""

    def settings_for(self, params: Spec) -> tuple[str, float | None]:
        """The signal and grace the undo record keeps of ``params``."""
        typed = self.fault.parse(params)
        return self.signal(typed), self.grace(typed)


def _signal(params: SignalParams) -> str:
    return params.signal


def _no_grace(params: Spec) -> float | None:
    return None


def _grace(params: GraceParams) -> float | None:
    return params.grace.total_seconds()


async def _send(supervisor: Supervisor, name: str, fault: str, undo: ProcessUndo) -> ProcessUndo:
    pid, starttime = undo.aimed(fault, name, FaultInjectionFailed)
    sig = undo.signal_number(fault, name, FaultInjectionFailed)
    if not send(pid, starttime, sig, name, FaultInjectionFailed):
        raise FaultInjectionFailed(f"process {pid} is gone; nothing to {sig.name}", target=name)
    return undo


async def _kill(supervisor: Supervisor, name: str, fault: str, undo: ProcessUndo) -> ProcessUndo:
    await _send(supervisor, name, fault, undo)
    sup = supervisor.get(name)
    if undo.signal == signal.SIGKILL.name and sup is not None and sup.pid == undo.pid:
        assert sup.proc is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTLE):
                await sup.proc.wait()
    return undo


async def _freeze(supervisor: Supervisor, name: str, fault: str, undo: ProcessUndo) -> ProcessUndo:
    await _send(supervisor, name, fault, undo)
    pid = undo.pid
    if pid is not None and not await until(lambda: state_of(pid) in {*STOPPED, None}, SETTLE):
        raise FaultInjectionFailed(f"process {pid} did not stop", target=name)
    return undo


async def _restart(supervisor: Supervisor, name: str, fault: str, undo: ProcessUndo) -> ProcessUndo:
    undo.aimed(fault, name, FaultInjectionFailed)
    undo.signal_number(fault, name, FaultInjectionFailed)
    sup = supervisor.get(name)
    if sup is None:
        raise FaultInjectionFailed("is not supervised by this aftershock", target=name)
    new_pid = await supervisor.restart(name, sup, undo.grace)
    return replace(undo, new_pid=new_pid, new_starttime=sup.starttime)


async def _start_again(supervisor: Supervisor, name: str, fault: str, undo: ProcessUndo) -> None:
    undo.aimed(fault, name, RevertFailed)
    undo.signal_number(fault, name, RevertFailed)
    sup = supervisor.get(name)
    if sup is None or not await reap_if_dead(sup):
        return  # from the journal alone there is nothing to start: see the module doc
    try:
        await supervisor.ensure_started(name)
    except DriverError as exc:
        raise RevertFailed(f"cannot start it again: {exc}", target=name) from exc


async def _resume(supervisor: Supervisor, name: str, fault: str, undo: ProcessUndo) -> None:
    pid, starttime = undo.aimed(fault, name, RevertFailed)
    undo.signal_number(fault, name, RevertFailed)
    if send(pid, starttime, signal.SIGCONT, name, RevertFailed) and not await until(
        lambda: state_of(pid) not in STOPPED, SETTLE
    ):
        raise RevertFailed(f"process {pid} did not resume after SIGCONT", target=name)


def _stop_signal(params: NoParams) -> str:
    return signal.SIGSTOP.name


def _term_signal(params: GraceParams) -> str:
    return signal.SIGTERM.name


FAULTS: Final[Bindings[f.FaultType[Any], ProcessFault[Any]]] = fault_handlers(
    TargetKind.PROCESS,
    ProcessFault(f.PROCESS_KILL, _signal, _no_grace, _kill, _start_again),
    ProcessFault(f.PROCESS_STOP, _stop_signal, _no_grace, _freeze, _resume),
    ProcessFault(
        f.PROCESS_RESTART, _term_signal, _grace, _restart, _start_again, needs_running=False
    ),
)
"""Every process fault of the catalog, bound to what it does."""
