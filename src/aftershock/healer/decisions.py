"""Deciding about a playbook that applies, and saying so without repeating it every tick."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from datetime import UTC, datetime

from aftershock.healer.events import DECISION, PAUSED, RESUMED, Emitter
from aftershock.healer.incidents import Incident
from aftershock.healer.matching import Match
from aftershock.healer.throttling import Decision, Permit, Throttler

__all__ = ["DecisionLog", "PauseBoard", "decide", "given_up"]


def decide(
    match: Match,
    *,
    incident: Incident | None,
    paused: Collection[str],
    throttler: Throttler,
    now: float,
) -> Permit:
    """What to do about ``match`` at ``now`` (epoch seconds): act, or why not.

    In order: the incident was escalated (stand back until healthy or reset);
    this playbook gave up for the incident; a target is paused; the gates.
    """
    if incident is not None and incident.escalated:
        return Permit(decision=Decision.ESCALATED, reason=incident.escalation_reason or "")
    if incident is not None and match.playbook.name in incident.given_up:
        return given_up(match)
    held = sorted(t for t in match.targets if t in paused)
    if held:
        return Permit(decision=Decision.PAUSED, reason=",".join(held))
    return throttler.check(match.playbook, match.target, now)


def given_up(match: Match) -> Permit:
    """The answer for a playbook that will not act again during this incident."""
    return Permit(decision=Decision.GIVEN_UP, reason=f"onFailure: {match.playbook.on_failure}")


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


class DecisionLog:
    """Emits ``healer.decision`` events, each answer once per playbook until it changes."""

    def __init__(self, emit: Emitter) -> None:
        self.emit = emit
        self._said: dict[tuple[str, int], tuple[str, str]] = {}

    def say(
        self,
        match: Match,
        permit: Permit,
        *,
        incident: Incident | None,
        attempt: int | None = None,
    ) -> None:
        """Emit the decision, unless it is the same as the last one for this playbook."""
        key, answer = (match.probe, match.index), (permit.decision.value, permit.reason)
        if permit.decision not in {Decision.ACT, Decision.DRY_RUN}:
            if self._said.get(key) == answer:
                return  # the same answer every tick is noise, not news
            self._said[key] = answer
        else:
            self._said.pop(key, None)
        self.emit(
            DECISION,
            probe=match.probe,
            target=match.target,
            targets=sorted(match.targets),
            playbook=match.playbook.name,
            decision=permit.decision.value,
            reason=permit.reason,
            until=_iso(permit.until),
            trial=permit.trial,
            attempt=attempt,
            incident=incident.id if incident else None,
        )

    def forget(self, probe: str | None = None) -> None:
        """Say everything again (for one watch's playbooks, or all)."""
        for key in [k for k in self._said if probe is None or k[0] == probe]:
            del self._said[key]


class PauseBoard:
    """Targets the healer stands back on; counted, so pauses by several experiments nest."""

    def __init__(self, emit: Emitter) -> None:
        self.emit = emit
        self._counts: Counter[str] = Counter()
        self._why: dict[str, str] = {}

    def pause(self, targets: Iterable[str], why: str = "") -> None:
        """One more pause of each target; ``why`` is shown in the status until it ends."""
        names = sorted(set(targets))
        self._counts.update(names)
        for name in names:
            if why:
                self._why[name] = why
        self.emit(PAUSED, targets=names, **({"why": why} if why else {}))

    def resume(self, targets: Iterable[str]) -> None:
        """One pause fewer of each target."""
        names = sorted(set(targets))
        self._counts.subtract(names)
        self._counts = +self._counts  # drop the ones no longer paused
        for name in names:
            if name not in self._counts:
                self._why.pop(name, None)
        self.emit(RESUMED, targets=names)

    def names(self) -> set[str]:
        """The targets paused now."""
        return set(self._counts)

    def reasons(self) -> dict[str, str]:
        """Why each paused target is paused, where a reason was given."""
        return {name: why for name, why in self._why.items() if name in self._counts}
