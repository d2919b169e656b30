"""Processes as the kernel shows them: ``/proc`` and signals, guarded against pid reuse.

``read_stat`` reads the state, process group and kernel start time of a pid from
``/proc/<pid>/stat``; ``send`` signals a pid only while that start time still
matches (pid reuse never redirects a signal); ``until`` polls until a state
change shows.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aftershock.errors import DriverError

__all__ = ["STOPPED", "ProcStat", "read_stat", "send", "state_of", "until"]

_POLL: Final = 0.02
STOPPED: Final = frozenset({"T", "t"})
"""The states of a stopped (SIGSTOP) or traced process."""


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


def send(
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


async def until(predicate: Callable[[], bool], seconds: float) -> bool:
    """Poll ``predicate()`` until true or ``seconds`` pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(_POLL)
    return True


def state_of(pid: int) -> str | None:
    """The state letter of ``pid`` (``T``: stopped, ``Z``: zombie), or ``None`` if it is gone."""
    stat = read_stat(pid)
    return None if stat is None else stat.state
