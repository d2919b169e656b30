"""HealingPolicies are spread over the live replicas, and a dead replica's share moves.

Three ``aftershock operator`` processes (ServiceAccount token, a home each) and
30 HealingPolicies, each watching its own path of one test HTTP server on
127.0.0.1 that counts the requests per path: the count shows that every
endpoint is probed by one replica at a time, before and after a SIGKILL.
"""

from __future__ import annotations

import collections
import http.server
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from tests.e2e.operator.helpers import GROUP, NAMESPACE, VERSION, operator_argv, wait_for
from tests.support.docker import free_port

pytestmark = [pytest.mark.kube, pytest.mark.slow]

POLICIES = 30
LEASE = 6.0


class Counting(http.server.ThreadingHTTPServer):
    """Answers 200 on every path and keeps each request's (path, time)."""

    daemon_threads = True

    def __init__(self, port: int) -> None:
        self.hits: list[tuple[str, float]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with server.lock:
                    server.hits.append((self.path, time.monotonic()))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: Any) -> None:
                return

        super().__init__(("127.0.0.1", port), Handler)

    def rates(self, since: float, until: float) -> dict[str, int]:
        with self.lock:
            return dict(collections.Counter(p for p, t in self.hits if since <= t < until))


@pytest.fixture
def endpoints() -> Iterator[Counting]:
    server = Counting(free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def policy(index: int, port: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HealingPolicy",
        "metadata": {"name": f"shard-{index}", "namespace": NAMESPACE},
        "spec": {
            "targets": {"svc": {"process": {"command": ["sleep", "600"]}}},
            "watch": {
                "web": {
                    "http": {"url": f"http://127.0.0.1:{port}/ep/{index}", "timeout": "500ms"},
                    "every": "1s",
                    "target": "svc",
                }
            },
            "playbooks": [
                {
                    "name": "noop",
                    "when": {"unhealthy": "web"},
                    "steps": [{"action": "command", "with": {"command": ["true"]}}],
                }
            ],
        },
    }


def watched_by(admin: Any) -> dict[str, str | None]:
    items = kubernetes.client.CustomObjectsApi(admin).list_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "healingpolicies"
    )["items"]
    return {
        i["metadata"]["name"]: (i.get("status") or {}).get("watchedBy")
        for i in items
        if i["metadata"]["name"].startswith("shard-")
    }


@pytest.mark.timeout(300)
def test_policies_are_spread_and_a_dead_replicas_share_moves(
    admin: Any,
    clean_namespace: None,
    sa_kubeconfig: Path,
    endpoints: Counting,
    tmp_path: Path,
) -> None:
    port = endpoints.server_address[1]
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs = []
    try:
        for identity in ("op-a", "op-b", "op-c"):
            log = (tmp_path / f"{identity}.log").open("wb")
            logs.append(log)
            processes[identity] = subprocess.Popen(
                operator_argv(identity, sa_kubeconfig, LEASE, free_port()),
                env={**os.environ, "AFTERSHOCK_HOME": str(tmp_path / identity)},
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        custom = kubernetes.client.CustomObjectsApi(admin)
        for index in range(POLICIES):
            custom.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, "healingpolicies", policy(index, port)
            )

        def spread() -> dict[str, str | None] | None:
            found = watched_by(admin)
            return found if len(found) == POLICIES and all(found.values()) else None

        owners = wait_for(spread, 60, "every policy watched")
        shares = collections.Counter(owners.values())
        assert set(shares) == set(processes), shares
        assert all(5 <= n <= 15 for n in shares.values()), shares
        # one replica per endpoint: every 1 s, so about 8 requests in 8 s, never 16
        time.sleep(2)
        start = time.monotonic()
        time.sleep(8)
        rates = endpoints.rates(start, time.monotonic())
        assert len(rates) == POLICIES, sorted(rates)
        assert max(rates.values()) <= 10, rates

        victim = max(shares, key=lambda k: shares[k])
        moved = sorted(name for name, who in owners.items() if who == victim)
        processes[victim].send_signal(signal.SIGKILL)
        processes[victim].wait(timeout=10)
        killed = time.monotonic()

        def taken_over() -> bool:
            now = watched_by(admin)
            return all(now[name] not in (None, victim) for name in moved)

        wait_for(taken_over, LEASE + 20, "the dead replica's policies to move")
        took = time.monotonic() - killed
        assert took <= LEASE + 5, f"its policies moved {took:.1f} s after the SIGKILL"
        after = watched_by(admin)
        for name, who in owners.items():
            if who != victim:
                assert after[name] == who, f"{name} moved from a live replica"
        time.sleep(3)
        start = time.monotonic()
        time.sleep(8)
        rates = endpoints.rates(start, time.monotonic())
        assert len(rates) == POLICIES, sorted(rates)
        assert max(rates.values()) <= 10, rates
        print(f"shares {dict(shares)}; {len(moved)} policies moved {took:.1f} s after SIGKILL")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()
