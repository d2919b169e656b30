"""The escalator remembers a bounded number of escalations."""

from __future__ import annotations

from aftershock.healer.escalation import SENT_KEPT, Escalator
from aftershock.healer.events import ESCALATED, Emitter
from aftershock.healer.matching import Match
from aftershock.testing import CapturedEvents, ManualClock

from .helpers import playbook, policy


def test_a_long_lived_escalator_keeps_only_the_newest_escalations() -> None:
    spec = policy(playbook()).spec
    events = CapturedEvents()
    escalator = Escalator(Emitter(events, ManualClock(), "checkout"), None, dry_run=True)
    match = Match(
        index=0, playbook=spec.playbooks[0], probe="web", target="api", targets=frozenset({"api"})
    )
    for k in range(SENT_KEPT + 5):
        escalator.escalate(match, None, "permanent-error", f"try {k}")
    assert len(escalator.sent) == SENT_KEPT
    assert escalator.sent[0].detail == "try 5"
    assert escalator.sent[-1].detail == f"try {SENT_KEPT + 4}"
    assert len([e for e in events.events if e.kind == ESCALATED]) == SENT_KEPT + 5
