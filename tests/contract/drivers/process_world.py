"""The process driver's world: a process the driver starts and supervises, as a run does.

The target is ``sleep`` with an argument unique to the test, so the processes
of the world are found in ``/proc`` by their exact command line, whoever
started them; the snapshot is each one's pid, kernel start time and whether it
runs or is stopped (zombies are dead and left out).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections.abc import Mapping
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from aftershock.drivers.process import ProcessDriver, read_stat
from aftershock.model.params import GraceParams, NoParams, SignalParams
from aftershock.model.targets import ProcessTarget, TargetSpec
from aftershock.ports import Handle
from tests.contract.drivers.world import FaultCase, Snapshot, World, until

__all__ = ["ProcessWorld", "processes"]


def processes(argv: list[str]) -> list[dict[str, Any]]:
    """Every live process whose command line is exactly ``argv``: pid, start time, state."""
    wanted = b"\0".join(a.encode() for a in argv) + b"\0"
    found: list[dict[str, Any]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "cmdline").read_bytes() != wanted:
                continue
        except OSError:
            continue  # gone meanwhile
        stat = read_stat(int(entry.name))
        if stat is None or stat.state in {"Z", "X"}:
            continue
        state = "stopped" if stat.state in {"T", "t"} else "running"
        found.append({"pid": int(entry.name), "starttime": stat.starttime, "state": state})
    return sorted(found, key=lambda p: p["pid"])


class ProcessWorld(World):
    """A supervised ``sleep``; the driver is started (and so starts it) as a run does."""

    name: ClassVar[str] = "process"
    faults: ClassVar[tuple[FaultCase, ...]] = (
        FaultCase(fault="process.stop", params=NoParams()),
        # From the journal alone a killed process cannot be started again (the
        # driver's documented limit); its supervisor's revert does start it.
        FaultCase(
            fault="process.kill",
            params=SignalParams(signal="SIGKILL"),
            identical_after_revert=False,
            fresh_revert_restores=False,
        ),
        FaultCase(
            fault="process.restart",
            params=GraceParams(grace=timedelta(seconds=1)),
            identical_after_revert=False,
        ),
    )

    def __init__(self) -> None:
        self.argv = ["sleep", f"86400.{secrets.randbelow(10**6):06d}"]
        self.body = ProcessTarget.model_validate({"command": self.argv})

    @classmethod
    def build(cls, request: pytest.FixtureRequest) -> ProcessWorld:
        return cls()

    async def setup(self, stack: AsyncExitStack) -> None:
        stack.push_async_callback(self._none_left)
        driver = ProcessDriver({"victim": self.body})
        await self.launch(driver, stack)

    async def _none_left(self) -> None:
        left = processes(self.argv)
        for proc in left:  # leave nothing behind, then say so
            os.kill(proc["pid"], signal.SIGKILL)
        assert not left, f"processes left behind: {left}"

    async def snapshot(self) -> Snapshot:
        return processes(self.argv)

    async def quiet(self) -> None:
        """Until two reads a moment apart agree: a process just forked by the supervisor
        shows its parent's argv until it execs, so one read may not see it yet."""
        last = await self.snapshot()
        for _ in range(50):
            await asyncio.sleep(0.05)
            now = await self.snapshot()
            if now == last:
                return
            last = now

    def shape(self, snapshot: Snapshot) -> Snapshot:
        return [p["state"] for p in snapshot]

    def target(self, case: FaultCase) -> TargetSpec:
        return TargetSpec(process=self.body)

    async def vanish(self, handle: Handle) -> None:
        for proc in processes(self.argv):
            os.kill(proc["pid"], signal.SIGKILL)
        gone = await until(self.snapshot, lambda s: not s, within=10)
        assert not gone, f"still alive after SIGKILL: {gone}"

    def fresh_config(self) -> Mapping[str, Any]:
        return {"kind": "process"}
