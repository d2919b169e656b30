"""Target leases as ``coordination.k8s.io`` Leases on a real API server.

Two ``KubeTargetLeases``, each with a client and a run registry (``live``) of
its own, play two operator replicas. They race for one exclusive claim, round
after round, both through ``create`` (no Lease yet) and through ``replace``
(a Lease left by a dead run): the ``resourceVersion`` preconditions must let
exactly one claim win. A refusal names the holder, shared claims coexist, a
dead run's claim is broken by ``hold()`` and by ``break_dead()``, and giving
back the last claim deletes the Lease. The admin client checks the objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aftershock.errors import TargetLeased
from aftershock.operator.kube import KubeAccess
from aftershock.operator.targetleases import (
    CLAIMS,
    ROLE_SELECTOR,
    TARGET,
    KubeTargetLeases,
    lease_name,
)
from aftershock.runtime.stores import TargetClaim

pytestmark = [pytest.mark.kube, pytest.mark.slow]

ROUNDS = 12
PER_REPLICA = 4


@dataclass
class Replica:
    """One replica's view: its own API client and the runs it knows to be alive."""

    kube: KubeAccess
    namespace: str
    live: set[str] = field(default_factory=set)
    leases: KubeTargetLeases = field(init=False)

    def __post_init__(self) -> None:
        self.leases = KubeTargetLeases(self.kube, self.namespace, self.live.__contains__)


class Leases:
    """The admin's view of the namespace's Lease objects."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = client.CoordinationV1Api(api)
        self.namespace = namespace

    def get(self, identity: str) -> dict[str, Any] | None:
        """The Lease of ``identity`` (plain JSON), or ``None`` when there is none."""
        raw: Any
        try:
            raw = self.api.read_namespaced_lease(
                lease_name(identity), self.namespace, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        try:
            found: dict[str, Any] = json.loads(raw.data)
        finally:
            raw.release_conn()
        return found

    def claims(self, identity: str) -> list[tuple[str, bool]]:
        """(run id, shared) of every claim the Lease lists; [] without a Lease."""
        lease = self.get(identity)
        if lease is None:
            return []
        notes = lease["metadata"]["annotations"]
        assert notes[TARGET] == identity
        return sorted((c["run_id"], c["shared"]) for c in json.loads(notes[CLAIMS]))

    def holder(self, identity: str) -> str | None:
        lease = self.get(identity)
        return None if lease is None else str(lease["spec"]["holderIdentity"])

    def delete_all(self) -> None:
        found: Any = self.api.list_namespaced_lease(self.namespace, label_selector=ROLE_SELECTOR)
        for lease in found.items:
            with contextlib.suppress(ApiException):
                self.api.delete_namespaced_lease(lease.metadata.name, self.namespace)


@pytest.fixture
def admin_leases(kube_api: client.ApiClient, namespace: str) -> Iterator[Leases]:
    leases = Leases(kube_api, namespace)
    yield leases
    leases.delete_all()


@pytest.fixture
async def replicas(
    kubeconfig: str, namespace: str, admin_leases: Leases
) -> AsyncIterator[tuple[Replica, Replica]]:
    """Two replicas on the test's namespace, with two clients of their own."""
    del admin_leases  # requested first, so the Leases are deleted after the clients close
    one = Replica(KubeAccess(Path(kubeconfig)), namespace)
    two = Replica(KubeAccess(Path(kubeconfig)), namespace)
    try:
        yield one, two
    finally:
        one.kube.close()
        two.kube.close()


def claim(run_id: str, identity: str, *, shared: bool = False, name: str = "db") -> TargetClaim:
    return TargetClaim(
        run_id=run_id, experiment=f"exp-{run_id}", target=name, keys=(identity,), shared=shared
    )


async def read(admin: Leases, method: str, *args: Any) -> Any:
    """An admin read, off the event loop (the replicas' calls run meanwhile)."""
    return await asyncio.to_thread(getattr(admin, method), *args)


