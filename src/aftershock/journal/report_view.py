"""What a run report shows, and the replay of one run file that collects it.

The frozen records (``Sample``, ``Phase``, ``FaultWindow``, ``AbortMark``,
``RecoveryMark``, ``HealingEvent``, ``SloInfo``, ``FaultRow``) and ``RunView``
are what every renderer reads. ``_Replay`` feeds the journal's records one by
one into them, skipping (and counting) a note it cannot read; ``load_run`` in
``aftershock.journal.report`` turns a finished replay into a ``RunView``.

Every number in a view is finite and within ``LIMIT``: a note holding NaN or an
infinity anywhere (the writer never produces one; ``1e999`` parses as infinity)
is skipped, and so is one whose times or figures are beyond ``LIMIT``, so the
renderers never divide, round or scale garbage.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from aftershock.journal.reading import JournalRecord
from aftershock.model.results import FaultRecord, RunResult

__all__ = [
    "LIMIT",
    "AbortMark",
    "BadNumber",
    "FaultRow",
    "FaultWindow",
    "HealingEvent",
    "Phase",
    "RecoveryMark",
    "RunView",
    "Sample",
    "SloInfo",
    "moment",
    "non_finite",
]

LIMIT: Final = 1e12
"""The largest magnitude a number in a view may have (seconds: about 31,700 years)."""

_NOTES: Final = frozenset(
    # fault.* kinds are reserved for fault records (note() refuses them and readers want a
    # handle), so the runner notes windows as "window"; "fault.window" is read too.
    {"run.started", "run.finished", "sample", "phase", "window", "fault.window"}
    | {"abort", "recovered", "healing"}
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One probe sample; ``t`` is seconds since the run started, ``latency`` in seconds."""

    t: float
    ok: bool
    latency: float | None
    status: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class Phase:
    """The run entered ``name`` at ``t`` seconds."""

    name: str
    t: float


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """When a method step's fault was in effect; ``end_t`` None: until the journal ends."""

    step: str
    fault: str
    target: str
    start_t: float
    end_t: float | None


@dataclass(frozen=True, slots=True)
class AbortMark:
    """Why and when the runner aborted the method."""

    reason: str
    t: float | None


@dataclass(frozen=True, slots=True)
class RecoveryMark:
    """When health came back and how long it took after the faults ended."""

    t: float | None
    seconds: float | None


@dataclass(frozen=True, slots=True)
class HealingEvent:
    """One action the healer took during the run."""

    playbook: str
    action: str
    t: float | None
    outcome: str


@dataclass(frozen=True, slots=True)
class SloInfo:
    """An SLO as declared in ``run.started``: its probe, objective and latency threshold."""

    name: str
    probe: str
    objective: float | None
    latency_seconds: float | None
    window_seconds: float | None


@dataclass(frozen=True, slots=True)
class FaultRow:
    """A fault of the verdict, and whether the journal says it is still applied."""

    record: FaultRecord
    still_applied: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RunView:
    """Everything a report shows about one run, read from its journal."""

    journal: Path
    result: RunResult
    """The runner's verdict, or one synthesized as *interrupted* when the journal lacks it."""
    finished: bool
    description: str
    duration: float | None
    """Seconds from the start to the verdict (or to the last record of a crashed run)."""
    slos: Mapping[str, SloInfo]
    samples: Mapping[str, tuple[Sample, ...]]
    """Per probe, in time order; every probe of ``run.started`` has an entry."""
    phases: tuple[Phase, ...]
    windows: tuple[FaultWindow, ...]
    faults: tuple[FaultRow, ...]
    abort: AbortMark | None
    recovery: RecoveryMark | None
    healing: tuple[HealingEvent, ...]
    problems: tuple[str, ...]
    """Unreadable lines and records the report had to skip or guess around."""

    @property
    def span(self) -> float:
        """Seconds the timeline covers: the run, every sample and every mark in it."""
        ends = [self.duration or 0.0, 1.0]
        ends += [s[-1].t for s in self.samples.values() if s]
        ends += [p.t for p in self.phases]
        ends += [w.end_t if w.end_t is not None else w.start_t for w in self.windows]
        ends += [m.t for m in (self.abort, self.recovery) if m is not None and m.t is not None]
        ends += [h.t for h in self.healing if h.t is not None]
        return max(ends)


class BadNumber(ValueError):
    """A number that is not finite or beyond ``LIMIT``; its record is skipped."""


