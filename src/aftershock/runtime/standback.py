"""Standing back: a daemon's healers leave alone the targets running experiments hold.

An experiment run leases its targets (``runtime.stores.TargetLeases``). A
healer stands back on a leased target, pausing every playbook on it, unless
the experiment lets healers act (``spec.healing: allow`` or
``expect.healedBy``, recorded on the claim as ``healers``); the pause reason
names the run and the experiment, and the healer's status shows it. When the
lease is released (or the run changes its mind) the healer resumes.

``StandBack`` holds the claims last read and, per healer, what it stands back
on. A daemon's ``HealerHost`` reads the leases before a healer's first sample
and then every ``PAUSE_POLL_SECONDS`` (:meth:`StandBack.follow`); a failed
read keeps the last claims.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Final

import structlog

from aftershock.healer import Healer
from aftershock.runtime.stores import TargetClaim, TargetLeases

__all__ = ["PAUSE_POLL_SECONDS", "StandBack"]

PAUSE_POLL_SECONDS: Final = 1.0
"""How often a daemon's host reads the target leases of running experiments."""

_log = structlog.get_logger("aftershock.heal")


class StandBack:
    """Pauses healers on the targets that runs hold; resumes them when released."""

    def __init__(self, leases: TargetLeases) -> None:
        self.leases = leases
        self._claims: list[TargetClaim] = []
        self._paused: dict[int, dict[str, str]] = {}
        """Per healer (by id): each target it stands back on, and why."""

    async def read(self) -> None:
        """Read the claims of running experiments; a failed read keeps the last ones."""
        try:
            self._claims = await self.leases.held()
        except Exception as exc:  # noqa: BLE001 - a failed read keeps the last claims
            _log.warning("cannot read target leases", error=str(exc))

    async def follow(self, healers: Callable[[], Iterable[Healer]]) -> None:
        """Read the leases and apply them to ``healers()`` every poll, until cancelled."""
        while True:
            await self.read()
            for healer in healers():
                self.apply(healer)
            await asyncio.sleep(PAUSE_POLL_SECONDS)

    def apply(self, healer: Healer) -> None:
        """Pause the healer on the targets runs hold (and resume the ones released)."""
        wanted: dict[str, str] = {}
        for name, target in healer.policy.spec.targets.items():
            keys = set(target.identities())
            for claim in self._claims:
                if not claim.healers and keys & set(claim.keys):
                    wanted[name] = (
                        f"target leased by run {claim.run_id} (experiment {claim.experiment!r},"
                        " which does not let healers act: spec.healing or expect.healedBy)"
                    )
                    break
        current = self._paused.setdefault(id(healer), {})
        ended = [name for name in current if name not in wanted]
        if ended:
            healer.resume(ended)
        for name, why in wanted.items():
            if current.get(name) != why:
                if name in current:
                    healer.resume([name])
                healer.pause([name], why)
        self._paused[id(healer)] = wanted

    def forget(self, healer: Healer) -> None:
        """Drop what the healer stood back on (it stopped)."""
        self._paused.pop(id(healer), None)
