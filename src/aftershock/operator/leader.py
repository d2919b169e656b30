"""Leader election on a ``coordination.k8s.io/v1`` Lease: only one replica acts.

The algorithm is client-go's: read the lease; if it is ours, renew it; if it is
free, or its record has not changed for ``leaseDurationSeconds`` as seen on
*our* monotonic clock (so clock skew between nodes does not matter), take it.
Every write is a ``replace`` carrying the ``resourceVersion`` that was read, so
two replicas racing for the same lease get one success and one 409.

A leader that cannot renew for ``renew_deadline`` steps down on its own, before
the lease can expire for the others: there is never a moment where two
replicas both believe they lead (given ``renew_deadline < lease_duration``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from aftershock.errors import DriverUnavailable
from aftershock.operator.kube import KubeAccess, KubeConflict, KubeNotFound, micro_time

__all__ = ["LeaseElector"]

_log = structlog.get_logger("aftershock.operator.leader")


class LeaseElector:
    """Acquires and renews one Lease; ``leading`` is set while this replica holds it."""

    def __init__(
        self,
        kube: KubeAccess,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_every: float = 5.0,
        renew_deadline: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_every = renew_every
        self.retry_every = min(renew_every, 1.0)
        """How often a follower reads the lease (client-go's retryPeriod)."""
        self.renew_deadline = renew_deadline
        self._monotonic = monotonic
        self.leading = asyncio.Event()
        """Set while this replica holds the lease."""
        self.following = asyncio.Event()
        """Set while it does not (the opposite of ``leading``)."""
        self.following.set()
        self.contacted = False
        """True once the API server answered at least once (readiness)."""
        self.holder: str | None = None
        """The holder seen at the last read."""
        self._observed: tuple[str | None, float] = (None, 0.0)
        self._renewed_at = 0.0

    # ------------------------------------------------------------ the loop
    async def run(self, stop: asyncio.Event) -> None:
        """Renew every ``renew_every`` while leading; while following, try every
        ``retry_every`` (at most ``renew_every``), so a dead leader's lease is seen
        expiring soon after it does; until ``stop``; then release."""
        try:
            while not stop.is_set():
                await self.attempt()
                with contextlib.suppress(TimeoutError):
                    period = self.renew_every if self.leading.is_set() else self.retry_every
                    await asyncio.wait_for(stop.wait(), timeout=period)
        finally:
            if self.leading.is_set():
                self._step_down("stopping")
                with contextlib.suppress(Exception):
                    await self.release()

    async def attempt(self) -> bool:
        """One acquire-or-renew round; returns whether this replica leads afterwards."""
        try:
            won = await self._try()
            self.contacted = True
        except (DriverUnavailable, OSError) as exc:
            _log.warning("lease unavailable", error=str(exc))
            won = self.leading.is_set() and (
                self._monotonic() - self._renewed_at < self.renew_deadline
            )
        if won:
            self._renewed_at = self._monotonic()
            if not self.leading.is_set():
                _log.info("became leader", identity=self.identity, lease=self.name)
                self.following.clear()
                self.leading.set()
        elif self.leading.is_set():
            self._step_down("lost the lease")
        return won

    def _step_down(self, why: str) -> None:
        _log.warning("stepped down", identity=self.identity, reason=why)
        self.leading.clear()
        self.following.set()

    # ------------------------------------------------------------ one round
    def _body(self, old: dict[str, Any] | None, *, acquire: bool) -> dict[str, Any]:
        now = micro_time(datetime.now(UTC))
        spec = dict((old or {}).get("spec") or {})
        transitions = int(spec.get("leaseTransitions") or 0)
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=round(self.lease_duration),
            renewTime=now,
        )
        if acquire:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = transitions + 1 if old is not None else 0
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if old is not None:
            metadata["resourceVersion"] = old["metadata"]["resourceVersion"]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    async def _try(self) -> bool:
        try:
            lease = await self.kube.read_lease(self.namespace, self.name)
        except KubeNotFound:
            try:
                await self.kube.create_lease(self.namespace, self._body(None, acquire=True))
            except KubeConflict:
                return False
            self.holder = self.identity
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or None
        self.holder = holder
        version = str(lease["metadata"]["resourceVersion"])
        now = self._monotonic()
        if self._observed[0] != version:
            self._observed = (version, now)
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        expired = now - self._observed[1] >= duration
        if holder not in (None, self.identity) and not expired:
            return False
        try:
            updated = await self.kube.replace_lease(
                self.namespace, self.name, self._body(lease, acquire=holder != self.identity)
            )
        except KubeConflict:
            return False
        self._observed = (str(updated["metadata"]["resourceVersion"]), self._monotonic())
        self.holder = self.identity
        return True

    async def release(self) -> None:
        """Give the lease up so a standby takes over at once instead of after 15 s."""
        lease = await self.kube.read_lease(self.namespace, self.name)
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != self.identity:
            return
        body = self._body(lease, acquire=False)
        body["spec"].update(holderIdentity=None, leaseDurationSeconds=1)
        with contextlib.suppress(KubeConflict):
            await self.kube.replace_lease(self.namespace, self.name, body)
