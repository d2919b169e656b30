"""The process driver's undo record: which process (pid and start time), which signal.

The pid and the kernel start time together name one process for good, so a
revert never signals a process that merely reuses the pid. The target's
command and environment *names* are kept for the record; the environment's
values may be secrets and never reach the journal. Its JSON keys are those of
the records written before it had a version, so those read as version 1.
"""

from __future__ import annotations

import signal as signals
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Self

from aftershock.drivers.undo import VERSION_KEY, Fields, read_undo, write_undo
from aftershock.errors import DriverError
from aftershock.ports import JSON, Handle

__all__ = ["UNDO_VERSION", "ProcessUndo", "undo_of", "with_undo"]

UNDO_VERSION: Final = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessUndo:
    """How to undo a process fault from the journal alone (as far as that is possible)."""

    v: int = UNDO_VERSION
    pid: int | None
    """None: the driver had not started the target at prepare (a dry run); inject starts it."""
    starttime: int = 0
    signal: str = "SIGKILL"
    grace: float | None = None
    """Seconds between SIGTERM and SIGKILL of a restart."""
    command: tuple[str, ...] = ()
    cwd: str | None = None
    env_keys: tuple[str, ...] = ()
    new_pid: int | None = None
    new_starttime: int | None = None
    """The process a restart started."""

    def aimed(self, fault: str, target: str, failure: type[DriverError]) -> tuple[int, int]:
        """The pid and start time the fault is aimed at; ``failure`` when the record has none."""
        if self.pid is None:
            msg = f"handle of {fault} lacks a valid pid/starttime/signal: no pid"
            raise failure(msg, target=target)
        return self.pid, self.starttime

    def signal_number(self, fault: str, target: str, failure: type[DriverError]) -> signals.Signals:
        """The recorded signal; ``failure`` for a name that is no signal."""
        try:
            return signals.Signals[self.signal]
        except KeyError as exc:
            msg = f"handle of {fault} lacks a valid pid/starttime/signal: {exc}"
            raise failure(msg, target=target) from exc

    def to_json(self) -> dict[str, JSON]:
        """The record as JSON."""
        return {
            VERSION_KEY: self.v,
            "pid": self.pid,
            "starttime": self.starttime,
            "signal": self.signal,
            "grace": self.grace,
            "command": list(self.command),
            "cwd": self.cwd,
            "env_keys": list(self.env_keys),
            "new_pid": self.new_pid,
            "new_starttime": self.new_starttime,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Read a record written by ``to_json``, or an unversioned one of the same keys."""
        f = Fields(data)
        return cls(
            v=f.version(UNDO_VERSION),
            pid=f.optional_integer("pid"),
            starttime=f.integer("starttime", 0),
            signal=f.text("signal", "SIGKILL"),
            grace=f.optional_number("grace"),
            command=f.texts("command"),
            cwd=f.optional_text("cwd"),
            env_keys=f.texts("env_keys"),
            new_pid=f.optional_integer("new_pid"),
            new_starttime=f.optional_integer("new_starttime"),
        )


def undo_of(handle: Handle, failure: type[DriverError]) -> ProcessUndo:
    """The undo record of ``handle``; an unusable one is ``failure``."""
    return read_undo(handle, ProcessUndo, failure)


def with_undo(handle: Handle, undo: ProcessUndo) -> Handle:
    """``handle`` with ``undo`` as its undo record."""
    return write_undo(handle, undo)
