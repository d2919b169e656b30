"""The operator holds a bounded number of connections to the API server.

kopf handles every resource in its own worker; on its default HTTP session each
worker opens its own connection, and each TLS connection holds a 256 KiB read
buffer, so a burst of resources cost the operator memory in proportion. Here an
``aftershock operator`` process (ServiceAccount token) takes a burst of
Experiments created at once, and its established TCP connections to the API
server are counted from ``/proc`` while it schedules them.
"""

from __future__ import annotations

import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes
import pytest

from aftershock.operator.kube import KOPF_CONNECTIONS
from tests.e2e.operator.helpers import GROUP, NAMESPACE, VERSION, operator_argv, wait_for
from tests.support.docker import free_port

pytestmark = [pytest.mark.kube, pytest.mark.slow]

BURST = 120
OWN_CLIENT = 8
"""The operator's own (threaded) client: at most one connection per executor thread."""

_ESTABLISHED = "01"


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir():
        try:
            target = str(fd.readlink())
        except OSError:  # closed between the listing and the read
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def connections_to(pid: int, port: int) -> int:
    """Established TCP connections of ``pid`` whose remote port is ``port``."""
    inodes = _socket_inodes(pid)
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with Path(table).open() as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[3] == _ESTABLISHED and fields[9] in inodes:
                    count += 1
    return count


def experiment(index: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": f"burst-{index:03d}", "namespace": NAMESPACE},
        "spec": {
            "schedule": {"cron": "0 3 * * MON", "timezone": "UTC"},
            "targets": {
                "front": {
                    "toxiproxy": {
                        "api": "embedded",
                        "proxy": f"front{index}",
                        "listen": "127.0.0.1:0",
                        "upstream": "127.0.0.1:9",
                    }
                }
            },
            "probes": {"web": {"http": {"url": "http://127.0.0.1:9/"}, "every": "1s"}},
            "method": [
                {
                    "name": "slow",
                    "fault": "toxiproxy.latency",
                    "target": "front",
                    "with": {"latency": "300ms"},
                    "for": "10s",
                }
            ],
        },
    }


class Sampler(threading.Thread):
    """The peak of :func:`connections_to` over the sampler's life, every 20 ms."""

    def __init__(self, pid: int, port: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.port, self.peak, self.samples = pid, port, 0, 0
        self._stop_sampling = threading.Event()

    def run(self) -> None:
        while not self._stop_sampling.wait(0.02):
            try:
                self.peak = max(self.peak, connections_to(self.pid, self.port))
            except FileNotFoundError:  # the process is gone
                return
            self.samples += 1

    def stop(self) -> None:
        self._stop_sampling.set()
        self.join()


def test_a_burst_of_experiments_uses_a_bounded_number_of_api_connections(
    admin: Any, clean_namespace: None, sa_kubeconfig: Path, tmp_path: Path
) -> None:
    api_port = urlsplit(admin.configuration.host).port or 443
    leases = kubernetes.client.CoordinationV1Api(admin)
    custom = kubernetes.client.CustomObjectsApi(admin)
    with (tmp_path / "operator.log").open("wb") as log:
        process = subprocess.Popen(
            operator_argv("burst", sa_kubeconfig, 6.0, free_port()),
            env={**os.environ, "AFTERSHOCK_HOME": str(tmp_path / "home")},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:

        def leading() -> bool:
            try:
                lease = leases.read_namespaced_lease("aftershock-operator", NAMESPACE)
            except kubernetes.client.ApiException:
                return False
            return bool(lease.spec.holder_identity == "burst")

        wait_for(leading, 60, "the operator to hold the lease")
        sampler = Sampler(process.pid, api_port)
        sampler.start()
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda i: custom.create_namespaced_custom_object(
                        GROUP, VERSION, NAMESPACE, "experiments", experiment(i)
                    ),
                    range(BURST),
                )
            )

        def all_scheduled() -> bool:
            items = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "experiments")
            done = [i for i in items["items"] if (i.get("status") or {}).get("nextRun")]
            return len(done) == BURST

        try:
            wait_for(all_scheduled, 100, f"all {BURST} experiments to have status.nextRun", 0.5)
        finally:
            sampler.stop()
        assert process.poll() is None, (tmp_path / "operator.log").read_text()[-3000:]
        assert sampler.samples > 10
        # kopf's session (its watch streams and requests) and the operator's own client.
        assert 2 <= sampler.peak <= KOPF_CONNECTIONS + OWN_CLIENT, sampler.peak
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
