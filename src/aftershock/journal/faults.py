"""Writing the fault journal: one fsync'd JSON line per record, one file per run.

The order of calls around a fault (see ``aftershock.ports``)::

    journal.intent(handle, deadline)   # before the fault touches anything
    journal.applied(handle)            # the handle as enriched by inject()
    journal.reverted(handle)           # or revert_failed(handle, error)

A record is on disk when the call returns: the file is flushed and fsync'd (and
the directory too, the first time the file appears), so even a SIGKILL or a
power cut right after ``intent()`` leaves something ``aftershock recover`` can
undo. A fault is identified by its key, ``<step>/<resource>...``: drivers keep
``Handle.resources`` unchanged from ``prepare`` to ``revert`` so that the
intent, applied and reverted records of one fault share it.

What a run creates for itself (a Toxiproxy proxy it provisions) follows the
same protocol with records of its own, ``resource.intent`` →
``resource.created`` → ``resource.released`` (or ``resource.release_failed``),
keyed the same way; ``outstanding_resources`` lists those never released.
Readers that predate them see ordinary notes and skip them, and a journal
without them simply has nothing outstanding of that kind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from aftershock.errors import JournalError
from aftershock.journal.reading import JournalProblem, JournalRecord, scan_journal
from aftershock.model.secrets import REDACTED, Secret
from aftershock.ports import Handle

__all__ = [
    "FAULT_EVENTS",
    "RESOURCE_EVENTS",
    "FaultJournal",
    "OutstandingResource",
    "fault_key",
    "iso_utc",
    "outstanding_resources",
]

FAULT_EVENTS: Final = ("fault.intent", "fault.applied", "fault.reverted", "fault.revert_failed")
"""The events that describe a fault's life; ``note()`` may not forge them."""
RESOURCE_EVENTS: Final = (
    "resource.intent",
    "resource.created",
    "resource.released",
    "resource.release_failed",
)
"""The events that describe the life of something a run created; ``note()`` may not forge them."""

_RESERVED: Final = frozenset({"ts", "seq", "event", "run_id", "key", "handle"})
_RUN_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def fault_key(handle: Handle) -> str:
    """``<step>/<resource>...``: what ties the records of one fault together."""
    return "/".join((handle.step, *handle.resources))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds; a naive time is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _json_default(value: object) -> Any:
    # A secret must never reach the disk, even if a driver put one in an undo record.
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, datetime):
        return iso_utc(value)
    msg = f"{type(value).__name__} is not JSON serializable"
    raise TypeError(msg)


