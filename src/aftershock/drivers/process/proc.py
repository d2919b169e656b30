"""The operating-system side of the process driver: ``/proc`` and signals.

``read_stat`` reads the state, process group and kernel start time of a pid from
``/proc/<pid>/stat``; ``_send`` signals a pid only while that start time still
matches (pid reuse never redirects a signal), ``_until`` polls until a state
change shows, and ``_undo_fields`` reads the pid, start time and signal back
from a handle. ``_Supervised`` records one process the driver started.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from aftershock.errors import DriverError
from aftershock.model.targets import ProcessTarget
from aftershock.ports import Handle

__all__ = ["ProcStat", "read_stat"]

_FAULTS: Final = frozenset({"process.kill", "process.stop", "process.restart"})
_POLL: Final = 0.02


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` the driver needs."""

    state: str
    """R, S, D, T (stopped), t, Z (zombie), X, ..."""
    pgrp: int
    starttime: int
    """Clock ticks after boot: with the pid, it names one process for good."""


def read_stat(pid: int) -> ProcStat | None:
    """The state, process group and start time of ``pid``, or ``None`` if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # comm (field 2) may itself hold spaces and ")": the fields resume after the last ")".
    rest = text[text.rfind(")") + 2 :].split()
    return ProcStat(state=rest[0], pgrp=int(rest[2]), starttime=int(rest[19]))


@dataclass(slots=True)
class _Supervised:
    target: ProcessTarget
    proc: asyncio.subprocess.Process | None = None
    starttime: int = 0
    starts: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None


def _send(
    pid: int, starttime: int, sig: signal.Signals, name: str, error: type[DriverError]
) -> bool:
    """Signal ``pid`` (its whole group when it leads one) if it is still that process.

    Returns False when the process is gone, a zombie, or the pid was reused.
    Signalling the group reaches worker children too; a pid that leads a group
    cannot be reused while the group lives, so the start-time check covers it.
    """
    stat = read_stat(pid)
    if stat is None or stat.starttime != starttime or stat.state in {"Z", "X"}:
        return False
    try:
        (os.killpg if stat.pgrp == pid else os.kill)(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError as exc:
        raise error(f"not allowed to send {sig.name} to process {pid}", target=name) from exc
    return True


async def _until(predicate: Callable[[], bool], seconds: float) -> bool:
    """Poll ``predicate()`` until true or ``seconds`` pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(_POLL)
    return True


def _state(pid: int) -> str | None:
    stat = read_stat(pid)
    return None if stat is None else stat.state


def _undo_fields(handle: Handle, error: type[DriverError]) -> tuple[int, int, signal.Signals]:
    try:
        pid = int(handle.undo["pid"])
        starttime = int(handle.undo["starttime"])
        sig = signal.Signals[str(handle.undo.get("signal") or "SIGKILL")]
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"handle of {handle.fault} lacks a valid pid/starttime/signal: {exc}"
        raise error(msg, target=handle.target) from exc
    if handle.fault not in _FAULTS:
        raise error(f"unknown fault {handle.fault!r}", target=handle.target)
    return pid, starttime, sig
