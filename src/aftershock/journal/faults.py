"""Writing the fault journal: one JSON line per record, one file per run.

The order of calls around a fault (see ``aftershock.ports``)::

    journal.intent(handle, deadline)   # before the fault touches anything
    journal.applied(handle)            # the handle as enriched by inject()
    journal.reverted(handle)           # or revert_failed(handle, error)

Two kinds of record, two ways to the disk (``aftershock.journal.writer``):

* **Fault and resource records** (``intent``, ``applied``, ``reverted``,
  ``revert_failed`` and the ``resource_*`` calls) are on disk when the call
  returns: the notes queued before them, then the record itself, are written
  with one write and fsync'd (and the directory too, the first time the file
  appears), so even a SIGKILL or a power cut right after ``intent()`` leaves
  something ``aftershock recover`` can undo.
* **Notes** (``note()``: probe samples, phases, windows, ...) are serialized
  and numbered on the caller, then queued for one writer thread, which writes
  them in batches, one write and one fsync per batch. ``note()`` does no file
  I/O, except that the first record of a ``FaultJournal`` looks at the disk
  once (a stat, and a scan of the file when the run file already exists, to
  continue its numbering). A crash may lose the last few notes (those of the
  writer's short gathering window and the batch being written); readers skip
  a torn last line. The notes that bound a run, ``run.started`` and
  ``run.finished``, are written like fault records, so the file is complete
  when the runner returns.

Sequence numbers increase in file order: a number is given out and the line
queued (or written) under one lock, and a fault record first writes
everything queued before it.

A note that finds the queue full waits up to ``queue_wait`` seconds for room;
if there is none, it is dropped rather than stalling the run any longer, and
later notes are dropped at once until the writer catches up. The count is
written as a ``journal.dropped`` note (``count``, ``first_seq``,
``last_seq``) in front of the next record that gets through. ``note()``
returns the dropped record's number all the same.

A batch the writer cannot write is lost, and the error is not: the next fault
or resource record (or ``close()``) raises it as a ``JournalError`` naming the
file, instead of writing its own record. ``close()`` (idempotent; also by
``with``) writes what is queued and stops the thread; afterwards every record
is written as fault records are. A journal that is never closed is flushed
when it is garbage-collected or the interpreter exits normally, and its
thread is a daemon.

Every record carries its schema version, ``"v": 2`` (``JOURNAL_VERSION``);
readers take a record without one as version 1 (``aftershock.journal.reading``).

A fault is identified by its key, ``<step>/<resource>...``: drivers keep
``Handle.resources`` unchanged from ``prepare`` to ``revert`` so that the
intent, applied and reverted records of one fault share it.

What a run creates for itself (a Toxiproxy proxy it provisions) follows the
same protocol with records of its own, ``resource.intent`` →
``resource.created`` → ``resource.released`` (or ``resource.release_failed``),
keyed the same way; ``aftershock.journal.resources`` lists those never released.
Readers that predate them see ordinary notes and skip them, and a journal
without them simply has nothing outstanding of that kind.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from aftershock.errors import JournalError
from aftershock.journal.reading import (
    JOURNAL_VERSION,
    VERSION_KEY,
    scan_journal,
)
from aftershock.journal.writer import (
    DEFAULT_LINGER,
    DEFAULT_MAX_WAIT,
    DEFAULT_QUEUE_BYTES,
    JournalFile,
    NoteWriter,
)
from aftershock.model.secrets import REDACTED, Secret
from aftershock.ports import Handle

__all__ = [
    "DROPPED_NOTE",
    "DURABLE_NOTES",
    "FAULT_EVENTS",
    "RESOURCE_EVENTS",
    "FaultJournal",
    "fault_key",
    "iso_utc",
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
DURABLE_NOTES: Final = frozenset({"run.started", "run.finished"})
"""Notes written like fault records (durable on return): those that bound a run."""
DROPPED_NOTE: Final = "journal.dropped"
"""The note that counts notes dropped because the writer's queue stayed full."""

