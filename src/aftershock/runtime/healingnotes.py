"""A healer's steps inside a run, written into the run's journal for its report."""

from __future__ import annotations

from typing import Any, Protocol

from aftershock.ports import Clock, Event

__all__ = ["HealingNotes", "Notebook"]


class Notebook(Protocol):
    """The part of ``ports.RunJournal`` a healer inside a run writes to."""

    def note(self, kind: str, **fields: Any) -> int:
        """Record something about the run."""
        ...


class HealingNotes:
    """An ``EventSink`` writing a healer's steps into a run journal, where the report finds them."""

    def __init__(self, journal: Notebook, clock: Clock, t0: float) -> None:
        """``t0`` is the run's start on ``clock``; notes carry seconds since then."""
        self.journal = journal
        self.clock = clock
        self.t0 = t0

    def emit(self, event: Event) -> None:
        """Note remediation steps and closed incidents; other events are not the report's."""
        f = event.fields
        if event.kind == "healer.action":
            self.journal.note(
                "healing",
                playbook=f.get("playbook"),
                action=f.get("action"),
                target=f.get("target"),
                outcome=f.get("outcome"),
                t=self.clock.monotonic() - self.t0,
            )
        elif event.kind == "incident.closed":
            self.journal.note(
                "incident",
                target=f.get("target"),
                mttr_seconds=f.get("mttr_seconds"),
                detect_seconds=f.get("detect_seconds"),
                first_action_seconds=f.get("first_action_seconds"),
                t=self.clock.monotonic() - self.t0,
            )
