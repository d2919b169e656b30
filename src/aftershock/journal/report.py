"""Run reports: one run's journal replayed into a ``RunView`` and rendered for people and CI.

``load_run`` reads a run file tolerantly (like every journal reader) and never
needs the experiment document: everything a report shows was journaled by the
runner. A journal that ends without ``run.finished`` (the process crashed) still
gives a full view, with the verdict synthesized as *interrupted* and every fault
without a revert record marked as still applied. The renderers are pure
functions of the view: ``render_html`` (one self-contained page, no network),
``render_markdown`` (a PR comment) and ``render_junit`` (CI).
"""

from __future__ import annotations

import contextlib
import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from aftershock.journal.reading import JournalRecord, read_journal
from aftershock.journal.report_html import render_html
from aftershock.journal.report_text import render_junit, render_markdown
from aftershock.model.results import FaultRecord, ProbeSummary, RunResult, RunStatus

__all__ = [
    "AbortMark",
    "FaultRow",
    "FaultWindow",
    "HealingEvent",
    "Phase",
    "RecoveryMark",
    "RunView",
    "Sample",
    "SloInfo",
    "load_run",
    "render_html",
    "render_junit",
    "render_markdown",
    "write_report",
]

CRASHED_REASON = "journal ends without a verdict (crash?)"
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


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _when(value: Any) -> float:
    """A required time offset; a record without one is skipped."""
    if (number := _num(value)) is None:
        raise TypeError(value)
    return number


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _percentiles(values: list[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    if len(values) == 1:
        return values[0], values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def _summaries(samples: Mapping[str, tuple[Sample, ...]]) -> list[ProbeSummary]:
    """Per-probe figures for a run without a verdict; percentiles of successful samples."""
    found: list[ProbeSummary] = []
    for probe, items in samples.items():
        if not items:
            continue
        ok = [s.latency for s in items if s.ok and s.latency is not None]
        p50, p95, p99 = _percentiles(ok)
        ratio = sum(s.ok for s in items) / len(items)
        found.append(
            ProbeSummary(
                probe=probe, count=len(items), success_ratio=ratio, p50=p50, p95=p95, p99=p99
            )
        )
    return found


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
        self.skipped: Counter[str] = Counter()
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
            try:
                getattr(self, "on_" + rec.event.replace(".", "_"))(rec, rec.fields)
            except (TypeError, ValueError, KeyError):
                self.skipped[rec.event] += 1

    def on_run_started(self, rec: JournalRecord, f: Mapping[str, Any]) -> None:
        self.started, self.run_id, self.start = f, rec.run_id, rec.ts
        with contextlib.suppress(KeyError, ValueError):
            self.start = datetime.fromisoformat(str(f["started_at"]))
        if self.start.tzinfo is None:
            self.start = self.start.replace(tzinfo=rec.ts.tzinfo)

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


def _fault_records(replay: _Replay) -> dict[str, FaultRecord]:
    """The journal's faults grouped by step, as the verdict would have listed them."""
    steps: dict[str, list[_Fault]] = {}
    for item in replay.faults.values():
        steps.setdefault(item.step, []).append(item)
    found: dict[str, FaultRecord] = {}
    for step, items in steps.items():
        injected = [i.applied or i.intent for i in items]
        reverted = [i.reverted for i in items]
        errors = [i.error for i in items if i.error]
        found[step] = FaultRecord(
            step=step,
            fault=items[0].fault,
            target=items[0].target,
            resources=[r for i in items for r in i.resources],
            injected_at=min(injected),
            reverted_at=None if None in reverted else max(r for r in reverted if r),
            error="; ".join(errors) or None,
        )
    return found


def _windows(replay: _Replay) -> list[FaultWindow]:
    """Journaled windows, plus ones derived from fault records for steps without any."""
    found = list(replay.windows.values())
    known = {w.step for w in found}
    for item in replay.faults.values():
        if item.step in known or replay.start is None:
            continue
        known.add(item.step)
        start = replay.since_start(item.applied or item.intent)
        end = replay.since_start(item.reverted) if item.reverted else None
        found.append(FaultWindow(item.step, item.fault, item.target, start, end))
    return sorted(found, key=lambda w: (w.start_t, w.step))


def _verdict(replay: _Replay) -> RunResult | None:
    if replay.finished is None:
        return None
    try:
        return RunResult.model_validate(replay.finished)
    except ValueError as exc:  # pydantic's ValidationError; the model layer owns pydantic
        detail = " ".join(str(exc).split())
        replay.problems.append(f"{replay.path}: run.finished result unreadable: {detail}")
        return None


def _synthesize(replay: _Replay, samples: Mapping[str, tuple[Sample, ...]]) -> RunResult:
    s = replay.started
    seed = s.get("seed")
    assert replay.start is not None
    reason = CRASHED_REASON if replay.finished is None else "journal's verdict is unreadable"
    return RunResult(
        run_id=replay.run_id,
        experiment=_text(s.get("experiment")) or "(unknown experiment)",
        status=RunStatus.INTERRUPTED,
        reason=reason,
        started_at=replay.start,
        forced=s.get("forced") is True,
        dry_run=s.get("dry_run") is True,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        faults=list(_fault_records(replay).values()),
        probes=_summaries(samples),
        recovery_seconds=replay.recovery.seconds if replay.recovery else None,
        aborted_by=replay.abort.reason if replay.abort else None,
    )


def _slos(started: Mapping[str, Any]) -> dict[str, SloInfo]:
    raw = started.get("slo")
    found: dict[str, SloInfo] = {}
    for name, spec in (raw if isinstance(raw, Mapping) else {}).items():
        if isinstance(spec, Mapping):
            found[str(name)] = SloInfo(
                name=str(name),
                probe=_text(spec.get("probe")),
                objective=_num(spec.get("objective")),
                latency_seconds=_num(spec.get("latency_seconds")),
                window_seconds=_num(spec.get("window_seconds")),
            )
    return found


def load_run(journal_path: Path | str) -> RunView:
    """Replay one run file into a view; raises ``JournalError`` only if it cannot be read."""
    path = Path(journal_path)
    problems: list[Any] = []
    replay = _Replay(path)
    for rec in read_journal(path, problems):
        replay.feed(rec)
    replay.problems[:0] = [str(p) for p in problems]
    if replay.start is None:
        replay.problems.append(f"{path}: no readable records")
    replay.problems += [
        f"{path}: {n} {kind} record(s) skipped" for kind, n in replay.skipped.items()
    ]

    declared = replay.started.get("probes")
    names = [p for p in declared if isinstance(p, str)] if isinstance(declared, list) else []
    names += sorted(p for p in replay.samples if p not in names)
    samples = {p: tuple(sorted(replay.samples.get(p, []), key=lambda s: s.t)) for p in names}

    result = _verdict(replay)
    finished = result is not None
    if result is None:
        if replay.start is None:
            replay.start = datetime.fromtimestamp(path.stat().st_mtime).astimezone()
        result = _synthesize(replay, samples)

    open_steps = {f.step for f in replay.faults.values() if f.reverted is None}
    rows = [FaultRow(r, r.step in open_steps) for r in result.faults]
    listed = {r.step for r in result.faults}
    journaled = _fault_records(replay)
    rows += [FaultRow(journaled[s], still_applied=True) for s in sorted(open_steps - listed)]

    end = result.finished_at or replay.last
    duration = (end - result.started_at).total_seconds() if end is not None else None
    return RunView(
        journal=path,
        result=result,
        finished=finished,
        description=_text(replay.started.get("description")),
        duration=max(duration, 0.0) if duration is not None else None,
        slos=_slos(replay.started),
        samples=samples,
        phases=tuple(sorted(replay.phases, key=lambda p: p.t)),
        windows=tuple(_windows(replay)),
        faults=tuple(rows),
        abort=replay.abort,
        recovery=replay.recovery,
        healing=tuple(replay.healing),
        problems=tuple(replay.problems),
    )


def write_report(view: RunView, directory: Path | str) -> dict[str, Path]:
    """Write ``report.html`` and ``summary.md`` into ``directory`` (created); return their paths."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    paths = {"html": target / "report.html", "markdown": target / "summary.md"}
    paths["html"].write_text(render_html(view), encoding="utf-8")
    paths["markdown"].write_text(render_markdown(view), encoding="utf-8")
    return paths
