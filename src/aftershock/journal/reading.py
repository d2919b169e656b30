"""Reading the fault journal: records, the faults still in effect, and a summary per run.

Readers never raise on bad content: a line cut short by a crash (the torn last
line) or any other garbage is skipped and reported as a ``JournalProblem`` with
its file and line number, so ``aftershock recover`` undoes everything it can
read. Only a file that cannot be read at all raises ``JournalError``.

Every record written now carries its schema version, ``"v": 2``
(``JOURNAL_VERSION``); records written before the field existed have none and
read as version 1, with the same fields. A version must be a positive integer;
a record of a newer version is read all the same (its ``version`` says so), so
that ``recover`` still tries what it can.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from aftershock.errors import JournalError
from aftershock.ports import Handle

__all__ = [
    "JOURNAL_VERSION",
    "VERSION_KEY",
    "JournalProblem",
    "JournalRecord",
    "JournalScan",
    "Outstanding",
    "RunSummary",
    "outstanding",
    "read_journal",
    "runs",
    "scan_journal",
]

JOURNAL_VERSION: Final = 2
"""The schema version of the records written now; records without one are version 1."""
VERSION_KEY: Final = "v"
"""The key of a record's schema version."""
_BASE_KEYS = frozenset({VERSION_KEY, "ts", "seq", "event", "run_id", "key", "handle"})


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalProblem:
    """A line (or file, ``line`` 0) that could not be used."""

    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalRecord:
    """One line of a journal; ``key`` and ``handle`` are set on ``fault.*`` events."""

    file: Path
    line: int
    seq: int
    ts: datetime
    event: str
    run_id: str
    version: int = 1
    """The record's schema version (1: written before records carried one)."""
    key: str | None = None
    handle: Handle | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    """Every other field: ``deadline``, ``error``, a note's own fields."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalScan:
    """What one file held: the usable records, in file order, and the problems."""

    file: Path
    records: tuple[JournalRecord, ...]
    problems: tuple[JournalProblem, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outstanding:
    """A fault with an intent and no ``fault.reverted`` record: still (maybe) in effect."""

    run_id: str
    key: str
    handle: Handle
    """The applied handle if there is one, else the intent's."""
    state: Literal["intent", "applied", "revert_failed"]
    since: datetime
    """When the intent was written."""
    deadline: datetime | None
    error: str | None
    """The last ``revert_failed`` error, if a revert was tried."""
    file: Path
    line: int
    """Line of the intent record."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """One run file at a glance."""

    run_id: str
    file: Path
    started: datetime | None
    last: datetime | None
    records: int
    faults: int
    reverted: int
    outstanding: int
    problems: int
    events: Mapping[str, int]
    """How many records of each event kind."""


def _aware(text: object, what: str) -> datetime:
    """An ISO time in UTC; a naive one is taken to be UTC already."""
    if not isinstance(text, str):
        msg = f"{what} is not a string"
        raise TypeError(msg)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        # Near year 1 or 9999 an offset can push the time out of range; such a time
        # would break every later comparison, so it is garbage here.
        return moment.astimezone(UTC)
    except OverflowError as exc:
        msg = f"{what} {text!r} is out of range in UTC"
        raise ValueError(msg) from exc


def _parse(path: Path, number: int, raw: bytes) -> JournalRecord:
    """One line → record; ValueError/TypeError/KeyError say why it is garbage."""
    data = json.loads(raw.decode("utf-8"))
    if not isinstance(data, dict):
        msg = f"a JSON {type(data).__name__}, not an object"
        raise TypeError(msg)
    seq, event, run_id = data["seq"], data["event"], data["run_id"]
    if isinstance(seq, bool) or not isinstance(seq, int):
        msg = "seq is not an integer"
        raise TypeError(msg)
    if not isinstance(event, str) or not event or not isinstance(run_id, str):
        msg = "event or run_id is not a string"
        raise TypeError(msg)
    version = data.get(VERSION_KEY, 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        msg = "the version (v) is not a positive integer"
        raise TypeError(msg)
    key: str | None = None
    handle: Handle | None = None
    if event.startswith("fault."):
        key, data_handle = data["key"], data["handle"]
        if not isinstance(key, str) or not isinstance(data_handle, dict):
            msg = "a fault record needs a string key and a handle object"
            raise TypeError(msg)
        handle = Handle.from_json(data_handle)
    return JournalRecord(
        file=path,
        line=number,
        seq=seq,
        ts=_aware(data["ts"], "ts"),
        event=event,
        run_id=run_id,
        version=version,
        key=key,
        handle=handle,
        fields={k: v for k, v in data.items() if k not in _BASE_KEYS},
    )


def scan_journal(path: Path) -> JournalScan:
    """Read one run file; garbage and a torn last line become problems, not errors."""
    try:
        content = Path(path).read_bytes()
    except OSError as exc:
        msg = f"{path}: cannot read the fault journal: {exc.strerror or exc}"
        raise JournalError(msg) from exc
    lines = content.split(b"\n")
    records: list[JournalRecord] = []
    problems: list[JournalProblem] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            records.append(_parse(path, number, raw))
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            # RecursionError: JSON nested deeper than the parser (or str()) can follow.
            # Only the final line can lack its newline; if it does not parse, a
            # crash cut the write short.
            if number == len(lines):
                message = "torn last line (a write cut short by a crash); skipped"
            elif isinstance(exc, KeyError):
                message = f"garbage skipped: missing field {exc}"
            else:
                message = f"garbage skipped: {exc}"
            problems.append(JournalProblem(file=path, line=number, message=message))
    return JournalScan(file=path, records=tuple(records), problems=tuple(problems))


def read_journal(path: Path, problems: list[JournalProblem] | None = None) -> list[JournalRecord]:
    """The usable records of one run file; its problems are appended to ``problems``."""
    scan = scan_journal(path)
    if problems is not None:
        problems.extend(scan.problems)
    return list(scan.records)


def _scan_dir(directory: Path, problems: list[JournalProblem] | None) -> list[JournalScan]:
    scans: list[JournalScan] = []
    for path in sorted(Path(directory).glob("*.jsonl")):
        try:
            scans.append(scan_journal(path))
        except JournalError as exc:
            # One unreadable file must not hide the faults recorded in the others.
            problem = JournalProblem(file=path, line=0, message=str(exc))
            scans.append(JournalScan(file=path, records=(), problems=(problem,)))
    if problems is not None:
        problems.extend(p for scan in scans for p in scan.problems)
    return scans


def _open_faults(records: tuple[JournalRecord, ...]) -> list[Outstanding]:
    """Replay one run's fault records in order; what is left open is outstanding."""
    open_: dict[str, Outstanding] = {}
    for rec in records:
        if rec.key is None or rec.handle is None:
            continue
        if rec.event == "fault.reverted":
            open_.pop(rec.key, None)
            continue
        current = open_.get(rec.key)
        if rec.event == "fault.intent" or current is None:
            # A new intent (re)opens the key; an applied or failed record without
            # an intent (its intent line was garbled) still names a live fault.
            deadline = rec.fields.get("deadline")
            try:
                when = _aware(deadline, "deadline") if deadline is not None else None
            except (TypeError, ValueError):
                when = None
            current = Outstanding(
                run_id=rec.run_id,
                key=rec.key,
                handle=rec.handle,
                state="intent",
                since=rec.ts,
                deadline=when,
                error=None,
                file=rec.file,
                line=rec.line,
            )
        if rec.event == "fault.applied":
            current = replace(current, handle=rec.handle, state="applied")
        elif rec.event == "fault.revert_failed":
            error = rec.fields.get("error")
            current = replace(current, state="revert_failed", error=str(error or ""))
        elif rec.event != "fault.intent":
            continue  # an unknown fault.* event: newer writer; ignore it
        open_[rec.key] = current
    return list(open_.values())


def outstanding(directory: Path, problems: list[JournalProblem] | None = None) -> list[Outstanding]:
    """Every fault, across all run files, with an intent and no revert; oldest first."""
    found = [item for scan in _scan_dir(directory, problems) for item in _open_faults(scan.records)]
    return sorted(found, key=lambda o: (o.since, str(o.file), o.line))


def runs(directory: Path, problems: list[JournalProblem] | None = None) -> list[RunSummary]:
    """A summary of every run file, oldest first (files without usable records last)."""
    summaries: list[RunSummary] = []
    for scan in _scan_dir(directory, problems):
        recs = scan.records
        events = Counter(r.event for r in recs)
        times = [r.ts for r in recs]
        summaries.append(
            RunSummary(
                run_id=recs[0].run_id if recs else scan.file.stem,
                file=scan.file,
                started=min(times, default=None),
                last=max(times, default=None),
                records=len(recs),
                faults=events["fault.intent"],
                reverted=events["fault.reverted"],
                outstanding=len(_open_faults(recs)),
                problems=len(scan.problems),
                events=dict(events),
            )
        )
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(summaries, key=lambda s: (s.started or far, str(s.file)))
