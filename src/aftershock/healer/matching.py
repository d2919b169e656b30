"""Which playbooks apply now: pure functions of the policy and the watches' verdicts.

A playbook applies when the watch named by ``when.unhealthy`` is unhealthy and
has been for at least ``when.for``; several that apply come in declaration
order. Each playbook speaks for one *subject* target (the watch's ``target``,
else its first step's target, else the watch itself): breakers, locks and
pauses are kept per subject.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from aftershock.model.policy import HealingPolicySpec, Playbook

__all__ = ["Match", "matching", "next_due", "step_targets", "subject_of"]

_SLACK: Final = 1e-6  # a wake-up a rounding error early still counts as on time


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """A playbook that applies now."""

    index: int
    """Its position in the policy (declaration order)."""
    playbook: Playbook
    probe: str
    target: str
    """The subject target."""
    targets: frozenset[str]
    """Every target the playbook touches, the subject included (locked and pause-checked)."""


def subject_of(spec: HealingPolicySpec, playbook: Playbook) -> str:
    """The target a playbook speaks for."""
    watch = spec.watch.get(playbook.when.unhealthy)
    if watch is not None and watch.target is not None:
        return watch.target
    for step in playbook.steps:
        if step.target is not None:
            return step.target
    return playbook.when.unhealthy


def step_targets(spec: HealingPolicySpec, playbook: Playbook) -> frozenset[str]:
    """The subject and every target named by a step."""
    named = {step.target for step in playbook.steps if step.target is not None}
    return frozenset({subject_of(spec, playbook), *named})


def matching(
    spec: HealingPolicySpec, unhealthy_since: Mapping[str, float | None], now: float
) -> list[Match]:
    """The playbooks that apply at ``now``, in declaration order.

    ``unhealthy_since`` maps a watch name to when it turned unhealthy (on the
    same scale as ``now``), or None while it is healthy.
    """
    found: list[Match] = []
    for index, playbook in enumerate(spec.playbooks):
        since = unhealthy_since.get(playbook.when.unhealthy)
        if since is None or now + _SLACK - since < playbook.when.for_.total_seconds():
            continue
        found.append(
            Match(
                index=index,
                playbook=playbook,
                probe=playbook.when.unhealthy,
                target=subject_of(spec, playbook),
                targets=step_targets(spec, playbook),
            )
        )
    return found


def next_due(
    spec: HealingPolicySpec, unhealthy_since: Mapping[str, float | None], now: float
) -> float | None:
    """When the next playbook whose watch is unhealthy becomes due by its ``for``, if any."""
    dues = [
        since + playbook.when.for_.total_seconds()
        for playbook in spec.playbooks
        if (since := unhealthy_since.get(playbook.when.unhealthy)) is not None
        and since + playbook.when.for_.total_seconds() > now + _SLACK
    ]
    return min(dues, default=None)
