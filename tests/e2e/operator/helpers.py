"""Helpers shared by the operator e2e tests (importable; conftest holds the fixtures)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
NAMESPACE = "aftershock-system"
SA = "aftershock-operator"
GROUP, VERSION = "aftershock.dev", "v1alpha1"
KUBE_HOME = Path(
    os.environ.get("AFTERSHOCK_KUBE_HOME") or Path.home() / ".cache" / "aftershock-kube"
)


def unavailable(reason: str) -> None:
    if os.environ.get("AFTERSHOCK_REQUIRE_KUBE") == "1":
        pytest.fail(f"AFTERSHOCK_REQUIRE_KUBE=1 but {reason}")
    pytest.skip(reason)


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.25) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


async def await_for(check: Callable[[], Any], limit: float, what: str) -> Any:
    """``wait_for`` for async tests: the check runs in a thread, the wait is asyncio's."""
    deadline = time.monotonic() + limit
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit} s waiting for {what}")
        await asyncio.sleep(0.5)


def run_kubectl(kubectl: str, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run kubectl with a kubeconfig; raise with its output on failure."""
    result = subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def operator_argv(identity: str, kubeconfig: Path, lease_duration: float, port: int) -> list[str]:
    """``aftershock operator`` as a replica of the e2e tests runs it, in a process."""
    return [
        sys.executable,
        *("-m", "aftershock", "operator", "--namespace", NAMESPACE),
        *("--identity", identity, "--listen", f"127.0.0.1:{port}"),
        *("--kubeconfig", str(kubeconfig), "--lease-duration", str(lease_duration)),
    ]
