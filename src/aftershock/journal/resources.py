"""Reading what runs created for themselves and never released.

A run that creates something (a Toxiproxy proxy it provisions) journals it
with ``resource.intent`` → ``resource.created`` → ``resource.released`` (or
``resource.release_failed``) records, written by ``FaultJournal``;
:func:`outstanding_resources` lists, across all run files, those with an intent
and no release, for ``aftershock recover``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aftershock.errors import JournalError
from aftershock.journal.faults import RESOURCE_EVENTS
from aftershock.journal.reading import JournalProblem, JournalRecord, scan_journal
from aftershock.ports import Handle

__all__ = ["OutstandingResource", "outstanding_resources"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OutstandingResource:
    """Something a run created (or was about to) and never released."""

    run_id: str
    key: str
    handle: Handle
    """The handle of the ``resource.created`` record if there is one, else the intent's."""
    created: bool
    """True once ``resource.created`` was written; False: a crash may have come
    between the intent and the creating call's answer, so it may or may not exist."""
    state: Literal["intent", "created", "release_failed"]
    error: str | None
    file: Path
    line: int
    """Line of the intent record."""


def _resource_of(rec: JournalRecord) -> tuple[str, Handle] | None:
    key, data = rec.fields.get("resource"), rec.fields.get("resource_handle")
    if rec.event not in RESOURCE_EVENTS or not isinstance(key, str) or not isinstance(data, dict):
        return None
    try:
        return key, Handle.from_json(data)
    except (KeyError, TypeError, ValueError):
        return None


def _open_resources(records: Iterable[JournalRecord]) -> list[OutstandingResource]:
    open_: dict[str, OutstandingResource] = {}
    for rec in records:
        found = _resource_of(rec)
        if found is None:
            continue
        key, handle = found
        if rec.event == "resource.released":
            open_.pop(key, None)
            continue
        current = open_.get(key)
        if current is None or rec.event == "resource.intent":
            current = OutstandingResource(
                run_id=rec.run_id,
                key=key,
                handle=handle,
                created=False,
                state="intent",
                error=None,
                file=rec.file,
                line=rec.line,
            )
        if rec.event == "resource.created":
            current = dataclasses.replace(current, handle=handle, created=True, state="created")
        elif rec.event == "resource.release_failed":
            error = str(rec.fields.get("error") or "")
            current = dataclasses.replace(current, state="release_failed", error=error)
        open_[key] = current
    return list(open_.values())


def outstanding_resources(
    directory: Path, problems: list[JournalProblem] | None = None
) -> list[OutstandingResource]:
    """Every resource, across all run files, with an intent and no release; in file order.

    Journals written before these records existed have none, so nothing is
    outstanding in them; unreadable files and lines go to ``problems``.
    """
    found: list[OutstandingResource] = []
    for path in sorted(Path(directory).glob("*.jsonl")):
        try:
            scan = scan_journal(path)
        except JournalError as exc:
            if problems is not None:
                problems.append(JournalProblem(file=path, line=0, message=str(exc)))
            continue
        if problems is not None:
            problems.extend(scan.problems)
        found.extend(_open_resources(scan.records))
    return found
