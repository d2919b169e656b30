"""Target leases in the cluster: one ``coordination.k8s.io/v1`` Lease per target identity.

A run claims each identity of each of its targets
(:meth:`~aftershock.model.targets.TargetSpec.identities`) in a Lease named
``aftershock-target-<sha256 of the identity, 16 hex>`` in the operator's
namespace, labelled ``aftershock.dev/role: target-lease``. The Lease lists its
claims in the annotation ``aftershock.dev/claims`` (JSON; several only when
every one of them is shared) and names the identity in
``aftershock.dev/target``; ``holderIdentity`` is the exclusive holder's run id,
or ``shared``.

Every write carries the ``resourceVersion`` read (create: 409 if another run
was first; replace and delete: 409 if it changed), so two runs, even on two
replicas, never both get an exclusive claim. A claim whose run is not alive in
the run registry is broken, not obeyed: only the leader runs experiments, and
a new leader's runs are the only live ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Final

from aftershock.errors import DriverUnavailable, TargetLeased
from aftershock.operator.kube import KubeAccess, KubeConflict, KubeNotFound
from aftershock.runtime.local import leased_message
from aftershock.runtime.stores import TargetClaim

__all__ = ["CLAIMS", "ROLE_SELECTOR", "KubeTargetLeases", "lease_name"]

CLAIMS: Final = "aftershock.dev/claims"
TARGET: Final = "aftershock.dev/target"
HOLDER: Final = "aftershock.dev/holder"
"""The run registry holder (operator process) that last wrote the Lease."""
ROLE_SELECTOR: Final = "aftershock.dev/role=target-lease"
_RETRIES: Final = 8


def lease_name(identity: str) -> str:
    """The Lease of one target identity."""
    return "aftershock-target-" + hashlib.sha256(identity.encode()).hexdigest()[:16]


def _claims(lease: dict[str, Any]) -> list[TargetClaim]:
    notes = (lease.get("metadata") or {}).get("annotations") or {}
    try:
        return [TargetClaim.from_json(item) for item in json.loads(notes.get(CLAIMS) or "[]")]
    except (ValueError, TypeError):
        return []


class KubeTargetLeases:
    """``TargetLeases`` as Lease objects; ``live`` says which run ids are alive."""

    def __init__(
        self, kube: KubeAccess, namespace: str, live: Callable[[str], bool], *, holder: str = ""
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.live = live
        self.holder = holder

    def _body(
        self, identity: str, claims: Sequence[TargetClaim], version: str | None
    ) -> dict[str, Any]:
        exclusive = [c for c in claims if not c.shared]
        metadata: dict[str, Any] = {
            "name": lease_name(identity),
            "namespace": self.namespace,
            "labels": {"aftershock.dev/role": "target-lease"},
            "annotations": {
                TARGET: identity,
                CLAIMS: json.dumps([c.to_json() for c in claims]),
                HOLDER: self.holder,
            },
        }
        if version is not None:
            metadata["resourceVersion"] = version
        holder = exclusive[0].run_id if exclusive else "shared"
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {"holderIdentity": holder},
        }

    async def _take(self, identity: str, mine: TargetClaim) -> None:
        name = lease_name(identity)
        for _ in range(_RETRIES):
            try:
                lease = await self.kube.read_lease(self.namespace, name)
            except KubeNotFound:
                try:
                    await self.kube.create_lease(self.namespace, self._body(identity, [mine], None))
                except KubeConflict:
                    continue
                return
            alive = [c for c in _claims(lease) if c.run_id != mine.run_id and self.live(c.run_id)]
            for other in alive:
                if mine.conflicts(other):
                    raise TargetLeased(
                        leased_message(mine, other), holder=other.run_id, target=mine.target
                    )
            version = str(lease["metadata"]["resourceVersion"])
            try:
                await self.kube.replace_lease(
                    self.namespace, name, self._body(identity, [*alive, mine], version)
                )
            except (KubeConflict, KubeNotFound):
                continue
            return
        msg = f"target lease {name}: still conflicting after {_RETRIES} tries"
        raise DriverUnavailable(msg)

    async def _give_back(self, identity: str, run_id: str) -> None:
        name = lease_name(identity)
        for _ in range(_RETRIES):
            try:
                lease = await self.kube.read_lease(self.namespace, name)
            except KubeNotFound:
                return
            version = str(lease["metadata"]["resourceVersion"])
            rest = [c for c in _claims(lease) if c.run_id != run_id and self.live(c.run_id)]
            try:
                if rest:
                    body = self._body(identity, rest, version)
                    await self.kube.replace_lease(self.namespace, name, body)
                else:
                    await self.kube.delete_lease(self.namespace, name, version=version)
            except KubeConflict:
                continue
            return

    @contextlib.asynccontextmanager
    async def hold(self, claims: Sequence[TargetClaim]) -> AsyncIterator[None]:
        """Take every claim (all or none) for the block."""
        taken: list[tuple[str, str]] = []
        try:
            for claim in claims:
                for identity in claim.keys:
                    await self._take(identity, claim)
                    taken.append((identity, claim.run_id))
            yield
        finally:
            for identity, run_id in reversed(taken):
                with contextlib.suppress(DriverUnavailable, OSError):
                    await self._give_back(identity, run_id)

    async def held(self) -> list[TargetClaim]:
        """Every claim of a live run in the namespace's target Leases.

        A Lease written by this process holds claims this process can judge: one
        of a run that is not alive here (it ended, and giving the claim back
        failed) is not held, so healers do not stand back for it. A Lease written
        by another process (the leader, seen from a replica that heals a shard)
        is that process's to judge: its claims count until it gives them back or
        a new leader breaks them (``break_dead``).
        """
        found: list[TargetClaim] = []
        for lease in await self.kube.list_leases(self.namespace, ROLE_SELECTOR):
            notes = (lease.get("metadata") or {}).get("annotations") or {}
            ours = notes.get(HOLDER, "") == self.holder
            found.extend(c for c in _claims(lease) if not ours or self.live(c.run_id))
        return found

    async def break_dead(self) -> list[TargetClaim]:
        """Remove the claims of runs that are not alive; return them (a new leader's cleanup)."""
        broken: list[TargetClaim] = []
        for lease in await self.kube.list_leases(self.namespace, ROLE_SELECTOR):
            identity = ((lease.get("metadata") or {}).get("annotations") or {}).get(TARGET)
            dead = [c for c in _claims(lease) if not self.live(c.run_id)]
            if identity is None or not dead:
                continue
            for claim in {c.run_id: c for c in dead}.values():
                await self._give_back(str(identity), claim.run_id)
            broken.extend(dead)
        return broken
