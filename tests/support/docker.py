"""Pytest plugin: a real Docker daemon for tests that need one.

``docker_host`` is the daemon URL: ``$DOCKER_HOST`` when it answers, otherwise the
private daemon of ``scripts/dockerd.sh`` (started here when running as root with
dockerd installed). Without a daemon the test is skipped with the reason, unless
``AFTERSHOCK_REQUIRE_DOCKER=1`` (CI), where it fails: CI never passes by skipping.

Containers come from ``container_factory``: host networking (no bridge in the
private daemon), names prefixed per test, removed with force at teardown. The
image is busybox-static imported as ``aftershock-test/busybox:latest``; it serves
``/www/index.html`` ("aftershock-test ok") with ``httpd``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from docker.models.containers import Container

__all__ = [
    "IMAGE",
    "ContainerFactory",
    "free_port",
    "http_ok",
    "wait_for",
]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "dockerd.sh"
IMAGE = "aftershock-test/busybox:latest"
PAGE = b"aftershock-test ok"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_ok(port: int, *, timeout: float = 0.5) -> bool:
    """Does 127.0.0.1:port serve the test page right now?"""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/index.html")
        response = conn.getresponse()
        return response.status == 200 and PAGE in response.read()
    except OSError:
        return False
    finally:
        conn.close()


def wait_for(
    predicate: Callable[[], bool], *, timeout: float = 15.0, interval: float = 0.1
) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _unavailable(reason: str) -> None:
    message = f"Docker daemon not available: {reason}"
    if os.environ.get("AFTERSHOCK_REQUIRE_DOCKER") == "1":
        pytest.fail(f"{message} (AFTERSHOCK_REQUIRE_DOCKER=1)", pytrace=False)
    pytest.skip(message)


def _why_not(url: str) -> str | None:
    """``None`` when the daemon at ``url`` answers a ping, else why not (one line)."""
    try:
        client = docker.DockerClient(base_url=url, timeout=5)
    except docker.errors.DockerException as exc:
        return " ".join(str(exc).split())
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        return " ".join(str(exc).split())
    finally:
        client.close()
    return None


def _run_script(*args: str, env: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """Run scripts/dockerd.sh; return (DOCKER_HOST url or None, the last lines of stderr)."""
    try:
        done = subprocess.run(
            ["bash", str(SCRIPT), *args],
            capture_output=True,
            text=True,
            timeout=110,
            check=False,
            env={**os.environ, **(env or {})},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    tail = " | ".join(done.stderr.strip().splitlines()[-5:])
    for line in done.stdout.splitlines():
        if done.returncode == 0 and line.startswith("DOCKER_HOST="):
            return line.partition("=")[2].strip(), tail
    return None, f"scripts/dockerd.sh {' '.join(args)} exited {done.returncode}: {tail}"


@pytest.fixture(scope="session")
def docker_host() -> str:
    """The URL of a Docker daemon that answers (skip, or fail in CI, without one)."""
    reasons: list[str] = []
    env_url = os.environ.get("DOCKER_HOST")
    if env_url:
        why = _why_not(env_url)
        if why is None:
            return env_url
        reasons.append(f"DOCKER_HOST={env_url} does not answer: {why}")
    required = os.environ.get("AFTERSHOCK_REQUIRE_DOCKER") == "1"
    if os.geteuid() != 0:
        reasons.append("not root, so no private dockerd can be started")
    elif shutil.which("dockerd") is None and not required:
        reasons.append("dockerd is not installed (scripts/dockerd.sh start installs it)")
    else:
        # When Docker is required the script may also install it (root, apt-get).
        url, detail = _run_script("start")
        if url is not None and _why_not(url) is None:
            return url
        reasons.append(detail)
    _unavailable("; ".join(reasons))
    raise AssertionError  # unreachable: skip or fail raised


@pytest.fixture(scope="session")
def docker_client(docker_host: str) -> Iterator[docker.DockerClient]:
    """A Docker SDK client on ``docker_host``, closed at the end of the session."""
    client = docker.DockerClient(base_url=docker_host, timeout=60)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def busybox_image(docker_host: str, docker_client: docker.DockerClient) -> str:
    """The test image name; built by scripts/dockerd.sh when the daemon lacks it."""
    try:
        docker_client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        url, detail = _run_script("image", env={"DOCKER_HOST": docker_host})
        if url is None:
            _unavailable(f"cannot build {IMAGE}: {detail}")
    return IMAGE


class ContainerFactory:
    """Creates test containers from the busybox image; ``cleanup`` removes them all."""

    def __init__(self, client: docker.DockerClient, image: str, prefix: str) -> None:
        self.client = client
        self.image = image
        self.prefix = prefix
        """Every container name starts with this (``ast-<test>-<random>``)."""
        self.created: list[Container] = []

    def __call__(
        self,
        name: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
        port: int | None = None,
        restart: str | None = None,
        **run_kwargs: Any,
    ) -> Container:
        """Run a container named ``<prefix>-<name>``.

        With ``port`` and no ``command`` it runs ``httpd`` on 127.0.0.1:port and
        waits until the page answers; without either it sleeps. ``restart`` is a
        restart policy name (``always``, ``on-failure``, ``unless-stopped``);
        ``run_kwargs`` go to ``containers.run`` as they are (``mounts``, ...).
        """
        full = f"{self.prefix}-{name or len(self.created)}"
        if command is None:
            command = (
                ["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"]
                if port is not None
                else ["sleep", "3600"]
            )
        kwargs: dict[str, Any] = dict(run_kwargs)
        if restart is not None:
            kwargs["restart_policy"] = {"Name": restart}
        container: Container = self.client.containers.run(
            self.image,
            list(command),
            name=full,
            labels={"aftershock.test": self.prefix, **(labels or {})},
            network_mode="host",
            detach=True,
            **kwargs,
        )
        self.created.append(container)
        if port is not None and not wait_for(lambda: http_ok(port), timeout=10):
            pytest.fail(f"container {full} does not serve 127.0.0.1:{port}")
        container.reload()
        return container

    def cleanup(self) -> None:
        """Remove every container of this test, including ones made behind our back."""
        leftovers = self.client.containers.list(
            all=True, filters={"label": f"aftershock.test={self.prefix}"}
        )
        for container in {c.id: c for c in [*self.created, *leftovers]}.values():
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


@pytest.fixture
def container_factory(
    request: pytest.FixtureRequest, docker_client: docker.DockerClient, busybox_image: str
) -> Iterator[ContainerFactory]:
    """Make containers for one test; they are force-removed when it ends."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:24].strip("-")
    factory = ContainerFactory(docker_client, busybox_image, f"ast-{slug}-{secrets.token_hex(3)}")
    try:
        yield factory
    finally:
        factory.cleanup()