_RESERVED: Final = frozenset({VERSION_KEY, "ts", "seq", "event", "run_id", "key", "handle"})
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

    Safe to share between coroutines and threads of one process (one lock
    orders the records; one writer thread writes the notes). One writer per
    run: two processes appending to the same run file would number their
    records independently. Close it (or use it as a context manager) when the
    run is over.
    """

    def __init__(
        self,
        directory: Path,
        run_id: str,
        *,
        clock: Callable[[], datetime] = _utcnow,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
        queue_wait: float = DEFAULT_MAX_WAIT,
        linger: float = DEFAULT_LINGER,
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
        self._closed = False
        self._dropped = 0  # notes dropped since the last record that got through
        self._dropped_seqs = (0, 0)  # the first and last of them
        self._writer = NoteWriter(
            JournalFile(self.path),
            name=f"journal-{run_id}",
            queue_bytes=queue_bytes,
            max_wait=queue_wait,
            linger=linger,
        )
        # Bound to the writer, not to self, so that it does not keep the journal alive.
        self._finalizer = weakref.finalize(self, self._writer.close_quietly)

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
        """Record anything else about the run (``run.started``, ``sample``, ``abort``, ...).

        Queued for the writer thread, not yet on disk when this returns (except
        ``DURABLE_NOTES`` and after ``close()``); returns the record's number.
        """
        if not kind or kind in FAULT_EVENTS or kind in RESOURCE_EVENTS:
            msg = f"note kind {kind!r} is reserved or empty; fault records have their own methods"
            raise ValueError(msg)
        if clash := sorted(_RESERVED & fields.keys()):
            msg = f"note fields {', '.join(clash)} are reserved for the record itself"
            raise ValueError(msg)
        return self._append(kind, fields, durable=kind in DURABLE_NOTES)

    @property
    def pending(self) -> int:
        """Notes recorded but not yet written (queued, or in the batch being written)."""
        return self._writer.pending

    def flush(self) -> None:
        """Write every note recorded so far and fsync it; raise a failed batch's error."""
        with self._lock:
            self._writer.write_durable(b"")

    def close(self) -> None:
        """Write what is queued, stop the writer thread; raise a failed batch's error.

        Idempotent. The journal stays usable: later records are written as
        fault records are, durable when the call returns.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._finalizer.detach()
            try:
                self._writer.close()
            finally:
                if self._dropped:
                    self._write_dropped()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.close()
        except JournalError as error:
            if exc is None:
                raise
            exc.add_note(str(error))  # keep the body's exception; still say what was lost

    def _fault(self, event: str, handle: Handle, **extra: Any) -> int:
        fields = {"key": fault_key(handle), "handle": handle.to_json(), **extra}
        return self._append(event, fields, durable=True)

    def _resource(self, event: str, handle: Handle, **extra: Any) -> int:
        # Not "key"/"handle": readers that predate these records parse those
        # fields only on fault.* events, and would drop them here.
        fields = {"resource": fault_key(handle), "resource_handle": handle.to_json(), **extra}
        return self._append(event, fields, durable=True)

    def _append(self, event: str, fields: Mapping[str, Any], *, durable: bool) -> int:
        """Number and serialize one record; write it durably or queue it; return its number."""
        with self._lock:
            seq = self._last_seq()
            lines = []
            if self._dropped:
                seq += 1
                lines.append(self._line(seq, DROPPED_NOTE, self._dropped_fields()))
            seq += 1
            lines.append(self._line(seq, event, fields))
            data = b"".join(lines)
            self._seq = seq  # numbers are never given out twice, even if this write fails
            if durable or self._closed:
                self._writer.write_durable(data)
            elif not self._writer.submit(data, wait=not self._dropped):
                self._dropped_seqs = (self._dropped_seqs[0] if self._dropped else seq, seq)
                self._dropped += 1
                return seq
            self._dropped = 0
            return seq

    def _last_seq(self) -> int:
        """The last number given out; on first use, the highest one in the file on disk."""
        if self._seq is None:
            try:
                if self.path.exists():
                    scan = scan_journal(self.path)
                    self._seq = max((r.seq for r in scan.records), default=0)
                else:
                    self._seq = 0
            except (OSError, JournalError) as exc:
                msg = f"{self.path}: cannot write the fault journal: {exc}"
                raise JournalError(msg) from exc
        return self._seq

    def _line(self, seq: int, event: str, fields: Mapping[str, Any]) -> bytes:
        record = {
            VERSION_KEY: JOURNAL_VERSION,
            "ts": iso_utc(self._clock()),
            "seq": seq,
            "event": event,
            "run_id": self.run_id,
            **fields,
        }
        try:
            text = json.dumps(
                record,
                ensure_ascii=False,
                allow_nan=False,
                separators=(",", ":"),
                default=_json_default,
            )
        except (TypeError, ValueError) as exc:
            msg = f"{self.path}: cannot journal {event}: {exc}"
            raise JournalError(msg) from exc
        return text.encode("utf-8") + b"\n"

    def _dropped_fields(self) -> dict[str, int]:
        first, last = self._dropped_seqs
        return {"count": self._dropped, "first_seq": first, "last_seq": last}

    def _write_dropped(self) -> None:
        seq = self._last_seq() + 1
        self._seq = seq
        self._writer.write_durable(self._line(seq, DROPPED_NOTE, self._dropped_fields()))
        self._dropped = 0
