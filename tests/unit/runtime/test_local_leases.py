"""This host's target leases and run registry, with real processes and real ``flock``.

Target identities decide which targets overlap; ``LocalTargetLeases`` refuses
a conflicting claim naming the holder, lets shared claims coexist, takes all
claims or none, breaks the claims of a SIGKILLed holder, and lets exactly one
of many processes racing for one target win. ``LocalRunRegistry`` says a run is
live while some process holds it, and not after that process exits or dies.

The other processes are workers started with ``python -c`` that take commands
on stdin, one per line, and answer on stdout:

``hold <run id> <key> exclusive|shared``
    ``won <run id>`` then wait for a line (``release``) and answer ``released``;
    or ``refused <holder run id>``.
``alive <run id>``
    ``alive``, then wait for a line (``end``) and answer ``ended``.
``live <run id>``
    ``live`` or ``dead``.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aftershock.errors import TargetLeased
from aftershock.model.targets import TargetSpec
from aftershock.runtime.local import LocalRunRegistry, LocalTargetLeases
from aftershock.runtime.stores import TargetClaim

WORKER = r"""
import asyncio
import sys
from pathlib import Path

from aftershock.errors import TargetLeased
from aftershock.runtime.local import LocalRunRegistry, LocalTargetLeases
from aftershock.runtime.stores import TargetClaim

home = Path(sys.argv[1])
leases = LocalTargetLeases(home)
runs = LocalRunRegistry(home)


def say(*words):
    print(*words, flush=True)


async def main():
    say("ready")
    while line := sys.stdin.readline():
        command, *args = line.split()
        if command == "hold":
            run_id, key, how = args
            claim = TargetClaim(
                run_id=run_id, experiment="worker", target="t", keys=(key,), shared=how == "shared"
            )
            try:
                async with leases.hold([claim]):
                    say("won", run_id)
                    sys.stdin.readline()
            except TargetLeased as exc:
                say("refused", exc.holder)
                continue
            say("released")
        elif command == "alive":
            with runs.alive(args[0]):
                say("alive")
                sys.stdin.readline()
            say("ended")
        elif command == "live":
            say("live" if runs.live(args[0]) else "dead")


asyncio.run(main())
"""


class Worker:
    """One worker process on a ``$AFTERSHOCK_HOME``; its answers arrive through a queue."""

    def __init__(self, home: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(home)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read_all, daemon=True)
        self._reader.start()

    def _read_all(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.strip())

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def answer(self, timeout: float = 30) -> str:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"worker {self.proc.pid} did not answer within {timeout} s")

    def ask(self, line: str) -> str:
        self.send(line)
        return self.answer()

    def kill(self) -> None:
        """SIGKILL, reaped: whatever it held, the kernel has released."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        self._reader.join(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def workers(home: Path) -> Iterator[Any]:
    """``workers(n)`` starts n workers on ``home`` (all ready); every one is killed after."""
    started: list[Worker] = []

    def start(count: int = 1) -> list[Worker]:
        batch = [Worker(home) for _ in range(count)]
        started.extend(batch)
        for worker in batch:
            assert worker.answer() == "ready"
        return batch

    yield start
    for worker in started:
        worker.close()


def target(**body: Any) -> TargetSpec:
    return TargetSpec.model_validate(body)


def overlap(a: TargetSpec, b: TargetSpec) -> bool:
    return bool(set(a.identities()) & set(b.identities()))


def claim(run_id: str, *keys: str, shared: bool = False, name: str = "db") -> TargetClaim:
    return TargetClaim(
        run_id=run_id, experiment=f"exp-{run_id}", target=name, keys=keys, shared=shared
    )


def lease_files(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "leases").glob("*.json"))


# ---------------------------------------------------------------- identities
def test_one_proxy_on_one_api_overlaps_and_other_names_do_not() -> None:
    api = "http://127.0.0.1:8474"
    front = target(toxiproxy={"api": api, "proxy": "front"})
    assert overlap(front, target(toxiproxy={"api": api + "/", "proxy": "front"}))
    assert not overlap(front, target(toxiproxy={"api": api, "proxy": "back"}))
    assert not overlap(front, target(toxiproxy={"api": "http://127.0.0.1:9474", "proxy": "front"}))


