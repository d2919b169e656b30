"""The reconciler: health watches, playbook matching, throttling, remediation.

Rule: never imports a concrete driver or probe; time comes from the injected
``Clock`` so every state machine is tested on a manual clock.
"""

from aftershock.healer.escalation import EscalateFn, Escalation
from aftershock.healer.events import EVENT_KINDS
from aftershock.healer.heap import settle_heap
from aftershock.healer.incidents import Incident
from aftershock.healer.matching import Match, matching
from aftershock.healer.reconciler import Healer
from aftershock.healer.remediate import Outcome, StandaloneAction
from aftershock.healer.state import (
    STATE_FILE,
    MemoryStateStore,
    SqliteStateStore,
    StateStore,
)
from aftershock.healer.status import HealerStatus
from aftershock.healer.throttling import Decision, backoff_delays
from aftershock.healer.watch import Phase, Watch

__all__ = [
    "EVENT_KINDS",
    "STATE_FILE",
    "Decision",
    "EscalateFn",
    "Escalation",
    "Healer",
    "HealerStatus",
    "Incident",
    "Match",
    "MemoryStateStore",
    "Outcome",
    "Phase",
    "SqliteStateStore",
    "StandaloneAction",
    "StateStore",
    "Watch",
    "backoff_delays",
    "matching",
    "settle_heap",
]
