"""The operator's healing state, in each HealingPolicy's status.

What ``aftershock heal`` keeps in ``healer.sqlite3`` (each playbook's attempt
times and backoff, the policy's disruption times, each target's circuit
breaker) the operator keeps in the policy's ``status.healing``, so neither a
pod restart nor a new leader refills ``maxAttempts``, ends a cooldown early
or closes an open breaker::

    status:
      healing:
        playbooks:
          restart-api: {attempts: [1764900000.5], failures: 0, nextAt: null, lastDelay: null}
        breakers:
          api: {phase: open, failures: 3, openedAt: 1764900100.0, trialAt: null, escalated: true}
        disruptions: [1764900000.5]

Times are epoch seconds (the healer's wall clock). Every save replaces
``.status`` with the ``resourceVersion`` read (``KubeAccess.update_status``),
so it never overwrites the handlers' other status fields. A save is one API
call on the caller's thread: saves come with healing actions, not with samples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aftershock.errors import DriverUnavailable, JournalError
from aftershock.healer.state import BreakerPhase, BreakerState, PlaybookState, PolicyState
from aftershock.operator.kube import KubeAccess, KubeConflict, KubeNotFound

__all__ = ["KubeStateStore"]

POLICIES = "healingpolicies"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _playbook(data: Mapping[str, Any]) -> PlaybookState:
    attempts = data.get("attempts")
    return PlaybookState(
        attempts=[float(a) for a in attempts if _number(a) is not None]
        if isinstance(attempts, list)
        else [],
        failures=int(_number(data.get("failures")) or 0),
        next_at=_number(data.get("nextAt")),
        last_delay=_number(data.get("lastDelay")),
    )


def _breaker(data: Mapping[str, Any]) -> BreakerState:
    try:
        phase = BreakerPhase(str(data.get("phase", BreakerPhase.CLOSED.value)))
    except ValueError:
        phase = BreakerPhase.CLOSED
    return BreakerState(
        phase=phase,
        failures=int(_number(data.get("failures")) or 0),
        opened_at=_number(data.get("openedAt")),
        trial_at=_number(data.get("trialAt")),
        escalated=data.get("escalated") is True,
    )


class KubeStateStore:
    """``StateStore`` over HealingPolicy status; policy keys are ``namespace/name``."""

    def __init__(self, kube: KubeAccess, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace

    def _where(self, policy: str) -> tuple[str, str]:
        namespace, _, name = policy.rpartition("/")
        return namespace or self.namespace, name

    def load(self, policy: str) -> PolicyState:
        """What the policy's status keeps (empty when nothing is)."""
        namespace, name = self._where(policy)
        try:
            found = self.kube.get_object(POLICIES, namespace, name)
        except KubeNotFound:
            return PolicyState()
        except DriverUnavailable as exc:
            msg = f"healing state of {policy}: cannot read it: {exc}"
            raise JournalError(msg) from exc
        kept = (found.get("status") or {}).get("healing")
        if not isinstance(kept, dict):
            return PolicyState()
        playbooks = kept.get("playbooks")
        playbooks = playbooks if isinstance(playbooks, dict) else {}
        breakers = kept.get("breakers")
        breakers = breakers if isinstance(breakers, dict) else {}
        disruptions = kept.get("disruptions")
        return PolicyState(
            playbooks={str(k): _playbook(v) for k, v in playbooks.items() if isinstance(v, dict)},
            breakers={str(k): _breaker(v) for k, v in breakers.items() if isinstance(v, dict)},
            disruptions=[float(t) for t in disruptions if _number(t) is not None]
            if isinstance(disruptions, list)
            else [],
        )

    def _save(self, policy: str, change: Callable[[dict[str, Any]], None]) -> None:
        namespace, name = self._where(policy)

        def on_status(status: dict[str, Any]) -> dict[str, Any]:
            kept = status.get("healing")
            healing = dict(kept) if isinstance(kept, dict) else {}
            change(healing)
            return {**status, "healing": healing}

        try:
            self.kube.update_status(POLICIES, namespace, name, on_status)
        except (DriverUnavailable, KubeConflict) as exc:
            msg = f"healing state of {policy}: cannot save it: {exc}"
            raise JournalError(msg) from exc

    def save_playbook(self, policy: str, playbook: str, state: PlaybookState) -> None:
        """Replace the state of one playbook."""
        record = {
            "attempts": list(state.attempts),
            "failures": state.failures,
            "nextAt": state.next_at,
            "lastDelay": state.last_delay,
        }

        def change(healing: dict[str, Any]) -> None:
            healing["playbooks"] = {**(healing.get("playbooks") or {}), playbook: record}

        self._save(policy, change)

    def save_breaker(self, policy: str, target: str, state: BreakerState) -> None:
        """Replace the breaker of one target."""
        record = {
            "phase": state.phase.value,
            "failures": state.failures,
            "openedAt": state.opened_at,
            "trialAt": state.trial_at,
            "escalated": state.escalated,
        }

        def change(healing: dict[str, Any]) -> None:
            healing["breakers"] = {**(healing.get("breakers") or {}), target: record}

        self._save(policy, change)

    def save_disruptions(self, policy: str, times: Sequence[float]) -> None:
        """Replace the policy's disruption times."""
        kept = list(times)

        def change(healing: dict[str, Any]) -> None:
            healing["disruptions"] = kept

        self._save(policy, change)