async def race(
    contenders: list[tuple[Replica, str]], identity: str, admin: Leases
) -> tuple[list[str], list[tuple[str, str]], list[str | None]]:
    """Every contender claims ``identity`` at once; a winner holds until all have tried.

    Returns the winners' run ids, (loser, holder named) pairs, and the Lease
    holder the admin saw while each winner held.
    """
    wins: list[str] = []
    refusals: list[tuple[str, str]] = []
    seen: list[str | None] = []
    everyone_tried = asyncio.Event()

    def tried() -> None:
        if len(wins) + len(refusals) == len(contenders):
            everyone_tried.set()

    async def contend(replica: Replica, run_id: str) -> None:
        try:
            async with replica.leases.hold([claim(run_id, identity)]):
                wins.append(run_id)
                tried()
                await everyone_tried.wait()
                seen.append(await read(admin, "holder", identity))
        except TargetLeased as exc:
            refusals.append((run_id, exc.holder))
            tried()

    await asyncio.wait_for(
        asyncio.gather(*(contend(replica, run_id) for replica, run_id in contenders)),
        timeout=30,
    )
    return wins, refusals, seen


async def test_exactly_one_claim_of_two_racing_replicas_wins_each_round(
    replicas: tuple[Replica, Replica], admin_leases: Leases
) -> None:
    one, two = replicas
    identity = "k8s:shop/Deployment/checkout"
    for round_ in range(ROUNDS):
        contenders = [
            (replica, f"r{round_}-{side}{index}")
            for index in range(PER_REPLICA)
            for side, replica in (("a", one), ("b", two))
        ]
        for replica in (one, two):
            # Both replicas know every contender to be alive (a split brain, or a handover).
            replica.live.update(run_id for _, run_id in contenders)
        left_behind = None
        if round_ % 2:
            # A run that died holding the target: its Lease stays, so the race is on replace.
            dead = f"r{round_}-dead"
            one.live.add(dead)
            left_behind = one.leases.hold([claim(dead, identity)])
            await left_behind.__aenter__()
            one.live.discard(dead)
            assert await read(admin_leases, "holder", identity) == dead
        else:
            assert await read(admin_leases, "get", identity) is None

        wins, refusals, seen = await race(contenders, identity, admin_leases)
        assert len(wins) == 1, (round_, wins, refusals)
        (winner,) = wins
        assert seen == [winner]
        assert sorted(holder for _, holder in refusals) == [winner] * (len(contenders) - 1)
        # The winner gave its claim back: the Lease is gone.
        assert await read(admin_leases, "get", identity) is None
        if left_behind is not None:
            await left_behind.__aexit__(None, None, None)
        one.live.clear()
        two.live.clear()


async def test_a_refusal_names_the_holder_and_all_or_none_holds(
    replicas: tuple[Replica, Replica], admin_leases: Leases
) -> None:
    one, two = replicas
    one.live.update({"run-a", "run-b"})
    two.live.update({"run-a", "run-b"})
    db, cache = "docker:default/name/db", "docker:default/name/cache"
    async with one.leases.hold([claim("run-a", db)]):
        lease = await read(admin_leases, "get", db)
        assert lease is not None
        assert lease["metadata"]["labels"] == {"aftershock.dev/role": "target-lease"}
        assert lease["spec"]["holderIdentity"] == "run-a"
        wanted = [claim("run-b", cache, name="cache"), claim("run-b", db, name="primary")]
        with pytest.raises(TargetLeased, match="target 'primary' is leased by run run-a") as no:
            async with two.leases.hold(wanted):
                pytest.fail("a second exclusive claim was granted")
        assert (no.value.holder, no.value.target) == ("run-a", "primary")
        # The claim taken before the refusal was given back; the holder's is untouched.
        assert await read(admin_leases, "get", cache) is None
        assert await read(admin_leases, "claims", db) == [("run-a", False)]
    assert await read(admin_leases, "get", db) is None