def _num(value: Any) -> float | None:
    """A number as a float; ``None`` when it is not a number; ``BadNumber`` when unusable."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # Compared before float(): an int too large for a float would raise OverflowError.
    if not (-LIMIT <= value <= LIMIT):  # also false for NaN
        raise BadNumber(value)
    return float(value)


def non_finite(value: Any) -> bool:
    """True if NaN or an infinity is anywhere inside ``value`` (JSON data, any depth)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def moment(value: Any) -> datetime:
    """An ISO time as an aware UTC datetime; ``ValueError`` if it is not one."""
    if not isinstance(value, str):
        raise TypeError(value)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(value) from exc


def _when(value: Any) -> float:
    """A required time offset; a record without one is skipped."""
    if (number := _num(value)) is None:
        raise TypeError(value)
    return number


def _text(value: Any) -> str:
    """A display string; a list, an object or NaN where text belongs shows as nothing."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return str(value) if math.isfinite(value) else ""
    return str(value) if isinstance(value, int) else ""


@dataclass
class _Fault:
    step: str
    fault: str
    target: str
    resources: list[str]
    intent: datetime
    applied: datetime | None = None
    reverted: datetime | None = None
    error: str | None = None


class _Replay:
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
        self.faults: dict[str, _Fault] = {}
        self.abort: AbortMark | None = None
        self.recovery: RecoveryMark | None = None
        self.healing: list[HealingEvent] = []

    def feed(self, rec: JournalRecord) -> None:
        self.last = rec.ts if self.last is None else max(self.last, rec.ts)
        self.start = self.start or rec.ts
        if rec.key is not None and rec.handle is not None:
            self.fault(rec)
        elif rec.event in _NOTES:
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
        self.started, self.run_id, self.start = f, rec.run_id, rec.ts
        with contextlib.suppress(KeyError, ValueError, TypeError):
            self.start = moment(f["started_at"])

    def on_run_finished(self, rec: JournalRecord, f: Mapping[str, Any]) -> None:
        result = f.get("result")
        self.finished = result if isinstance(result, Mapping) else None
        if self.finished is None:
            self.problems.append(f"{self.path}:{rec.line}: run.finished without a result")

    def on_sample(self, _: JournalRecord, f: Mapping[str, Any]) -> None:
        t, probe, ok, status = _when(f.get("t")), f.get("probe"), f.get("ok"), f.get("status")
        if not isinstance(probe, str) or not isinstance(ok, bool):
            raise TypeError(probe)
        code = status if isinstance(status, int) and not isinstance(status, bool) else None
        sample = Sample(t, ok, _num(f.get("latency")), code, _text(f.get("detail")))
        self.samples.setdefault(probe, []).append(sample)

    def on_phase(self, _: JournalRecord, f: Mapping[str, Any]) -> None:
        self.phases.append(Phase(_text(f.get("phase")), _when(f.get("t"))))

    def on_window(self, _: JournalRecord, f: Mapping[str, Any]) -> None:
        start, step, target = _when(f.get("start_t")), _text(f.get("step")), _text(f.get("target"))
        # Written when the window opens (end_t null) and again when it closes: the later wins.
        window = FaultWindow(step, _text(f.get("fault")), target, start, _num(f.get("end_t")))
        self.windows[(step, target, start)] = window

    on_fault_window = on_window

    def on_abort(self, _: JournalRecord, f: Mapping[str, Any]) -> None:
        self.abort = AbortMark(_text(f.get("reason")), _num(f.get("t")))

    def on_recovered(self, _: JournalRecord, f: Mapping[str, Any]) -> None:
        self.recovery = RecoveryMark(_num(f.get("t")), _num(f.get("seconds")))

    def on_healing(self, _: JournalRecord, f: Mapping[str, Any]) -> None:
        playbook, action, outcome = (_text(f.get(k)) for k in ("playbook", "action", "outcome"))
        self.healing.append(HealingEvent(playbook, action, _num(f.get("t")), outcome))

    def fault(self, rec: JournalRecord) -> None:
        assert rec.key is not None
        assert rec.handle is not None
        h = rec.handle
        current = self.faults.get(rec.key)
        if rec.event == "fault.intent" or current is None:
            current = _Fault(h.step, h.fault, h.target, list(h.resources), rec.ts)
            self.faults[rec.key] = current
        if rec.event == "fault.applied":
            current.applied = rec.ts
        elif rec.event == "fault.reverted":
            current.reverted, current.error = rec.ts, None
        elif rec.event == "fault.revert_failed":
            current.error = _text(rec.fields.get("error")) or "revert failed"

    def since_start(self, moment: datetime) -> float:
        assert self.start is not None
        return (moment - self.start).total_seconds()
