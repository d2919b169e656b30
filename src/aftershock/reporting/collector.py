"""Collects one run file's journal records, one by one, into what a report shows.

``RunCollector.feed`` takes each record in file order: fault records go into a
``FaultTrail`` per fault key; each note kind a report uses has an ``on_<event>``
handler. A note holding NaN or an infinity, a number beyond ``LIMIT`` or fields
that cannot be read is skipped and counted in ``skipped``;
``aftershock.reporting.replay`` turns the collected state into a ``RunView``.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from aftershock.journal.reading import JournalRecord
from aftershock.reporting.fields import BadNumber, moment, non_finite, number, offset, text
from aftershock.reporting.view import (
    LIMIT,
    AbortMark,
    FaultWindow,
    HealingEvent,
    Phase,
    RecoveryMark,
    Sample,
)

__all__ = ["NOTES", "FaultTrail", "RunCollector"]

NOTES: Final = frozenset(
    # fault.* kinds are reserved for fault records (note() refuses them and readers want a
    # handle), so the runner notes windows as "window"; "fault.window" is read too.
    {"run.started", "run.finished", "sample", "phase", "window", "fault.window"}
    | {"abort", "recovered", "healing"}
)
"""The note kinds a report reads; other notes are passed over."""


@dataclass
class FaultTrail:
    """One fault as its journal records tell it: intent, then applied, reverted or failed."""

    step: str
    fault: str
    target: str
    resources: list[str]
    intent: datetime
    applied: datetime | None = None
    reverted: datetime | None = None
    error: str | None = None


class RunCollector:
    """Collects the records of one run file; ``on_<event>`` handles each note kind."""

    def __init__(self, path: Path) -> None:
        self.path, self.run_id = path, path.stem
        self.problems: list[str] = []
        self.skipped: Counter[tuple[str, str]] = Counter()
        """Skipped notes by (event, why)."""
        self.started: Mapping[str, Any] = {}
        self.start: datetime | None = None
        self.last: datetime | None = None
        self.finished: Mapping[str, Any] | None = None
        self.samples: dict[str, list[Sample]] = {}
        self.phases: list[Phase] = []
        self.windows: dict[tuple[str, str, float], FaultWindow] = {}
        self.faults: dict[str, FaultTrail] = {}
        self.abort: AbortMark | None = None
        self.recovery: RecoveryMark | None = None
        self.healing: list[HealingEvent] = []

    def feed(self, rec: JournalRecord) -> None:
        """Take the next record of the file."""
        self.last = rec.ts if self.last is None else max(self.last, rec.ts)
        self.start = self.start or rec.ts
        if rec.key is not None and rec.handle is not None:
            self.fault(rec)
        elif rec.event in NOTES:
            if non_finite(rec.fields):
                self.skipped[rec.event, "NaN or infinity"] += 1
                return
            try:
                getattr(self, "on_" + rec.event.replace(".", "_"))(rec, rec.fields)
            except BadNumber:
                self.skipped[rec.event, f"a number beyond {LIMIT:g}"] += 1
            except (TypeError, ValueError, KeyError, RecursionError):
                self.skipped[rec.event, "unreadable fields"] += 1

    def on_run_started(self, rec: JournalRecord, f: Mapping[str, Any]) -> None:
        """The run's declaration: experiment, probes, SLOs, seed, start time."""
        self.started, self.run_id, self.start = f, rec.run_id, rec.ts
        with contextlib.suppress(KeyError, ValueError, TypeError):
            self.start = moment(f["started_at"])

    def on_run_finished(self, rec: JournalRecord, f: Mapping[str, Any]) -> None:
        """The runner's verdict, kept raw until it is validated."""
        result = f.get("result")
        self.finished = result if isinstance(result, Mapping) else None
        if self.finished is None:
            self.problems.append(f"{self.path}:{rec.line}: run.finished without a result")

    def on_sample(self, _: JournalRecord, f: Mapping[str, Any]) -> None:
        """One probe sample."""
        t, probe, ok, status = offset(f.get("t")), f.get("probe"), f.get("ok"), f.get("status")
        if not isinstance(probe, str) or not isinstance(ok, bool):
            raise TypeError(probe)
        code = status if isinstance(status, int) and not isinstance(status, bool) else None
        sample = Sample(t, ok, number(f.get("latency")), code, text(f.get("detail")))
        self.samples.setdefault(probe, []).append(sample)

    def on_phase(self, _: JournalRecord, f: Mapping[str, Any]) -> None:
        """The run entered a phase."""
        self.phases.append(Phase(text(f.get("phase")), offset(f.get("t"))))

    def on_window(self, _: JournalRecord, f: Mapping[str, Any]) -> None:
        """A fault window opened or closed."""
        start, step, target = offset(f.get("start_t")), text(f.get("step")), text(f.get("target"))
        # Written when the window opens (end_t null) and again when it closes: the later wins.
        window = FaultWindow(step, text(f.get("fault")), target, start, number(f.get("end_t")))
        self.windows[(step, target, start)] = window

    on_fault_window = on_window

    def on_abort(self, _: JournalRecord, f: Mapping[str, Any]) -> None:
        """The runner aborted the method."""
        self.abort = AbortMark(text(f.get("reason")), number(f.get("t")))

    def on_recovered(self, _: JournalRecord, f: Mapping[str, Any]) -> None:
        """Health came back."""
        self.recovery = RecoveryMark(number(f.get("t")), number(f.get("seconds")))

    def on_healing(self, _: JournalRecord, f: Mapping[str, Any]) -> None:
        """The healer took an action."""
        playbook, action, outcome = (text(f.get(k)) for k in ("playbook", "action", "outcome"))
        self.healing.append(HealingEvent(playbook, action, number(f.get("t")), outcome))

    def fault(self, rec: JournalRecord) -> None:
        """A fault record (intent, applied, reverted, revert failed)."""
        assert rec.key is not None
        assert rec.handle is not None
        h = rec.handle
        current = self.faults.get(rec.key)
        if rec.event == "fault.intent" or current is None:
            current = FaultTrail(h.step, h.fault, h.target, list(h.resources), rec.ts)
            self.faults[rec.key] = current
        if rec.event == "fault.applied":
            current.applied = rec.ts
        elif rec.event == "fault.reverted":
            current.reverted, current.error = rec.ts, None
        elif rec.event == "fault.revert_failed":
            current.error = text(rec.fields.get("error")) or "revert failed"

    def since_start(self, when: datetime) -> float:
        """Seconds from the run's start to ``when``."""
        assert self.start is not None
        return (when - self.start).total_seconds()
