"""The processes aftershock starts and supervises itself, by target name.

A process target is an argv list (never a shell). The supervisor starts it in
its own session, so signals aimed at it (and at its process group) never reach
aftershock, appends its output to ``<log_dir>/<name>.log``, and waits until its
``ready`` address accepts connections. A start that fails quotes the end of
that log, with the target's secrets hidden. Stopping is SIGTERM (and SIGCONT,
so a stopped process can act on it), a grace period, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final

from aftershock.drivers.process.proc import read_stat, send
from aftershock.errors import DriverError, DriverUnavailable, FaultInjectionFailed, TargetNotFound
from aftershock.model.secrets import Redactor, reveal, secret_values
from aftershock.model.targets import ProcessTarget

__all__ = ["DEFAULT_GRACE", "SHUTDOWN_GRACE", "Supervised", "Supervisor", "reap_if_dead"]

DEFAULT_GRACE: Final = 10.0
"""Seconds between SIGTERM and SIGKILL when a restart gives no grace."""
SHUTDOWN_GRACE: Final = 5.0
"""On exit: a supervised process gets this long after SIGTERM."""
_LOG_TAIL: Final = 4096  # bytes at the end of a target's log quoted in a start failure


@dataclass(slots=True)
class Supervised:
    """One process target: its spec and, once started, its process."""

    target: ProcessTarget
    proc: asyncio.subprocess.Process | None = None
    starttime: int = 0
    """The kernel start time of ``proc`` (``/proc/<pid>/stat``), 0 before the first start."""
    starts: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def running(self) -> bool:
        """Started, and not exited."""
        return self.proc is not None and self.proc.returncode is None

    @property
    def pid(self) -> int | None:
        """The pid of the running process, if any."""
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None


class Supervisor:
    """Starts, restarts and stops the processes of named targets."""

    def __init__(
        self,
        targets: Mapping[str, ProcessTarget],
        *,
        log_dir: Path | None = None,
        ready_timeout: float = 10.0,
    ) -> None:
        self.targets = dict(targets)
        self._log_dir = log_dir
        self._ready_timeout = ready_timeout
        self._procs: dict[str, Supervised] = {}

    def get(self, name: str) -> Supervised | None:
        """The supervised process ``name``, if this supervisor ever took it on."""
        return self._procs.get(name)

    def supervised(self, name: str, target: ProcessTarget | None = None) -> Supervised:
        """The supervised process ``name``, taken on (not started) on first use."""
        sup = self._procs.get(name)
        if sup is None:
            spec = target or self.targets.get(name)
            if spec is None:
                raise TargetNotFound("no such process target", target=name)
            sup = self._procs[name] = Supervised(target=spec)
        return sup

    async def aclose(self) -> None:
        """Terminate every supervised process: SIGTERM, a grace period, then SIGKILL."""
        supervised = list(self._procs.values())
        await asyncio.gather(*(self.terminate(sup, SHUTDOWN_GRACE) for sup in supervised))

    async def ensure_started(self, name: str, target: ProcessTarget | None = None) -> int:
        """Start ``name`` unless it is running; wait until it is ready; return its pid."""
        sup = self.supervised(name, target)
        async with sup.lock:
            if await reap_if_dead(sup):
                await self._spawn(name, sup)
            assert sup.proc is not None
            return sup.proc.pid

    async def restart(self, name: str, sup: Supervised, grace: float | None) -> int:
        """Terminate (with ``grace``, default ``DEFAULT_GRACE``) and start again; the new pid."""
        async with sup.lock:
            await self.terminate(sup, DEFAULT_GRACE if grace is None else grace)
            await self._spawn(name, sup)
        assert sup.proc is not None
        return sup.proc.pid

    async def terminate(self, sup: Supervised, grace: float) -> None:
        """SIGTERM (and SIGCONT, so a stopped process can act on it), then SIGKILL."""
        proc = sup.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(DriverError):
            send(proc.pid, sup.starttime, signal.SIGTERM, "", DriverError)
            send(proc.pid, sup.starttime, signal.SIGCONT, "", DriverError)
        try:
            async with asyncio.timeout(grace):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(DriverError):
                send(proc.pid, sup.starttime, signal.SIGKILL, "", DriverError)
            await proc.wait()

    def _log_path(self, name: str) -> Path | None:
        return None if self._log_dir is None else self._log_dir / f"{name}.log"

    async def _spawn(self, name: str, sup: Supervised) -> None:
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

    async def _wait_ready(self, name: str, sup: Supervised, ready: str) -> None:
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
                    await self.terminate(sup, 1.0)  # a half-started process helps no one
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


async def reap_if_dead(sup: Supervised) -> bool:
    """Whether the supervised process is dead; its exit collected if /proc says so.

    asyncio learns of a child's exit a moment after the kernel does (on a busy
    machine, seconds after): a revert in that moment would otherwise see a dead
    process as running and not restart it. Dead is what /proc says (gone or a
    zombie), whether or not asyncio has collected the exit within 2 s.
    """
    if sup.proc is None or sup.proc.returncode is not None:
        return True
    stat = read_stat(sup.proc.pid)
    if stat is not None and stat.state not in {"Z", "X"}:
        return False
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(sup.proc.wait(), timeout=2.0)
    return True
