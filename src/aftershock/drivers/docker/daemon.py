"""The Docker SDK side of the Docker driver: clients, error translation, container state.

Everything here is synchronous and runs in a worker thread (``asyncio.to_thread``
in ``aftershock.drivers.docker.driver``). ``_translated`` turns SDK errors into
aftershock's tree at the edge; ``_wait_running``, ``_ensure_running`` and
``_crash`` are the container operations the driver composes.
"""

from __future__ import annotations

import os
import signal as signals
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import docker
import docker.errors
import requests

from aftershock.errors import (
    AftershockError,
    DriverUnavailable,
    FaultInjectionFailed,
    RevertFailed,
    TargetNotFound,
)
from aftershock.model.targets import DockerTarget, TargetSpec

__all__ = ["DEFAULT_HOST", "READY_TIMEOUT"]

READY_TIMEOUT: Final = 30.0
"""Seconds a revert or action waits for a started container to be running."""
DEFAULT_HOST: Final = "unix:///var/run/docker.sock"
_CRASH_HELP: Final = (
    "docker.crash signals the container's main process from the host, so aftershock "
    "must run on the Docker host, as root, in the daemon's PID namespace; "
    "use docker.kill otherwise"
)


def _default_client(host: str) -> docker.DockerClient:
    if host.startswith("unix://"):
        # The SDK leaks the socket of a failed unix connect (a ResourceWarning at some
        # later GC); probing with a socket we close ourselves keeps that path clean.
        path = host.removeprefix("unix://")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(5)
            try:
                probe.connect(path)
            except OSError as exc:
                msg = f"cannot connect to {path}: {exc.strerror or exc}"
                raise docker.errors.DockerException(msg) from exc
    # A short HTTP timeout keeps a hung daemon from outlasting the retry budget;
    # stop/restart add their grace period to it in the SDK.
    return docker.DockerClient(base_url=host, timeout=15)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


@contextmanager
def _translated(phase: str, target: str, host: str) -> Iterator[None]:
    """Turn SDK errors into aftershock's tree; ``phase`` is apply or revert."""
    try:
        yield
    except AftershockError:
        raise
    except docker.errors.NotFound as exc:
        msg = f"container not found on {host}: {_one_line(exc)}"
        raise TargetNotFound(msg, target=target) from exc
    except (docker.errors.APIError, TimeoutError) as exc:
        cls = RevertFailed if phase == "revert" else FaultInjectionFailed
        raise cls(f"Docker daemon {host}: {_one_line(exc)}", target=target) from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        # Both the SDK (version probe at connect) and requests (later calls) report
        # an unreachable daemon; the message stays one line for the terminal.
        msg = f"Docker daemon {host} is unreachable: {_one_line(exc)}"
        raise DriverUnavailable(msg, target=target) from exc


def _resolve(target: TargetSpec, name: str) -> tuple[DockerTarget, str]:
    """The docker part of a target and its daemon URL (recorded, so recover uses the same)."""
    if target.docker is None:
        raise FaultInjectionFailed(f"not a docker target ({target.kind.value})", target=name)
    return target.docker, target.docker.host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def _is_running(state: Mapping[str, Any]) -> bool:
    return bool(state.get("Running")) and not state.get("Restarting")


def _wait_running(api: docker.APIClient, cid: str, timeout: float = READY_TIMEOUT) -> None:
    """Poll until the container runs (or is gone); ``TimeoutError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = api.inspect_container(cid)["State"]
        except docker.errors.NotFound:
            return
        if _is_running(state):
            return
        if time.monotonic() >= deadline:
            msg = f"container {cid[:12]} not running after {timeout:.0f}s ({state.get('Status')})"
            raise TimeoutError(msg)
        time.sleep(0.1)  # in a worker thread: the event loop is not blocked


def _ensure_running(api: docker.APIClient, cid: str) -> None:
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
    _wait_running(api, cid)


def _exists(api: docker.APIClient, cid: str) -> bool:
    try:
        api.inspect_container(cid)
    except docker.errors.NotFound:
        return False
    return True


def _crash(api: docker.APIClient, cid: str, sig: signals.Signals, target: str) -> None:
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
