"""Run reports: one run's journal replayed into a ``RunView`` and rendered for people and CI.

``load_run`` reads a run file tolerantly (like every journal reader) and never
needs the experiment document: everything a report shows was journaled by the
runner. A journal that ends without ``run.finished`` (the process crashed) still
gives a full view, with the verdict synthesized as *interrupted* and every fault
without a revert record marked as still applied. The renderers are pure
functions of the view: ``render_html`` (one self-contained page, no network),
``render_markdown`` (a PR comment) and ``render_junit`` (CI).

A file without a single journal record (random bytes, some other JSON, an empty
file) is not a run: ``load_run`` raises ``NotAJournal`` rather than invent one.
Records that cannot be used (garbled lines, NaN, infinities, numbers beyond
``LIMIT``, a verdict that does not validate) are skipped and listed in
``RunView.problems``, so the renderers only ever see finite numbers and aware times.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aftershock.errors import JournalError
from aftershock.journal.reading import JournalProblem, scan_journal
from aftershock.journal.report_html import render_html
from aftershock.journal.report_text import render_junit, render_markdown
from aftershock.journal.report_view import (
    LIMIT,
    AbortMark,
    BadNumber,
    FaultRow,
    FaultWindow,
    HealingEvent,
    Phase,
    RecoveryMark,
    RunView,
    Sample,
    SloInfo,
    _Fault,
    _num,
    _Replay,
    _text,
)
from aftershock.model.results import FaultRecord, ProbeSummary, RunResult, RunStatus

__all__ = [
    "REPORT_FILES",
    "AbortMark",
    "FaultRow",
    "FaultWindow",
    "HealingEvent",
    "NotAJournal",
    "Phase",
    "RecoveryMark",
    "RunView",
    "Sample",
    "SloInfo",
    "load_run",
    "render_html",
    "render_junit",
    "render_markdown",
    "write_junit",
    "write_report",
]

CRASHED_REASON = "journal ends without a verdict (crash?)"
REPORT_FILES = ("report.html", "summary.md")
"""What ``write_report`` writes into its directory."""


class NotAJournal(JournalError):
    """The file holds no journal record at all: it is not a run's journal."""


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


def _insane(value: Any) -> str | None:
    """Why a validated verdict cannot be shown (a number or time renderers cannot use)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not (math.isfinite(item) and abs(item) <= LIMIT):
            return f"the number {item!r} is not finite or beyond {LIMIT:g}"
        if isinstance(item, datetime):
            if item.tzinfo is None:
                return f"the time {item.isoformat()} has no time zone"
            try:
                item.astimezone(UTC)
            except OverflowError:
                return f"the time {item.isoformat()} is out of range in UTC"
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None


def _verdict(replay: _Replay) -> RunResult | None:
    if replay.finished is None:
        return None
    try:
        result = RunResult.model_validate(replay.finished)
    except (ValueError, RecursionError) as exc:  # pydantic's ValidationError is a ValueError
        detail = " ".join(str(exc).split())[:500]
        replay.problems.append(f"{replay.path}: run.finished result unreadable: {detail}")
        return None
    # Validation is lax ("NaN", "inf" and naive times pass); the renderers need better.
    if (why := _insane(result.model_dump())) is not None:
        replay.problems.append(f"{replay.path}: run.finished result unreadable: {why}")
        return None
    return result


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
            try:
                found[str(name)] = SloInfo(
                    name=str(name),
                    probe=_text(spec.get("probe")),
                    objective=_num(spec.get("objective")),
                    latency_seconds=_num(spec.get("latency_seconds")),
                    window_seconds=_num(spec.get("window_seconds")),
                )
            except BadNumber:
                continue  # run.started with NaN was skipped whole; this is only out of range
    return found


def _not_a_journal(path: Path, problems: tuple[JournalProblem, ...]) -> NotAJournal:
    if problems:
        first = problems[0]
        # "torn last line" guesses at a crash; in a file with no record at all it is not one.
        detail = first.message.removeprefix("garbage skipped: ")
        detail = "unreadable" if detail.startswith("torn last line") else detail
        why = f"no line is a journal record (line {first.line}: {detail})"
    else:
        why = "the file is empty"
    return NotAJournal(f"{path}: not an aftershock journal: {why}")


def load_run(journal_path: Path | str) -> RunView:
    """Replay one run file into a view.

    Raises ``NotAJournal`` for a file without one journal record, and
    ``JournalError`` for a file that cannot be read; anything else it skips and lists.
    """
    path = Path(journal_path)
    scan = scan_journal(path)
    if not scan.records:
        raise _not_a_journal(path, scan.problems)
    replay = _Replay(path)
    for rec in scan.records:
        replay.feed(rec)
    replay.problems[:0] = [str(p) for p in scan.problems]
    replay.problems += [
        f"{path}: {n} {kind} record(s) skipped ({why})" for (kind, why), n in replay.skipped.items()
    ]

    declared = replay.started.get("probes")
    names = [p for p in declared if isinstance(p, str)] if isinstance(declared, list) else []
    names += sorted(p for p in replay.samples if p not in names)
    samples = {p: tuple(sorted(replay.samples.get(p, []), key=lambda s: s.t)) for p in names}

    result = _verdict(replay)
    finished = result is not None
    if result is None:
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
    paths = {"html": target / REPORT_FILES[0], "markdown": target / REPORT_FILES[1]}
    paths["html"].write_text(render_html(view), encoding="utf-8")
    paths["markdown"].write_text(render_markdown(view), encoding="utf-8")
    return paths


def write_junit(view: RunView, path: Path | str) -> Path:
    """Write the JUnit XML of a run to ``path`` (its directories created); return it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_junit(view), encoding="utf-8")
    return target
