"""`aftershock recover` removes exactly the proxies a SIGKILLed run created on an external Toxiproxy.

Real parts only: a standalone `aftershock proxy` server stands in for an
external Toxiproxy, and `aftershock run` / `aftershock recover` run as
subprocesses. The run's target has `upstream`/`listen`, so aftershock creates
the proxy itself when it is missing; a second target names a proxy the user
created before any run. After every SIGKILL and `recover`, the server's proxy
list must be exactly what it was before the run: the user's proxy untouched,
the provisioned one gone, and a same-named proxy that someone else put there
after the crash left alone.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from aftershock.journal.reading import outstanding
from aftershock.journal.resources import outstanding_resources
from tests.support.docker import free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ROUNDS = 20
SEED = 20261203

EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: provision-me}}
spec:
  targets:
    made: {{toxiproxy: {{api: "{api}", proxy: made, upstream: "127.0.0.1:9", listen: "127.0.0.1:0"}}}}
    users: {{toxiproxy: {{api: "{api}", proxy: user-db, upstream: "{user_upstream}"}}}}
  method:
    - {{name: slow, fault: toxiproxy.latency, target: made, with: {{latency: 50ms}}, at: 300ms, for: 60s}}
    - {{name: cut, fault: toxiproxy.down, target: users, at: 600ms, for: 60s}}
"""


def _proxies(base: str) -> dict[str, Any]:
    answer = httpx.get(f"{base}/proxies", timeout=5)
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def _restore(base: str, before: dict[str, Any]) -> None:
    """Put the server back as it was, so that one failed round does not hide the next."""
    for name, proxy in _proxies(base).items():
        if proxy == before.get(name):
            continue
        httpx.delete(f"{base}/proxies/{name}").raise_for_status()
        if name in before:
            fields = {k: before[name][k] for k in ("name", "listen", "upstream", "enabled")}
            httpx.post(f"{base}/proxies", json=fields).raise_for_status()
            for toxic in before[name]["toxics"]:
                httpx.post(f"{base}/proxies/{name}/toxics", json=toxic).raise_for_status()


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/version", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def _cli(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "aftershock", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_sigkill_after_provisioning_then_recover_leaves_the_server_as_it_was(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "AFTERSHOCK_HOME": str(home)}
    api = free_port()
    base = f"http://127.0.0.1:{api}"
    server = _cli(env, "proxy", "--listen", f"127.0.0.1:{api}")
    try:
        assert wait_for(lambda: _answers(base), timeout=15)
        # The user's own proxy, with a toxic of the user's, there before any run.
        user_upstream = f"127.0.0.1:{free_port()}"
        user = {"name": "user-db", "listen": "127.0.0.1:0", "upstream": user_upstream}
        httpx.post(f"{base}/proxies", json=user).raise_for_status()
        toxic = {"name": "users-own", "type": "latency", "attributes": {"latency": 7}}
        httpx.post(f"{base}/proxies/user-db/toxics", json=toxic).raise_for_status()
        before = _proxies(base)
        exp = tmp_path / "provision.yaml"
        exp.write_text(EXPERIMENT.format(api=base, user_upstream=user_upstream))
        journal_dir = home / "journal"

        rnd = random.Random(SEED)
        leaks: list[str] = []
        states: list[str] = []
        foreign_rounds = 0
        started = time.monotonic()
        for round_ in range(ROUNDS):
            child = _cli(env, "run", str(exp))
            if round_ % 2 == 0:
                # Right after provisioning: as soon as the proxy shows on the server.
                assert wait_for(lambda: "made" in _proxies(base), timeout=20, interval=0.005)
                time.sleep(rnd.uniform(0, 0.05))
            else:
                time.sleep(rnd.uniform(0.2, 2.5))
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
            left = _proxies(base)
            pending = outstanding_resources(journal_dir) if journal_dir.exists() else []
            states.append(",".join(sorted(p.state for p in pending)) or "-")

            foreign = None
            if round_ % 4 == 1:
                # Someone else's config puts a proxy of the same name in place between
                # the crash and `recover` (/populate replaces a differing one).
                entry = {"name": "made", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:7"}
                answer = httpx.post(f"{base}/populate", json=[entry])
                answer.raise_for_status()
                foreign = answer.json()["proxies"][0]
                foreign_rounds += 1

            result = subprocess.run(
                [sys.executable, "-m", "aftershock", "recover"],
                check=False,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert "Traceback" not in result.stderr
            after = _proxies(base)
            if foreign is not None:
                survivor = after.pop("made", None)
                assert survivor == {**foreign, "toxics": []}, (round_, survivor, foreign)
                httpx.delete(f"{base}/proxies/made").raise_for_status()
            if after != before:
                leaks.append(f"round {round_}: left {json.dumps(left)}; after recover {after}")
                _restore(base, before)
            assert outstanding(journal_dir) == []
            assert outstanding_resources(journal_dir) == []
        elapsed = time.monotonic() - started
        print(f"{ROUNDS} rounds in {elapsed:.1f}s; outstanding after the kill: {states}")
        assert not leaks, f"{len(leaks)} of {ROUNDS} rounds left the server changed:\n" + "\n".join(
            leaks
        )
        # The kills must have caught the provisioned proxy journaled, not only start-up.
        assert sum("created" in s or "intent" in s for s in states) >= ROUNDS // 2
        assert foreign_rounds == ROUNDS // 4
        assert _proxies(base) == before
    finally:
        server.terminate()
        server.wait(timeout=10)
