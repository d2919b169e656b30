"""Container operations the Docker driver composes: wait until running, restore, crash.

Synchronous, through the SDK's low-level ``APIClient``, in a worker thread (the
driver runs every call with ``asyncio.to_thread``), so the sleeps of the waits
never block the event loop.
"""

from __future__ import annotations

import math
import os
import signal as signals
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import docker
import docker.errors

from aftershock.errors import FaultInjectionFailed

__all__ = [
    "DEFAULT_GRACE",
    "READY_TIMEOUT",
    "crash",
    "ensure_running",
    "exists",
    "grace_seconds",
    "is_running",
    "unpause_if_paused",
    "wait_running",
]

READY_TIMEOUT: Final = 30.0
"""Seconds a revert or action waits for a started container to be running."""
DEFAULT_GRACE: Final = 10
"""Seconds before SIGKILL when a stop or restart gives no grace (Docker's default)."""
_CRASH_HELP: Final = (
    "docker.crash signals the container's main process from the host, so aftershock "
    "must run on the Docker host, as root, in the daemon's PID namespace; "
    "use docker.kill otherwise"
)


def grace_seconds(grace: timedelta) -> int:
    """Whole seconds of grace, rounded up, as Docker takes them."""
    return max(0, math.ceil(grace.total_seconds()))


def is_running(state: Mapping[str, Any]) -> bool:
    """Running, and not in the middle of a restart."""
    return bool(state.get("Running")) and not state.get("Restarting")


def wait_running(api: docker.APIClient, cid: str, timeout: float = READY_TIMEOUT) -> None:
    """Poll until the container runs (or is gone); ``TimeoutError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = api.inspect_container(cid)["State"]
        except docker.errors.NotFound:
            return
        if is_running(state):
            return
        if time.monotonic() >= deadline:
            msg = f"container {cid[:12]} not running after {timeout:.0f}s ({state.get('Status')})"
            raise TimeoutError(msg)
        time.sleep(0.1)  # in a worker thread: the event loop is not blocked


def ensure_running(api: docker.APIClient, cid: str) -> None:
    """Unpause or start the container, then wait until it runs; gone counts as done."""
    try:
        state = api.inspect_container(cid)["State"]
    except docker.errors.NotFound:
        return  # gone: nothing left to restore
    if state.get("Paused"):
        api.unpause(cid)
    elif not state.get("Running"):
        try:
            api.start(cid)
        except docker.errors.APIError:
            # A restart policy may have started it between inspect and start.
            if not api.inspect_container(cid)["State"].get("Running"):
                raise
    wait_running(api, cid)


def unpause_if_paused(api: docker.APIClient, cid: str) -> None:
    """Unpause the container if it is paused; leave it as it is otherwise."""
    if api.inspect_container(cid)["State"].get("Paused"):
        api.unpause(cid)


def exists(api: docker.APIClient, cid: str) -> bool:
    """Whether the daemon still knows the container."""
    try:
        api.inspect_container(cid)
    except docker.errors.NotFound:
        return False
    return True


def crash(api: docker.APIClient, cid: str, signal: str, target: str) -> None:
    """Signal the container's main process from the host, as a crash would end it."""
    try:
        sig = signals.Signals[signal]
    except KeyError as exc:
        raise FaultInjectionFailed(f"unknown signal {signal!r}", target=target) from exc
    pid = int(api.inspect_container(cid)["State"].get("Pid") or 0)
    if pid <= 0:
        return  # no main process: it already exited
    # The pid is in the daemon's PID namespace; make sure it names this container's
    # process here too, so a process in another namespace never gets a stray signal.
    try:
        mine = cid in Path(f"/proc/{pid}/cgroup").read_text(encoding="utf-8")
    except OSError:
        mine = False
    try:
        if not mine:
            raise PermissionError(f"pid {pid} here is not the main process of {cid[:12]}")
        os.kill(pid, sig)
    except ProcessLookupError:
        return  # exited in the meantime: the crash happened anyway
    except PermissionError as exc:
        raise FaultInjectionFailed(f"{exc}: {_CRASH_HELP}", target=target) from exc
