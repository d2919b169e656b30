"""Process driver: local processes that aftershock starts and supervises itself.

A process target is an argv list (never a shell). ``supervisor`` starts it in
its own session, so signals aimed at it (and at its process group) never reach
aftershock, and waits until its ``ready`` address accepts connections. What
each fault and action does is bound to its catalog entry in ``faults`` and
``actions``; this module is the driver around them, with the undo record
(``undo``) built at prepare and read back at inject and revert.

Every signal is guarded against pid reuse: the handle records the pid *and* the
kernel start time of the process (``/proc/<pid>/stat`` field 22, ``proc``); a
pid whose start time no longer matches belongs to someone else and is never
signalled.

Faults: ``process.kill`` (a signal, SIGKILL by default), ``process.stop``
(SIGSTOP, reverted by SIGCONT) and ``process.restart`` (SIGTERM, grace,
SIGKILL, start again). Actions: ``process.start``, ``process.restart`` and
``process.resume``.

Reverting from the journal alone (``aftershock recover`` in a fresh process,
after the aftershock that supervised the target died): a stopped process is
resumed with SIGCONT if its start time still matches. A killed or restarted
process cannot be started again from there: starting it needs the environment
(possibly secret) that only the supervisor held, and a process started by
``recover`` would die with it. Such a revert succeeds with nothing left to undo;
bringing the service back is the healer's or the operator's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import Literal

from aftershock.drivers.bindings import params_checked
from aftershock.drivers.process.actions import ACTIONS
from aftershock.drivers.process.faults import FAULTS
from aftershock.drivers.process.proc import STOPPED, ProcStat, read_stat, state_of
from aftershock.drivers.process.supervisor import Supervisor
from aftershock.drivers.process.undo import ProcessUndo, undo_of, with_undo
from aftershock.errors import FaultInjectionFailed, RevertFailed
from aftershock.model.targets import ProcessTarget, TargetKind
from aftershock.ports import ActionRequest, FaultRequest, Handle

__all__ = ["ProcStat", "ProcessDriver", "ProcessStatus", "read_stat"]

ProcessStatus = Literal["running", "stopped", "exited"]
"""What ``ProcessDriver.status`` reports."""


class ProcessDriver:
    """Starts, supervises, breaks and heals local processes (FaultDriver + ActionDriver)."""

    kind = TargetKind.PROCESS
    faults = FAULTS
    actions = ACTIONS

    def __init__(
        self,
        targets: Mapping[str, ProcessTarget] | None = None,
        *,
        log_dir: Path | None = None,
        ready_timeout: float = 10.0,
    ) -> None:
        self._supervisor = Supervisor(targets or {}, log_dir=log_dir, ready_timeout=ready_timeout)

    # ------------------------------------------------------------- supervision
    async def start(self, stack: AsyncExitStack) -> None:
        """Start every configured target; on exit terminate (then kill) all of them."""
        stack.push_async_callback(self.aclose)
        for name, target in self._supervisor.targets.items():
            await self.ensure_started(name, target)

    async def aclose(self) -> None:
        """Terminate every supervised process: SIGTERM, a grace period, then SIGKILL."""
        await self._supervisor.aclose()

    async def ensure_started(self, name: str, target: ProcessTarget | None = None) -> int:
        """Start ``name`` unless it is running; wait until it is ready; return its pid."""
        return await self._supervisor.ensure_started(name, target)

    def status(self, name: str) -> ProcessStatus:
        """``running``, ``stopped`` (SIGSTOP) or ``exited`` (also: never started)."""
        pid = self.pid(name)
        state = None if pid is None else state_of(pid)
        if state is None or state in {"Z", "X"}:
            return "exited"
        return "stopped" if state in STOPPED else "running"

    def pid(self, name: str) -> int | None:
        """The pid of the running process ``name``, if any."""
        sup = self._supervisor.get(name)
        return None if sup is None else sup.pid

    def restarts(self, name: str) -> int:
        """How many times ``name`` was started again after its first start."""
        sup = self._supervisor.get(name)
        return max(sup.starts - 1, 0) if sup is not None else 0

    # ------------------------------------------------------------------ faults
    async def prepare(self, request: FaultRequest) -> Handle:
        """Record pid, start time and how to undo; changes nothing.

        A target this driver never started (a dry run starts none) is named, not
        started: starting it here would leave a process behind that nobody stops.
        ``inject`` starts such a target before it acts.
        """
        name = request.target_name
        body = request.target.body
        if not isinstance(body, ProcessTarget):
            raise FaultInjectionFailed("not a process target", target=name)
        handler = FAULTS.get(request.fault)
        if handler is None:
            raise FaultInjectionFailed(f"unknown fault {request.fault.name!r}", target=name)
        with params_checked(name):
            sig, grace = handler.settings_for(request.params)
        sup = self._supervisor.supervised(name, body)
        if sup.proc is not None and not sup.running and handler.needs_running:
            msg = f"is not running (exited with code {sup.proc.returncode})"
            raise FaultInjectionFailed(msg, target=name)
        pid = sup.proc.pid if sup.proc is not None else None
        undo = ProcessUndo(
            pid=pid,
            starttime=sup.starttime,
            signal=sig,
            grace=grace,
            # env names only: the values may be secrets, and handles go to the journal
            command=tuple(body.command),
            cwd=body.cwd,
            env_keys=tuple(sorted(body.env)),
        )
        return Handle(
            run_id=request.run_id,
            step=request.step,
            kind=self.kind,
            fault=request.fault.name,
            target=name,
            resources=(f"pid:{pid}" if pid is not None else f"process:{name}",),
            undo=undo.to_json(),
        )

    async def inject(self, handle: Handle) -> Handle:
        """Send the signal; for a restart, start the process again and record the new pid."""
        name = handle.target
        handler = FAULTS.named(handle.fault)
        if handler is None:
            raise FaultInjectionFailed(f"unknown fault {handle.fault!r}", target=name)
        undo = undo_of(handle, FaultInjectionFailed)
        sup = self._supervisor.get(name)
        if undo.pid is None and sup is not None:
            started = await self.ensure_started(name)
            undo = replace(undo, pid=started, starttime=sup.starttime)
            handle = replace(handle, resources=(f"pid:{started}",))
        undo = await handler.inject(self._supervisor, name, handle.fault, undo)
        return with_undo(handle, undo)

    async def revert(self, handle: Handle) -> None:
        """Undo the fault; already undone, or the process gone, is success.

        stop → SIGCONT if the recorded process still exists; kill/restart → start
        the process again if this driver supervises it and it is not running
        (from the journal alone there is nothing to start: see the module doc).

        A handle prepared before this driver had started the target (no pid: a
        dry run, or a crash between the intent and ``inject``) concerns the
        process this driver supervises under that name, if it ever started one;
        if it never did, nothing was done and there is nothing to undo.
        """
        name = handle.target
        handler = FAULTS.named(handle.fault)
        if handler is None:
            raise RevertFailed(f"unknown fault {handle.fault!r}", target=name)
        undo = undo_of(handle, RevertFailed)
        if undo.pid is None:
            sup = self._supervisor.get(name)
            if sup is None or sup.proc is None:
                return
            undo = replace(undo, pid=sup.proc.pid, starttime=sup.starttime)
        await handler.revert(self._supervisor, name, handle.fault, undo)

    # ----------------------------------------------------------------- actions
    async def act(self, request: ActionRequest) -> list[str]:
        """``process.start`` / ``.restart`` / ``.resume``; returns the pids acted on.

        With ``dry_run`` nothing is touched; the result names what would be.
        """
        name = request.target_name
        body = request.target.body
        if not isinstance(body, ProcessTarget):
            raise FaultInjectionFailed("not a process target", target=name)
        handler = ACTIONS.named(request.action)
        if handler is None:
            raise FaultInjectionFailed(f"unknown action {request.action!r}", target=name)
        with params_checked(name):
            perform = handler.bound(request.params)
        sup = self._supervisor.supervised(name, body)
        if request.dry_run:
            return [f"pid:{sup.pid}" if sup.pid is not None else f"process:{name}"]
        return await perform(self._supervisor, name, body)