def test_an_embedded_proxy_is_identified_by_its_listen_address() -> None:
    def embedded(listen: str, proxy: str = "front") -> TargetSpec:
        return target(
            toxiproxy={
                "api": "embedded",
                "proxy": proxy,
                "listen": listen,
                "upstream": "127.0.0.1:5432",
            }
        )

    here = embedded("127.0.0.1:15432")
    assert overlap(here, embedded("127.0.0.1:15432"))
    assert not overlap(here, embedded("127.0.0.1:15433"))
    # Not the same proxy as one of that name on a Toxiproxy server.
    assert not overlap(here, target(toxiproxy={"api": "http://127.0.0.1:8474", "proxy": "front"}))


def test_containers_overlap_by_name_label_set_or_pattern_as_written() -> None:
    by_name = target(docker={"names": ["db", "cache"]})
    assert overlap(by_name, target(docker={"names": ["cache"]}))
    assert not overlap(by_name, target(docker={"names": ["web"]}))
    assert not overlap(by_name, target(docker={"names": ["db"], "host": "tcp://10.0.0.2:2375"}))
    labels = target(docker={"labels": {"app": "db", "tier": "data"}})
    assert overlap(labels, target(docker={"labels": {"tier": "data", "app": "db"}}))
    assert not overlap(labels, target(docker={"labels": {"app": "db"}}))
    # A name and a label set are not compared: they may or may not pick the same container.
    assert not overlap(by_name, target(docker={"labels": {"app": "db"}}))
    assert overlap(target(docker={"pattern": "^db-"}), target(docker={"pattern": "^db-"}))
    assert not overlap(target(docker={"pattern": "^db-"}), by_name)


def test_kubernetes_objects_overlap_by_kind_and_name_or_by_selector() -> None:
    deployment = target(kubernetes={"namespace": "shop", "kind": "Deployment", "name": "checkout"})
    assert overlap(
        deployment,
        target(kubernetes={"namespace": "shop", "kind": "Deployment", "name": "checkout"}),
    )
    assert not overlap(
        deployment, target(kubernetes={"namespace": "shop", "kind": "Deployment", "name": "cart"})
    )
    assert not overlap(
        deployment,
        target(kubernetes={"namespace": "dev", "kind": "Deployment", "name": "checkout"}),
    )
    selector = target(kubernetes={"namespace": "shop", "selector": "app=checkout"})
    assert overlap(selector, target(kubernetes={"namespace": "shop", "selector": "app=checkout"}))
    # A kind/name and a selector are not compared, even when they pick the same pods.
    assert not overlap(deployment, selector)
    both = target(
        kubernetes={
            "namespace": "shop",
            "kind": "Deployment",
            "name": "checkout",
            "selector": "app=checkout",
        }
    )
    assert overlap(both, deployment)
    assert overlap(both, selector)


def test_a_supervised_process_is_identified_by_ready_address_or_argv() -> None:
    ready = target(process={"command": ["a"], "ready": "127.0.0.1:8080"})
    assert overlap(ready, target(process={"command": ["b"], "ready": "127.0.0.1:8080"}))
    assert not overlap(ready, target(process={"command": ["a"], "ready": "127.0.0.1:8081"}))
    argv = target(process={"command": ["python3", "-m", "http.server"]})
    assert overlap(argv, target(process={"command": ["python3", "-m", "http.server"]}))
    assert not overlap(argv, target(process={"command": ["python3", "-m", "http.server", "81"]}))


# ---------------------------------------------------------------- conflicts
async def test_an_exclusive_claim_refuses_another_naming_the_holder(home: Path) -> None:
    leases = LocalTargetLeases(home)
    async with leases.hold([claim("run-a", "k")]):
        with pytest.raises(TargetLeased, match="leased by run run-a") as refused:
            async with leases.hold([claim("run-b", "k", name="primary")]):
                pytest.fail("a second exclusive claim was granted")
        assert (refused.value.holder, refused.value.target) == ("run-a", "primary")
        assert [c.run_id for c in await leases.held()] == ["run-a"]
        # An exclusive claim refuses a shared one too.
        with pytest.raises(TargetLeased) as shared:
            async with leases.hold([claim("run-c", "k", shared=True)]):
                pytest.fail("a shared claim was granted over an exclusive one")
        assert shared.value.holder == "run-a"
        # A claim on another key is no conflict.
        async with leases.hold([claim("run-d", "other")]):
            assert {c.run_id for c in await leases.held()} == {"run-a", "run-d"}
    assert await leases.held() == []
    assert lease_files(home) == []


