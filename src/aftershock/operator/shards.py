"""HealingPolicies spread over every live replica; experiments stay with the leader.

**Membership.** Each replica holds a Lease of its own, ``aftershock-member-<identity>``
(label ``aftershock.dev/role: member``), renewed at every sync. A member is
alive while its Lease keeps changing: a Lease not renewed for
``leaseDuration``, as seen on the observer's monotonic clock (client-go's rule,
so clock skew does not matter), is a dead member's. A replica that stops
cleanly deletes its Lease, so the others take its share at their next sync.

**Shards.** The owner of policy ``namespace/name`` is the live member with the
highest ``sha256(member, key)`` (rendezvous hashing, a consistent hash: when a
member comes or goes, only the policies it gains or loses move). Each replica
runs the healers of the policies it owns, and stops those it no longer owns;
the policy's ``status.watchedBy`` names it.

**Handover.** When a replica dies, its policies move once its Lease has gone
unrenewed for ``leaseDuration`` (plus one sync). A replica that joins waits
``2 x sync`` before it heals anything, so the previous owners, which drop the
policies it gains at their next sync, have stopped first: one endpoint is not
probed by two replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import structlog

from aftershock.errors import DriverUnavailable
from aftershock.operator.kube import KubeAccess, KubeConflict, KubeNotFound, micro_time

__all__ = ["MEMBER_SELECTOR", "Membership", "ShardedHealers", "Stopper", "owner"]

MEMBER_SELECTOR: Final = "aftershock.dev/role=member"
POLICIES: Final = "healingpolicies"

_log = structlog.get_logger("aftershock.operator.shards")


def owner(key: str, members: Sequence[str]) -> str | None:
    """The member that heals ``key`` (rendezvous hashing); ``None`` without members."""
    if not members:
        return None
    return max(members, key=lambda m: hashlib.sha256(f"{m}\0{key}".encode()).digest())


def member_lease(identity: str) -> str:
    """The Lease name of a member (identities are pod names: already DNS labels)."""
    return f"aftershock-member-{identity}"[:253]


class Membership:
    """This replica's member Lease, and who else is alive."""

    def __init__(
        self,
        kube: KubeAccess,
        namespace: str,
        identity: str,
        *,
        lease_duration: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.identity = identity
        self.lease_duration = lease_duration
        self._monotonic = monotonic
        self._seen: dict[str, tuple[str, float]] = {}

    def _body(self, version: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": member_lease(self.identity),
            "namespace": self.namespace,
            "labels": {"aftershock.dev/role": "member"},
        }
        if version is not None:
            metadata["resourceVersion"] = version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": max(1, round(self.lease_duration)),
                "renewTime": micro_time(datetime.now(UTC)),
            },
        }

    async def renew(self) -> None:
        """Create or renew this replica's Lease."""
        name = member_lease(self.identity)
        try:
            lease = await self.kube.read_lease(self.namespace, name)
        except KubeNotFound:
            with contextlib.suppress(KubeConflict):
                await self.kube.create_lease(self.namespace, self._body(None))
            return
        with contextlib.suppress(KubeConflict):
            version = str(lease["metadata"]["resourceVersion"])
            await self.kube.replace_lease(self.namespace, name, self._body(version))

    async def members(self) -> list[str]:
        """The live members, this one included, sorted."""
        now = self._monotonic()
        alive = {self.identity}
        seen: dict[str, tuple[str, float]] = {}
        for lease in await self.kube.list_leases(self.namespace, MEMBER_SELECTOR):
            holder = (lease.get("spec") or {}).get("holderIdentity")
            if not holder:
                continue
            version = str(lease["metadata"]["resourceVersion"])
            before = self._seen.get(str(holder))
            since = before[1] if before is not None and before[0] == version else now
            seen[str(holder)] = (version, since)
            if now - since < self.lease_duration:
                alive.add(str(holder))
        self._seen = seen
        return sorted(alive)

    async def leave(self) -> None:
        """Delete this replica's Lease (a clean stop: its share moves at once)."""
        name = member_lease(self.identity)
        with contextlib.suppress(KubeNotFound, KubeConflict, DriverUnavailable):
            lease = await self.kube.read_lease(self.namespace, name)
            await self.kube.delete_lease(
                self.namespace, name, version=str(lease["metadata"]["resourceVersion"])
            )


class Stopper:
    """What a policy's healer loop waits on: set when this replica stops healing it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        """Stop."""
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109 - kopf DaemonStopped shape
        """Wait until stopped, at most ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


Heal = Callable[[Mapping[str, Any], Stopper], Any]
"""``OperatorState.heal``: run one policy's healer until stopped."""


class ShardedHealers:
    """Runs the healers of the policies this replica owns; one task per policy."""

    def __init__(
        self,
        kube: KubeAccess,
        membership: Membership,
        heal: Heal,
        *,
        namespace: str,
        sync_every: float = 2.0,
    ) -> None:
        self.kube = kube
        self.membership = membership
        self.heal = heal
        self.namespace = namespace
        self.sync_every = sync_every
        self.members: list[str] = []
        self.owned: list[str] = []
        self._running: dict[str, tuple[asyncio.Task[None], Stopper, dict[str, Any]]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Sync every ``sync_every`` until ``stop``; then stop every healer and leave."""
        joined = time.monotonic()
        try:
            while not stop.is_set():
                settled = time.monotonic() - joined >= 2 * self.sync_every
                try:
                    await self.sync(heal=settled)
                except (DriverUnavailable, OSError, KeyError, TypeError) as exc:
                    _log.warning("shard sync failed", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.sync_every)
        finally:
            await self._stop(list(self._running))
            await self.membership.leave()

    async def sync(self, *, heal: bool = True) -> None:
        """Renew membership, read the policies, start and stop healers to match."""
        await self.membership.renew()
        self.members = await self.membership.members()
        listed = await asyncio.to_thread(self.kube.list_objects, POLICIES, self.namespace)
        me = self.membership.identity
        mine: dict[str, dict[str, Any]] = {}
        for item in listed:
            meta = item.get("metadata") or {}
            key = f"{meta.get('namespace')}/{meta.get('name')}"
            if owner(key, self.members) == me and not meta.get("deletionTimestamp"):
                mine[key] = item
        self.owned = sorted(mine) if heal else []
        gone = [k for k in self._running if k not in mine or not heal or self._running[k][0].done()]
        await self._stop(gone)
        if not heal:
            return
        for key, item in mine.items():
            if key in self._running:
                body = self._running[key][2]
                body.clear()
                body.update(item)  # the healer loop sees spec changes in its body
                continue
            body, stopper = dict(item), Stopper()
            task = asyncio.create_task(self._guarded(key, body, stopper), name=f"heal:{key}")
            self._running[key] = (task, stopper, body)

    async def _guarded(self, key: str, body: dict[str, Any], stopper: Stopper) -> None:
        try:
            await self.heal(body, stopper)
        except Exception:  # noqa: BLE001 - one policy's crash must not end the others
            _log.exception("healer crashed; restarted at the next sync", policy=key)

    async def _stop(self, keys: Sequence[str]) -> None:
        entries = [self._running.pop(k) for k in keys if k in self._running]
        for _, stopper, _ in entries:
            stopper.set()
        for task, _, _ in entries:
            try:
                await asyncio.wait_for(asyncio.shield(task), 30)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
