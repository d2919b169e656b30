"""The Docker daemon, seen from the driver: clients, the target's daemon URL, errors translated.

Everything here is synchronous and runs in a worker thread (``asyncio.to_thread``
in ``driver``). ``translated`` turns SDK errors into aftershock's tree at the
edge, the SDK's exception chained as the cause:

* the daemon cannot be reached → ``DriverUnavailable``;
* a container is gone → ``TargetNotFound``;
* the daemon refuses → ``FaultInjectionFailed`` (apply) or ``RevertFailed`` (revert).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Literal

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

__all__ = ["DEFAULT_HOST", "Phase", "default_client", "one_line", "resolve", "translated"]

DEFAULT_HOST: Final = "unix:///var/run/docker.sock"
Phase = Literal["apply", "revert"]


def default_client(host: str) -> docker.DockerClient:
    """A client for the daemon at ``host``; an unreachable unix socket fails here, cleanly."""
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


def one_line(exc: BaseException) -> str:
    """An exception as one bounded line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


@contextmanager
def translated(phase: Phase, target: str, host: str) -> Iterator[None]:
    """Turn SDK errors into aftershock's tree; ``phase`` is apply or revert."""
    try:
        yield
    except AftershockError:
        raise
    except docker.errors.NotFound as exc:
        msg = f"container not found on {host}: {one_line(exc)}"
        raise TargetNotFound(msg, target=target) from exc
    except (docker.errors.APIError, TimeoutError) as exc:
        cls = RevertFailed if phase == "revert" else FaultInjectionFailed
        raise cls(f"Docker daemon {host}: {one_line(exc)}", target=target) from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        # Both the SDK (version probe at connect) and requests (later calls) report
        # an unreachable daemon; the message stays one line for the terminal.
        msg = f"Docker daemon {host} is unreachable: {one_line(exc)}"
        raise DriverUnavailable(msg, target=target) from exc


def resolve(target: TargetSpec, name: str) -> tuple[DockerTarget, str]:
    """The docker part of a target and its daemon URL (recorded, so recover uses the same)."""
    if target.docker is None:
        raise FaultInjectionFailed(f"not a docker target ({target.kind.value})", target=name)
    return target.docker, target.docker.host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