async def test_shared_claims_coexist_in_one_lease(
    replicas: tuple[Replica, Replica], admin_leases: Leases
) -> None:
    one, two = replicas
    runs = {"run-a", "run-b", "run-c"}
    one.live.update(runs)
    two.live.update(runs)
    proxy = "toxiproxy:http://127.0.0.1:8474/front"
    async with one.leases.hold([claim("run-a", proxy, shared=True)]):
        async with two.leases.hold([claim("run-b", proxy, shared=True)]):
            assert await read(admin_leases, "claims", proxy) == [
                ("run-a", True),
                ("run-b", True),
            ]
            assert await read(admin_leases, "holder", proxy) == "shared"
            with pytest.raises(TargetLeased, match="which shares it") as no:
                async with one.leases.hold([claim("run-c", proxy)]):
                    pytest.fail("an exclusive claim was granted over shared ones")
            assert no.value.holder in {"run-a", "run-b"}
            assert {c.run_id for c in await one.leases.held()} == {"run-a", "run-b"}
        # Giving back one claim keeps the Lease for the other.
        assert await read(admin_leases, "claims", proxy) == [("run-a", True)]
    assert await read(admin_leases, "get", proxy) is None


async def test_a_dead_run_s_claim_is_broken_by_hold(
    replicas: tuple[Replica, Replica], admin_leases: Leases
) -> None:
    one, two = replicas
    identity = "process:ready/127.0.0.1:8080"
    for replica in (one, two):
        replica.live.add("crashed")
    left_behind = one.leases.hold([claim("crashed", identity)])
    await left_behind.__aenter__()
    try:
        two.live.add("mine")
        with pytest.raises(TargetLeased, match="leased by run crashed"):
            async with two.leases.hold([claim("mine", identity)]):
                pytest.fail("granted over the claim of a live run")
        assert [c.run_id for c in await two.leases.held()] == ["crashed"]
        # The run dies without giving its claim back: no replica lists it as alive any more.
        for replica in (one, two):
            replica.live.discard("crashed")
        assert await read(admin_leases, "claims", identity) == [("crashed", False)]
        # Still in the Lease, but no longer held: healers do not stand back for a dead run.
        assert await one.leases.held() == []
        assert await two.leases.held() == []
        async with two.leases.hold([claim("mine", identity)]):
            assert await read(admin_leases, "claims", identity) == [("mine", False)]
            assert await read(admin_leases, "holder", identity) == "mine"
        assert await read(admin_leases, "get", identity) is None
    finally:
        await left_behind.__aexit__(None, None, None)
    assert await read(admin_leases, "get", identity) is None


async def test_break_dead_removes_dead_runs_claims_and_their_empty_leases(
    replicas: tuple[Replica, Replica], admin_leases: Leases
) -> None:
    one, two = replicas
    shared, alone = "k8s:shop/selector/app=cart", "k8s:shop/Node/worker-1"
    for replica in (one, two):
        replica.live.update({"dead", "survivor"})
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(one.leases.hold([claim("survivor", shared, shared=True)]))
        crashed = one.leases.hold(
            [claim("dead", shared, shared=True), claim("dead", alone, name="node")]
        )
        await crashed.__aenter__()
        stack.push_async_callback(crashed.__aexit__, None, None, None)
        assert await read(admin_leases, "claims", shared) == [("dead", True), ("survivor", True)]
        assert await read(admin_leases, "claims", alone) == [("dead", False)]

        # Nothing is dead yet: nothing is broken.
        assert await two.leases.break_dead() == []
        for replica in (one, two):
            replica.live.discard("dead")
        assert [c.run_id for c in await two.leases.held()] == ["survivor"]
        broken = await two.leases.break_dead()
        assert sorted((c.run_id, c.target) for c in broken) == [("dead", "db"), ("dead", "node")]
        assert await read(admin_leases, "claims", shared) == [("survivor", True)]
        assert await read(admin_leases, "get", alone) is None
        assert await two.leases.break_dead() == []
    assert await read(admin_leases, "get", shared) is None
