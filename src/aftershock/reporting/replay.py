"""Run reports: one run's journal replayed into a ``RunView``.

``load_run`` reads a run file tolerantly (like every journal reader) and never
needs the experiment document: everything a report shows was journaled by the
runner. A journal that ends without ``run.finished`` (the process crashed) still
gives a full view, with the verdict synthesized as *interrupted* and every fault
without a revert record marked as still applied.

A file without a single journal record (random bytes, some other JSON, an empty
file) is not a run: ``load_run`` raises ``NotAJournal`` rather than invent one.
Records that cannot be used (garbled lines, NaN, infinities, numbers beyond
``LIMIT``, a verdict that does not validate) are skipped and listed in
``RunView.problems``, so the renderers only ever see finite numbers and aware times.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aftershock.errors import JournalError
from aftershock.journal.reading import JournalProblem, scan_journal
from aftershock.reporting.collector import RunCollector
from aftershock.reporting.fields import BadNumber, number, text
from aftershock.reporting.verdict import fault_records, read_verdict, synthesize_verdict
from aftershock.reporting.view import FaultRow, FaultWindow, RunView, SloInfo

__all__ = ["NotAJournal", "load_run"]


class NotAJournal(JournalError):
    """The file holds no journal record at all: it is not a run's journal."""


def _windows(collected: RunCollector) -> list[FaultWindow]:
    """Journaled windows, plus ones derived from fault records for steps without any."""
    found = list(collected.windows.values())
    known = {w.step for w in found}
    for item in collected.faults.values():
        if item.step in known or collected.start is None:
            continue
        known.add(item.step)
        start = collected.since_start(item.applied or item.intent)
        end = collected.since_start(item.reverted) if item.reverted else None
        found.append(FaultWindow(item.step, item.fault, item.target, start, end))
    return sorted(found, key=lambda w: (w.start_t, w.step))


def _slos(started: Mapping[str, Any]) -> dict[str, SloInfo]:
    raw = started.get("slo")
    found: dict[str, SloInfo] = {}
    for name, spec in (raw if isinstance(raw, Mapping) else {}).items():
        if isinstance(spec, Mapping):
            try:
                found[str(name)] = SloInfo(
                    name=str(name),
                    probe=text(spec.get("probe")),
                    objective=number(spec.get("objective")),
                    latency_seconds=number(spec.get("latency_seconds")),
                    window_seconds=number(spec.get("window_seconds")),
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
    collected = RunCollector(path)
    for rec in scan.records:
        collected.feed(rec)
    collected.problems[:0] = [str(p) for p in scan.problems]
    collected.problems += [
        f"{path}: {n} {kind} record(s) skipped ({why})"
        for (kind, why), n in collected.skipped.items()
    ]

    declared = collected.started.get("probes")
    names = [p for p in declared if isinstance(p, str)] if isinstance(declared, list) else []
    names += sorted(p for p in collected.samples if p not in names)
    samples = {p: tuple(sorted(collected.samples.get(p, []), key=lambda s: s.t)) for p in names}

    result = read_verdict(collected)
    finished = result is not None
    if result is None:
        result = synthesize_verdict(collected, samples)

    open_steps = {f.step for f in collected.faults.values() if f.reverted is None}
    rows = [FaultRow(r, r.step in open_steps) for r in result.faults]
    listed = {r.step for r in result.faults}
    journaled = fault_records(collected)
    rows += [FaultRow(journaled[s], still_applied=True) for s in sorted(open_steps - listed)]

    end = result.finished_at or collected.last
    duration = (end - result.started_at).total_seconds() if end is not None else None
    return RunView(
        journal=path,
        result=result,
        finished=finished,
        description=text(collected.started.get("description")),
        duration=max(duration, 0.0) if duration is not None else None,
        slos=_slos(collected.started),
        samples=samples,
        phases=tuple(sorted(collected.phases, key=lambda p: p.t)),
        windows=tuple(_windows(collected)),
        faults=tuple(rows),
        abort=collected.abort,
        recovery=collected.recovery,
        healing=tuple(collected.healing),
        problems=tuple(collected.problems),
    )