class FaultJournal:
    """The journal of one run: ``<directory>/<run_id>.jsonl``, appended to, never rewritten.

    Safe to share between coroutines and threads of one process (one lock;
    writes are small and synchronous so that a record is durable when the call
    returns). One writer per run: two processes appending to the same run file
    would number their records independently.
    """

    def __init__(
        self,
        directory: Path,
        run_id: str,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not _RUN_ID_RE.match(run_id):
            msg = f"invalid run id {run_id!r}: it names a file, so use letters, digits, . _ -"
            raise JournalError(msg)
        self.directory = Path(directory)
        self.run_id = run_id
        self.path = self.directory / f"{run_id}.jsonl"
        self._clock = clock
        self._lock = threading.Lock()
        self._seq: int | None = None  # None: not yet looked at the file on disk

    def intent(self, handle: Handle, deadline: datetime) -> int:
        """Record that ``handle``'s fault is about to be applied, to be gone by ``deadline``."""
        return self._fault("fault.intent", handle, deadline=iso_utc(deadline))

    def applied(self, handle: Handle) -> int:
        """Record that the fault is in effect (with the handle ``inject`` returned)."""
        return self._fault("fault.applied", handle)

    def reverted(self, handle: Handle) -> int:
        """Record that the fault was undone; ``aftershock recover`` will leave it alone."""
        return self._fault("fault.reverted", handle)

    def revert_failed(self, handle: Handle, error: str) -> int:
        """Record a failed revert; the fault stays outstanding for ``aftershock recover``."""
        return self._fault("fault.revert_failed", handle, error=error)

    def resource_intent(self, handle: Handle) -> int:
        """Record that the resource ``handle`` names is about to be created."""
        return self._resource("resource.intent", handle)

    def resource_created(self, handle: Handle) -> int:
        """Record that it was created (``handle.undo`` holds what the backend answered)."""
        return self._resource("resource.created", handle)

    def resource_released(self, handle: Handle, outcome: str) -> int:
        """Record that aftershock holds nothing there any more: deleted, never there, not ours."""
        return self._resource("resource.released", handle, outcome=outcome)

    def resource_release_failed(self, handle: Handle, error: str) -> int:
        """Record a failed removal; the resource stays outstanding for ``aftershock recover``."""
        return self._resource("resource.release_failed", handle, error=error)

    def note(self, kind: str, **fields: Any) -> int:
        """Record anything else about the run (``run.started``, ``abort``, ...)."""
        if not kind or kind in FAULT_EVENTS or kind in RESOURCE_EVENTS:
            msg = f"note kind {kind!r} is reserved or empty; fault records have their own methods"
            raise ValueError(msg)
        if clash := sorted(_RESERVED & fields.keys()):
            msg = f"note fields {', '.join(clash)} are reserved for the record itself"
            raise ValueError(msg)
        return self._append(kind, fields)

    def _fault(self, event: str, handle: Handle, **extra: Any) -> int:
        return self._append(event, {"key": fault_key(handle), "handle": handle.to_json(), **extra})

    def _resource(self, event: str, handle: Handle, **extra: Any) -> int:
        # Not "key"/"handle": readers that predate these records parse those
        # fields only on fault.* events, and would drop them here.
        fields = {"resource": fault_key(handle), "resource_handle": handle.to_json(), **extra}
        return self._append(event, fields)

    def _append(self, event: str, fields: Mapping[str, Any]) -> int:
        """Write one record and make it durable; return its sequence number."""
        with self._lock:
            try:
                created = self._open_run()
                assert self._seq is not None
                seq = self._seq + 1
                record = {
                    "ts": iso_utc(self._clock()),
                    "seq": seq,
                    "event": event,
                    "run_id": self.run_id,
                    **fields,
                }
                line = json.dumps(
                    record,
                    ensure_ascii=False,
                    allow_nan=False,
                    separators=(",", ":"),
                    default=_json_default,
                )
                with self.path.open("ab") as file:
                    file.write(line.encode("utf-8") + b"\n")
                    file.flush()
                    os.fsync(file.fileno())
                if created:
                    _fsync_directory(self.directory)
            except (TypeError, ValueError) as exc:
                self._seq = None  # look at the file again: it may not even exist yet
                msg = f"{self.path}: cannot journal {event}: {exc}"
                raise JournalError(msg) from exc
            except OSError as exc:
                self._seq = None  # look at the file again: a partial line may be there
                msg = f"{self.path}: cannot write the fault journal: {exc}"
                raise JournalError(msg) from exc
            self._seq = seq
            return seq

    def _open_run(self) -> bool:
        """On first use: create the directory, continue numbering, fence off a torn line.

        Returns True when the file does not exist yet (its directory entry
        then needs an fsync of its own).
        """
        if self._seq is not None:
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self._seq = 0
            return True
        scan = scan_journal(self.path)
        self._seq = max((r.seq for r in scan.records), default=0)
        with self.path.open("rb+") as file:
            size = file.seek(0, os.SEEK_END)
            if size:
                file.seek(size - 1)
                if file.read(1) != b"\n":
                    # A crash cut the last write short: end that line, so our next
                    # record starts on a line of its own and stays readable.
                    file.write(b"\n")
                    file.flush()
                    os.fsync(file.fileno())
        return False


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


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
