"""A dry run of every file in ``experiments/`` touches nothing, with its backends up.

Each file is copied with its addresses rewritten to this test's: ports on
127.0.0.1 to free ports, Toxiproxy's ``127.0.0.1:8474`` to an ``aftershock
proxy`` server started here (holding the proxies the file names, except one
the file would create), container names to containers of this test on the
private Docker daemon, the Kubernetes namespace and node to a fresh namespace
(with the Deployment the file names) and a Node of this test. Then it runs
through the real CLI in a subprocess with ``AFTERSHOCK_HOME`` in tmp:

* an Experiment file: ``aftershock run --dry-run`` (``--name`` for each
  experiment of a multi-document file); it must exit 0 and print one ``would
  apply`` line per method step, naming what it would touch;
* a HealingPolicy file: ``aftershock heal --dry-run``, its watched service
  down, until its first playbook has run in dry-run mode, then SIGTERM.

The world is listed before and after (processes with the file's ports on their
command line, listening sockets on those ports, containers with state and
restart count, proxies with their toxics, Kubernetes objects with their
resourceVersions) and must be equal; processes and listening sockets are also
watched while the command runs, so something started and stopped again within
the run shows too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.docker import free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
PROXIES = ("checkout-db", "catalog-api", "search-backend")
"""Proxies the files expect on their Toxiproxy server; ``redis`` is left missing on purpose."""
CONTAINERS = ("checkout-api-1", "checkout-api-2", "checkout-worker", "checkout-web", "orders")


@dataclass(frozen=True, slots=True)
class Coverage:
    """How one file of ``experiments/`` is dry-run, and which backends it needs."""

    command: str  # "run" or "heal"
    needs: frozenset[str] = frozenset()
    companions: tuple[str, ...] = ()
    """Other files of ``experiments/`` it reads (a ``healingPolicy``)."""
    playbooks: tuple[str, ...] = ()
    """For ``heal``: playbooks that must have run (in dry-run mode) before it is stopped."""


COVERAGE: dict[str, Coverage] = {
    "closed-loop.yaml": Coverage("run", frozenset(), companions=("healing-process.yaml",)),
    "docker-crash-restart-policy.yaml": Coverage("run", frozenset({"docker"})),
    "docker-kill-and-pause.yaml": Coverage("run", frozenset({"docker"})),
    "healing-docker.yaml": Coverage("heal", frozenset({"docker"}), playbooks=("revive-api",)),
    "healing-process.yaml": Coverage("heal", frozenset(), playbooks=("revive-web",)),
    "healing-proxy-and-k8s.yaml": Coverage(
        "heal", frozenset({"toxiproxy", "kube"}), playbooks=("replace-a-pod",)
    ),
    "kubernetes-pod-delete.yaml": Coverage("run", frozenset({"kube"})),
    "probes.yaml": Coverage("run"),
    "process-kill.yaml": Coverage("run"),
    "scheduled-weekly.yaml": Coverage("run", frozenset({"toxiproxy"})),
    "toxiproxy-latency.yaml": Coverage("run", frozenset({"toxiproxy"})),
    "toxiproxy-network-faults.yaml": Coverage("run", frozenset({"toxiproxy"})),
    "toxiproxy-outage.yaml": Coverage("run", frozenset({"toxiproxy"})),
}

KNOWN_BUGS: dict[str, str] = {}


def test_every_file_in_experiments_is_covered() -> None:
    assert sorted(COVERAGE) == sorted(p.name for p in EXPERIMENTS.iterdir() if p.is_file())


# ---------------------------------------------------------------- the world


def _listening(ports: set[int]) -> list[str]:
    """``host:port`` of every listening TCP socket on one of ``ports``."""
    found: list[str] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), Path(table).open(encoding="ascii") as rows:
            for row in list(rows)[1:]:
                cols = row.split()
                address, _, port = cols[1].rpartition(":")
                if cols[3] == "0A" and int(port, 16) in ports:  # 0A: LISTEN
                    found.append(f"{address}:{int(port, 16)}")
    return sorted(found)


def _processes(ports: set[int]) -> list[str]:
    """``pid argv`` of every process with one of ``ports`` as an argument."""
    words = {str(p) for p in ports}
    found: list[str] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in {"Z", "X"} and words & {a.rpartition(":")[2] for a in argv}:
            found.append(f"{entry.name} {' '.join(argv).strip()}")
    return sorted(found)


class Watcher:
    """Samples processes and listening sockets on the test's ports while a command runs."""

    def __init__(self, ports: set[int]) -> None:
        self.ports = ports
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.seen.update(_processes(self.ports), _listening(self.ports))

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class World:
    """The backends of one file, and how to list them."""

    home: Path
    ports: dict[int, int] = field(default_factory=dict)
    """Port in the file → this test's port."""
    env: dict[str, str] = field(default_factory=dict)
    listers: dict[str, Callable[[], Any]] = field(default_factory=dict)
    replace: list[tuple[str, str | Callable[[re.Match[str]], str]]] = field(default_factory=list)
    """Further rewrites (pattern, replacement) of the files' text."""

    def snapshot(self) -> dict[str, Any]:
        ports = set(self.ports.values())
        base = {"processes": _processes(ports), "listening": _listening(ports)}
        return base | {name: lister() for name, lister in self.listers.items()}

    def rewrite(self, text: str) -> str:
        """The file's text with this world's names and ports."""
        for pattern, repl in self.replace:
            text = re.sub(pattern, repl, text)
        for port in sorted({int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", text)}):
            self.ports.setdefault(port, free_port())
        # Each address's port, and the same number wherever else it stands alone
        # (a command's argv: http.server "8080").
        return re.sub(
            r"(?<![\d.])(\d{2,5})(?!\d)",
            lambda m: str(self.ports.get(int(m.group(1)), m.group(1))),
            text,
        )


def _toxiproxy(world: World, tmp_path: Path, stack: contextlib.ExitStack) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    log = (tmp_path / "proxy.log").open("wb")
    stack.callback(log.close)
    server = subprocess.Popen(
        [sys.executable, "-m", "aftershock", "proxy", "--listen", f"127.0.0.1:{port}"],
        env={**os.environ, "AFTERSHOCK_HOME": str(tmp_path / "proxy-home")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def stop() -> None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    stack.callback(stop)

    def answers() -> bool:
        try:
            return httpx.get(f"{api}/version", timeout=0.5, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    assert wait_for(answers, timeout=20), (tmp_path / "proxy.log").read_text()
    for name in PROXIES:
        body = {"name": name, "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{free_port()}"}
        httpx.post(f"{api}/proxies", json=body, trust_env=False).raise_for_status()

    def proxies() -> Any:
        return httpx.get(f"{api}/proxies", timeout=5, trust_env=False).json()

    world.listers["proxies"] = proxies
    world.ports[8474] = port


def _docker(world: World, request: pytest.FixtureRequest) -> None:
    factory = request.getfixturevalue("container_factory")
    world.env["DOCKER_HOST"] = request.getfixturevalue("docker_host")
    client = request.getfixturevalue("docker_client")
    for name in CONTAINERS:
        factory(name, restart="on-failure" if name == "orders" else None)
    prefix = factory.prefix

    def containers() -> Any:
        found = client.containers.list(all=True, filters={"label": f"aftershock.test={prefix}"})
        return {
            c.name: {
                "id": c.id,
                "state": c.attrs["State"],
                "restarts": c.attrs["RestartCount"],
            }
            for c in found
        }

    def names(match: re.Match[str]) -> str:
        listed = [n.strip() for n in match.group(1).split(",")]
        return "names: [" + ", ".join(f"{prefix}-{n}" for n in listed) + "]"

    world.listers["containers"] = containers
    world.replace.append((r"names: \[([^\]]*)\]", names))


def _kube(world: World, request: pytest.FixtureRequest) -> None:
    kube = request.getfixturevalue("kube")
    world.env["KUBECONFIG"] = request.getfixturevalue("kubeconfig")
    node = f"ast-node-{secrets.token_hex(4)}"
    kube.node(node)
    kube.ready_deployment("checkout", replicas=2)

    def objects() -> Any:
        listed: dict[str, Any] = {}
        for kind, items in (
            ("Deployment", [kube.read("Deployment", "checkout")]),
            ("ReplicaSet", kube.replicasets()),
            ("Pod", kube.pods()),
            ("Node", [kube.read("Node", node)]),
        ):
            for obj in items:
                meta = obj["metadata"]
                listed[f"{kind}/{meta['name']}"] = {
                    "uid": meta["uid"],
                    "resourceVersion": meta["resourceVersion"],
                    "spec": obj.get("spec"),
                }
        return listed

    # Until the controllers have finished reacting to the new objects.
    last: list[Any] = [None]

    def settled() -> bool:
        now = objects()
        same = bool(now == last[0])
        last[0] = now
        return same

    assert wait_for(settled, timeout=30, interval=0.3)
    world.listers["kubernetes"] = objects
    world.replace += [(r"namespace: shop", f"namespace: {kube.namespace}"), ("worker-1", node)]


# ---------------------------------------------------------------- running


def _aftershock(world: World, *args: str, **popen: Any) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        **world.env,
        "AFTERSHOCK_HOME": str(world.home),
        "COLUMNS": "400",  # one line per "would apply", however long the resources
        "NO_COLOR": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "aftershock", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _steps(document: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    spec = document["spec"]
    return [(s["name"], s["fault"], spec["targets"][s["target"]]) for s in spec["method"]]


def _names_what(line: str, target: Mapping[str, Any], world: World) -> bool:
    """Does a ``would apply`` line name the resource the target selects?"""
    resources = line.split(" to ", 1)[1]
    if "toxiproxy" in target:
        body = target["toxiproxy"]
        api = "http://127.0.0.1:" if body["api"] == "embedded" else body["api"]
        return f"{api}" in resources and f"/proxies/{body['proxy']}" in resources
    if "docker" in target:
        containers = world.listers["containers"]()
        ids = {seen["id"] for name, seen in containers.items() if name in target["docker"]["names"]}
        return any(cid in resources for cid in ids)
    if "kubernetes" in target:
        body = target["kubernetes"]
        if body.get("kind") == "Node":
            return resources == f"Node/{body['name']}"
        return f"/{body['namespace']}/" in resources
    return resources.startswith("process:")


def _dry_run_experiments(world: World, path: Path, before: Mapping[str, Any]) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d["kind"] == "Experiment"]
    assert documents, f"{path.name} holds no Experiment"
    for document in documents:
        name = ["--name", document["metadata"]["name"]] if len(documents) > 1 else []
        with Watcher(set(world.ports.values())) as watcher:
            child = _aftershock(world, "run", str(path), "--dry-run", *name)
            out, err = child.communicate(timeout=90)
        assert child.returncode == 0, f"exit {child.returncode}\n{out}\n{err}"
        lines = out.splitlines()
        for step, fault, target in _steps(document):
            said = [ln.strip() for ln in lines if ln.strip().startswith(f"{step}: would apply ")]
            assert said, f"no 'would apply' line for {step}:\n{out}"
            assert said[-1].startswith(f"{step}: would apply {fault} to "), said
            assert _names_what(said[-1], target, world), (said[-1], target)
        started = watcher.seen - {*before["processes"], *before["listening"]}
        assert not started, f"started during the dry run: {sorted(started)}"


def _dry_run_policy(
    world: World, path: Path, playbooks: tuple[str, ...], before: Mapping[str, Any]
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    audit = world.home / "audit" / "healer.jsonl"

    def decided() -> set[str]:
        """Playbooks the healer decided to run, in dry-run mode (from its audit log)."""
        found: set[str] = set()
        lines = audit.read_text().splitlines() if audit.exists() else []
        for line in lines:
            with contextlib.suppress(json.JSONDecodeError):  # a line being written
                event = json.loads(line)
                if event.get("kind") == "healer.decision" and event.get("decision") == "dry-run":
                    found.add(event["playbook"])
        return found

    untouched = {*before["processes"], *before["listening"]}

    def done(watcher: Watcher) -> bool:
        return (
            set(playbooks) <= decided()
            or child.poll() is not None
            or bool(watcher.seen - untouched)
        )

    with Watcher(set(world.ports.values())) as watcher:
        child = _aftershock(world, "heal", str(path), "--dry-run", "--listen", listen)
        try:
            wait_for(lambda: done(watcher), timeout=40, interval=0.1)
        finally:
            child.send_signal(signal.SIGTERM)
            out, err = child.communicate(timeout=30)
    started = watcher.seen - untouched
    assert not started, f"started while healing in dry-run mode: {sorted(started)}"
    assert child.returncode == 0, f"exit {child.returncode}\n{out}\n{err}"
    assert set(playbooks) <= decided(), f"no dry-run decision for {playbooks}:\n{err}"


@pytest.fixture
def prepared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[World, Path]]:
    """The file's backends up, and its copy (and its companions') with rewritten addresses."""
    name: str = request.param
    coverage = COVERAGE[name]
    world = World(home=tmp_path / "home")
    with contextlib.ExitStack() as stack:
        if "toxiproxy" in coverage.needs:
            _toxiproxy(world, tmp_path, stack)
        if "docker" in coverage.needs:
            _docker(world, request)
        if "kube" in coverage.needs:
            _kube(world, request)
        copies = tmp_path / "experiments"
        copies.mkdir()
        for file in (name, *coverage.companions):
            (copies / file).write_text(world.rewrite((EXPERIMENTS / file).read_text()))
        yield world, copies / name


def _params() -> list[Any]:
    params = []
    for name in sorted(COVERAGE):
        marks: list[pytest.MarkDecorator] = []
        needs = COVERAGE[name].needs
        if "docker" in needs:
            marks.append(pytest.mark.docker)
        if "kube" in needs:
            marks.append(pytest.mark.kube)
        if name in KNOWN_BUGS:
            marks.append(pytest.mark.xfail(reason=KNOWN_BUGS[name], strict=True))
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.mark.parametrize("prepared", _params(), indirect=True)
def test_dry_run_touches_nothing(prepared: tuple[World, Path]) -> None:
    world, path = prepared
    coverage = COVERAGE[path.name]
    before = world.snapshot()
    if coverage.command == "run":
        _dry_run_experiments(world, path, before)
    else:
        _dry_run_policy(world, path, coverage.playbooks, before)
    assert world.snapshot() == before
