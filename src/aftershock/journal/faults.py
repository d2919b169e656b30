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
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from aftershock.errors import JournalError
from aftershock.journal.reading import scan_journal
from aftershock.model.secrets import REDACTED, Secret
from aftershock.ports import Handle

__all__ = ["FAULT_EVENTS", "FaultJournal", "fault_key", "iso_utc"]

FAULT_EVENTS: Final = ("fault.intent", "fault.applied", "fault.reverted", "fault.revert_failed")
"""The events that describe a fault's life; ``note()`` may not forge them."""

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

    def note(self, kind: str, **fields: Any) -> int:
        """Record anything else about the run (``run.started``, ``abort``, ...)."""
        if not kind or kind in FAULT_EVENTS:
            msg = f"note kind {kind!r} is reserved or empty; fault records have their own methods"
            raise ValueError(msg)
        if clash := sorted(_RESERVED & fields.keys()):
            msg = f"note fields {', '.join(clash)} are reserved for the record itself"
            raise ValueError(msg)
        return self._append(kind, fields)

    def _fault(self, event: str, handle: Handle, **extra: Any) -> int:
        return self._append(event, {"key": fault_key(handle), "handle": handle.to_json(), **extra})

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


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