async def test_shared_claims_coexist_and_refuse_an_exclusive_one(home: Path) -> None:
    leases = LocalTargetLeases(home)
    async with (
        leases.hold([claim("run-a", "k", shared=True)]),
        leases.hold([claim("run-b", "k", shared=True)]),
    ):
        assert sorted(c.run_id for c in await leases.held()) == ["run-a", "run-b"]
        with pytest.raises(TargetLeased, match="which shares it") as refused:
            async with leases.hold([claim("run-c", "k")]):
                pytest.fail("an exclusive claim was granted over shared ones")
        assert refused.value.holder in {"run-a", "run-b"}
    assert await leases.held() == []


async def test_claims_are_taken_all_or_none(home: Path) -> None:
    leases = LocalTargetLeases(home)
    async with leases.hold([claim("other", "db-key")]):
        wanted = [claim("mine", "cache-key", name="cache"), claim("mine", "db-key", name="db")]
        with pytest.raises(TargetLeased) as refused:
            async with leases.hold(wanted):
                pytest.fail("a run was granted a target another run holds")
        assert (refused.value.holder, refused.value.target) == ("other", "db")
        # The claim that did not conflict is not left held either.
        assert [(c.run_id, c.keys) for c in await leases.held()] == [("other", ("db-key",))]
        assert lease_files(home) == ["other.json"]
        async with leases.hold([claim("third", "cache-key")]):
            pass


# ---------------------------------------------------------------- other processes
async def test_a_sigkilled_holder_s_claim_is_broken_by_the_next_hold(
    home: Path, workers: Any
) -> None:
    (holder,) = workers(1)
    assert holder.ask("hold dead-run k exclusive") == "won dead-run"
    leases = LocalTargetLeases(home)
    with pytest.raises(TargetLeased) as refused:
        async with leases.hold([claim("mine", "k")]):
            pytest.fail("granted while another process holds the target")
    assert refused.value.holder == "dead-run"
    assert [c.run_id for c in await leases.held()] == ["dead-run"]
    holder.kill()
    # Its file is still there, but nobody holds it: not listed, and broken by the next hold.
    assert lease_files(home) == ["dead-run.json"]
    assert await leases.held() == []
    async with leases.hold([claim("mine", "k")]):
        assert lease_files(home) == ["mine.json"]
        assert [c.run_id for c in await leases.held()] == ["mine"]
    assert lease_files(home) == []


async def test_a_holder_in_another_process_refuses_until_it_releases(
    home: Path, workers: Any
) -> None:
    (holder,) = workers(1)
    assert holder.ask("hold theirs k shared") == "won theirs"
    leases = LocalTargetLeases(home)
    async with leases.hold([claim("mine", "k", shared=True)]):
        assert sorted(c.run_id for c in await leases.held()) == ["mine", "theirs"]
    with pytest.raises(TargetLeased, match="leased by run theirs"):
        async with leases.hold([claim("mine", "k")]):
            pytest.fail("an exclusive claim was granted over a shared one in another process")
    assert holder.ask("release") == "released"
    async with leases.hold([claim("mine", "k")]):
        pass


def test_exactly_one_of_many_racing_processes_wins_each_round(home: Path, workers: Any) -> None:
    racers = workers(8)
    for round_ in range(10):
        for index, worker in enumerate(racers):
            worker.send(f"hold r{round_}-w{index} contested exclusive")
        answers = [worker.answer().split() for worker in racers]
        winners = [
            (worker, words[1])
            for worker, words in zip(racers, answers, strict=True)
            if words[0] == "won"
        ]
        assert len(winners) == 1, answers
        ((winner, winner_id),) = winners
        refusals = [words for words in answers if words[0] != "won"]
        assert refusals == [["refused", winner_id]] * 7, answers
        assert lease_files(home) == [f"{winner_id}.json"]
        assert winner.ask("release") == "released"
        assert lease_files(home) == []


# ---------------------------------------------------------------- the run registry
def test_a_run_is_live_while_its_process_holds_it(home: Path, workers: Any) -> None:
    runs = LocalRunRegistry(home)
    other, killed = workers(2)
    assert not runs.live("never-ran")
    with runs.alive("mine"):
        assert runs.live("mine")
        assert other.ask("live mine") == "live"
    assert not runs.live("mine")
    assert other.ask("live mine") == "dead"

    assert other.ask("alive theirs") == "alive"
    assert runs.live("theirs")
    assert other.ask("end") == "ended"
    assert not runs.live("theirs")

    assert killed.ask("alive doomed") == "alive"
    assert runs.live("doomed")
    killed.kill()
    # The lock file is left behind, but nobody holds it.
    assert (home / "runs" / "doomed.lock").exists()
    assert not runs.live("doomed")
    assert other.ask("live doomed") == "dead"
