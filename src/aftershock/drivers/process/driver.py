"""Process driver: local processes that aftershock starts and supervises itself.

A process target is an argv list (never a shell). The driver starts it in its
own session, so signals aimed at it (and at its process group) never reach
aftershock, and waits until its ``ready`` address accepts connections.

Every signal is guarded against pid reuse: the handle records the pid *and* the
kernel start time of the process (``/proc/<pid>/stat`` field 22); a pid whose
start time no longer matches belongs to someone else and is never signalled.

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

import asyncio
import contextlib
import os
import shlex
import signal
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final, Literal

from aftershock.drivers.process.proc import (
    _FAULTS,
    ProcStat,
    _send,
    _state,
    _Supervised,
    _undo_fields,
    _until,
    read_stat,
)
from aftershock.errors import (
    DriverError,
    DriverUnavailable,
    FaultInjectionFailed,
    RevertFailed,
    TargetNotFound,
)
from aftershock.model.params import GraceParams, SignalParams
from aftershock.model.secrets import Redactor, reveal, secret_values
from aftershock.model.targets import ProcessTarget, TargetKind
from aftershock.ports import JSON, ActionRequest, FaultRequest, Handle

__all__ = ["ProcStat", "ProcessDriver", "ProcessStatus", "read_stat"]

ProcessStatus = Literal["running", "stopped", "exited"]
"""What ``ProcessDriver.status`` reports."""

_DEFAULT_GRACE: Final = 10.0
_SHUTDOWN_GRACE: Final = 5.0  # on exit: a supervised process gets this long after SIGTERM
_SETTLE: Final = 5.0  # how long a signal may take to show in /proc or in the exit status
_LOG_TAIL: Final = 4096  # bytes at the end of a target's log quoted in a start failure


class ProcessDriver:
    """Starts, supervises, breaks and heals local processes (FaultDriver + ActionDriver)."""

    kind = TargetKind.PROCESS

    def __init__(
        self,
        targets: Mapping[str, ProcessTarget] | None = None,
        *,
        log_dir: Path | None = None,
        ready_timeout: float = 10.0,
    ) -> None:
        self._targets = dict(targets or {})
        self._log_dir = log_dir
        self._ready_timeout = ready_timeout
        self._procs: dict[str, _Supervised] = {}

    # ------------------------------------------------------------- supervision
    async def start(self, stack: AsyncExitStack) -> None:
        """Start every configured target; on exit terminate (then kill) all of them."""
        stack.push_async_callback(self.aclose)
        for name, target in self._targets.items():
            await self.ensure_started(name, target)

    async def aclose(self) -> None:
        """Terminate every supervised process: SIGTERM, a grace period, then SIGKILL."""
        supervised = list(self._procs.values())
        await asyncio.gather(*(self._terminate(sup, _SHUTDOWN_GRACE) for sup in supervised))

    async def ensure_started(self, name: str, target: ProcessTarget | None = None) -> int:
        """Start ``name`` unless it is running; wait until it is ready; return its pid."""
        sup = self._supervised(name, target)
        async with sup.lock:
            await _reap_if_dead(sup)
            if not sup.running:
                await self._spawn(name, sup)
            assert sup.proc is not None
            return sup.proc.pid

    def status(self, name: str) -> ProcessStatus:
        """``running``, ``stopped`` (SIGSTOP) or ``exited`` (also: never started)."""
        pid = self.pid(name)
        state = None if pid is None else _state(pid)
        if state is None or state in {"Z", "X"}:
            return "exited"
        return "stopped" if state in {"T", "t"} else "running"

    def pid(self, name: str) -> int | None:
        """The pid of the running process ``name``, if any."""
        sup = self._procs.get(name)
        return None if sup is None else sup.pid

    def restarts(self, name: str) -> int:
        """How many times ``name`` was started again after its first start."""
        sup = self._procs.get(name)
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
        if request.fault not in _FAULTS:
            raise FaultInjectionFailed(f"unknown fault {request.fault!r}", target=name)
        sup = self._supervised(name, body)
        if sup.proc is not None and not sup.running and request.fault != "process.restart":
            msg = f"is not running (exited with code {sup.proc.returncode})"
            raise FaultInjectionFailed(msg, target=name)
        params = request.params
        sig = {"process.stop": "SIGSTOP", "process.restart": "SIGTERM"}.get(request.fault)
        if sig is None:
            sig = params.signal if isinstance(params, SignalParams) else "SIGKILL"
        grace = params.grace.total_seconds() if isinstance(params, GraceParams) else None
        pid = sup.proc.pid if sup.proc is not None else None
        undo: dict[str, JSON] = {
            "pid": pid,
            "starttime": sup.starttime,
            "signal": sig,
            "grace": grace,
        }
        # env names only: the values may be secrets, and handles go to the journal
        undo |= {"command": list(body.command), "cwd": body.cwd, "env_keys": sorted(body.env)}
        return Handle(
            run_id=request.run_id,
            step=request.step,
            kind=self.kind,
            fault=request.fault,
            target=name,
            resources=(f"pid:{pid}" if pid is not None else f"process:{name}",),
            undo=undo,
        )

    async def inject(self, handle: Handle) -> Handle:
        """Send the signal; for a restart, start the process again and record the new pid."""
        name = handle.target
        if handle.undo.get("pid") is None and name in self._procs:
            started = await self.ensure_started(name)
            handle = replace(
                handle,
                resources=(f"pid:{started}",),
                undo={**handle.undo, "pid": started, "starttime": self._procs[name].starttime},
            )
        pid, starttime, sig = _undo_fields(handle, FaultInjectionFailed)
        if handle.fault == "process.restart":
            sup = self._procs.get(name)
            if sup is None:
                raise FaultInjectionFailed("is not supervised by this aftershock", target=name)
            grace = handle.undo.get("grace")
            new_pid = await self._restart(name, sup, None if grace is None else float(grace))
            return handle.with_undo(new_pid=new_pid, new_starttime=sup.starttime)
        if not _send(pid, starttime, sig, name, FaultInjectionFailed):
            raise FaultInjectionFailed(f"process {pid} is gone; nothing to {sig.name}", target=name)
        if handle.fault == "process.stop":
            if not await _until(lambda: _state(pid) in {"T", "t", None}, _SETTLE):
                raise FaultInjectionFailed(f"process {pid} did not stop", target=name)
        elif sig is signal.SIGKILL and (sup := self._procs.get(name)) and sup.pid == pid:
            assert sup.proc is not None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_SETTLE):
                    await sup.proc.wait()
        return handle

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
        if handle.undo.get("pid") is None:
            sup = self._procs.get(name)
            if sup is None or sup.proc is None:
                return
            handle = handle.with_undo(pid=sup.proc.pid, starttime=sup.starttime)
        pid, starttime, _ = _undo_fields(handle, RevertFailed)
        if handle.fault == "process.stop":
            if _send(pid, starttime, signal.SIGCONT, name, RevertFailed) and not await _until(
                lambda: _state(pid) not in {"T", "t"}, _SETTLE
            ):
                raise RevertFailed(f"process {pid} did not resume after SIGCONT", target=name)
            return
        sup = self._procs.get(name)
        if sup is not None:
            await _reap_if_dead(sup)
        if sup is None or sup.running:
            return
        try:
            await self.ensure_started(name)
        except DriverError as exc:
            raise RevertFailed(f"cannot start it again: {exc}", target=name) from exc

    # ----------------------------------------------------------------- actions
    async def act(self, request: ActionRequest) -> list[str]:
        """``process.start`` / ``.restart`` / ``.resume``; returns the pids acted on.

        With ``dry_run`` nothing is touched; the result names what would be.
        """
        name = request.target_name
        body = request.target.body
        if not isinstance(body, ProcessTarget):
            raise FaultInjectionFailed("not a process target", target=name)
        if request.action not in {"process.start", "process.restart", "process.resume"}:
            raise FaultInjectionFailed(f"unknown action {request.action!r}", target=name)
        sup = self._supervised(name, body)
        if request.dry_run:
            return [f"pid:{sup.pid}" if sup.pid is not None else f"process:{name}"]
        if request.action == "process.start":
            return [f"pid:{await self.ensure_started(name, body)}"]
        if request.action == "process.restart":
            params = request.params
            grace = params.grace.total_seconds() if isinstance(params, GraceParams) else None
            return [f"pid:{await self._restart(name, sup, grace)}"]
        pid = sup.pid
        if pid is None:
            raise TargetNotFound("is not running; nothing to resume", target=name)
        if _state(pid) in {"T", "t"}:
            _send(pid, sup.starttime, signal.SIGCONT, name, FaultInjectionFailed)
            await _until(lambda: _state(pid) not in {"T", "t"}, _SETTLE)
        return [f"pid:{pid}"]

    # --------------------------------------------------------------- internals
    def _supervised(self, name: str, target: ProcessTarget | None) -> _Supervised:
        sup = self._procs.get(name)
        if sup is None:
            spec = target or self._targets.get(name)
            if spec is None:
                raise TargetNotFound("no such process target", target=name)
            sup = self._procs[name] = _Supervised(target=spec)
        return sup

    def _log_path(self, name: str) -> Path | None:
        return None if self._log_dir is None else self._log_dir / f"{name}.log"

    async def _spawn(self, name: str, sup: _Supervised) -> None:
        """Start the process (the caller holds ``sup.lock``) and wait until it is ready."""
        argv = sup.target.command
        env = {**os.environ, **{k: reveal(v) for k, v in sup.target.env.items()}}
        log_path = self._log_path(name)
        log: BinaryIO | None = None
        try:
            if log_path is not None:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log = log_path.open("ab")
                stamp = datetime.now(UTC).isoformat(timespec="seconds")
                log.write(f"--- aftershock: start {sup.starts + 1} at {stamp}\n".encode())
                log.flush()
            sink: int | BinaryIO = asyncio.subprocess.DEVNULL if log is None else log
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=sup.target.cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sink,
                stderr=asyncio.subprocess.DEVNULL if log is None else asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own group: our signals target it, not us
            )
        except OSError as exc:
            msg = f"cannot start {shlex.join(argv)}: {exc.strerror or exc}"
            raise FaultInjectionFailed(msg, target=name) from exc
        finally:
            if log is not None:
                log.close()  # the child holds its own copy of the descriptor
        stat = read_stat(proc.pid)
        sup.proc, sup.starttime = proc, stat.starttime if stat is not None else 0
        sup.starts += 1
        if sup.target.ready is not None:
            await self._wait_ready(name, sup, sup.target.ready)

    async def _restart(self, name: str, sup: _Supervised, grace: float | None) -> int:
        async with sup.lock:
            await self._terminate(sup, _DEFAULT_GRACE if grace is None else grace)
            await self._spawn(name, sup)
        assert sup.proc is not None
        return sup.proc.pid

    async def _wait_ready(self, name: str, sup: _Supervised, ready: str) -> None:
        assert sup.proc is not None
        host, _, port = ready.rpartition(":")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ready_timeout
        while sup.proc.returncode is None:
            try:
                async with asyncio.timeout(max(min(1.0, deadline - loop.time()), 0.05)):
                    _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
            except (OSError, TimeoutError):
                if loop.time() >= deadline:
                    await self._terminate(sup, 1.0)  # a half-started process helps no one
                    msg = f"{ready} refused connections for {self._ready_timeout:g}s"
                    raise DriverUnavailable(msg + self._log_tail(name), target=name) from None
                await asyncio.sleep(0.05)
            else:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return
        code = sup.proc.returncode
        msg = f"exited with code {code} before {ready} accepted connections"
        raise FaultInjectionFailed(msg + self._log_tail(name), target=name)

    def _log_tail(self, name: str, lines: int = 5) -> str:
        path = self._log_path(name)
        if path is None:
            return " (no log: log_dir not set)"
        sup = self._procs.get(name)
        env = sup.target.env.values() if sup is not None else ()
        # The process may print what it was given (its environment): hide those secrets.
        redact = Redactor(secret_values(env, os.environ))
        window = _LOG_TAIL + redact.margin * 4
        try:
            with path.open("rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(size - window, 0))
                raw = log.read()
        except OSError:
            return ""
        # Redacted whole before lines are split and cut, with whatever part of a
        # secret the window's start cut off dropped too.
        text = redact.clipped(raw.decode("utf-8", errors="replace"), start=size > window)
        tail = [line.strip()[:200] for line in text.splitlines() if line.strip()][-lines:]
        # One line, so the error reads well in logs and reports; the full log is at path.
        return f"; {path}: " + " | ".join(tail) if tail else f"; {path} is empty"

    async def _terminate(self, sup: _Supervised, grace: float) -> None:
        """SIGTERM (and SIGCONT, so a stopped process can act on it), then SIGKILL."""
        proc = sup.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(DriverError):
            _send(proc.pid, sup.starttime, signal.SIGTERM, "", DriverError)
            _send(proc.pid, sup.starttime, signal.SIGCONT, "", DriverError)
        try:
            async with asyncio.timeout(grace):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(DriverError):
                _send(proc.pid, sup.starttime, signal.SIGKILL, "", DriverError)
            await proc.wait()


async def _reap_if_dead(sup: _Supervised) -> None:
    """Collect the exit of a child /proc already shows dead, before asking if it runs.

    asyncio learns of a child's exit a moment after the kernel does; a revert in
    that moment would otherwise see a dead process as running and not restart it.
    """
    if sup.proc is None or sup.proc.returncode is not None:
        return
    stat = read_stat(sup.proc.pid)
    if stat is None or stat.state in {"Z", "X"}:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sup.proc.wait(), timeout=2.0)
