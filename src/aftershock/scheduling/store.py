"""The scheduler's persistent state: ``ScheduleStorage``, and its SQLite implementation.

Per job key there is **one record**: the cron text and time zone it was
computed for and the **anchor**: every cron fire time up to the anchor has been
dealt with (run, or recorded as skipped). Next to it, the fire history behind
``ChaosScheduler.history`` (the newest ``KEEP_FIRES`` per key are kept).

The anchor moves by **compare-and-set** (``ScheduleStorage.record``): a
scheduler passes the anchor it believes is current, and the fire rows are
written and the anchor moved only if the stored anchor still equals it. That
write happens *before* a run starts, so

- a crash or restart at any point can neither run a fire twice (its anchor is
  already past it) nor lose one (until the anchor moves, the fire is still due
  and the misfire policy decides about it on the next start);
- two schedulers on one store (two ``aftershock schedule`` daemons with the
  same ``$AFTERSHOCK_HOME``) run each fire once: the one whose write lands
  first runs it, the other is told nothing was written, adopts the stored
  anchor and runs nothing.

``ScheduleStore`` keeps this in one SQLite file (WAL), tables ``jobs`` (one row
per key) and ``fires``; each compare-and-set is one ``BEGIN IMMEDIATE``
transaction (``storage.SqliteFile``), which takes the write lock before it reads
the anchor, so no other writer can come between the check and the write. A
store kept elsewhere (such as a custom resource's status, written with a
``resourceVersion`` precondition) implements the same Protocol.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

from aftershock.errors import JournalError
from aftershock.scheduling.policy import Fire
from aftershock.storage import SqliteFile

__all__ = ["KEEP_FIRES", "FireRow", "JobRow", "ScheduleStorage", "ScheduleStore"]

KEEP_FIRES: Final = 500
"""History kept per job."""

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS jobs (
        key TEXT PRIMARY KEY,
        cron TEXT NOT NULL,
        timezone TEXT NOT NULL,
        anchor TEXT NOT NULL,
        next_fire TEXT,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS fires (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        fire_time TEXT NOT NULL,
        due TEXT NOT NULL,
        decided_at TEXT NOT NULL,
        decision TEXT NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL,
        status TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS fires_key ON fires (key, id)",
)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRow:
    """What the store remembers about a job between restarts (its one record)."""

    key: str
    cron: str
    timezone: str
    anchor: datetime
    next_fire: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FireRow:
    """A fire about to be recorded."""

    fire_time: datetime
    due: datetime
    decided_at: datetime
    decision: str
    reason: str
    detail: str


class ScheduleStorage(Protocol):
    """Where ``ChaosScheduler`` keeps its anchors and fire history.

    The contract is written for **one record per job key** (cron, time zone,
    anchor, next fire time, and that job's fire history) updated by
    **compare-and-set**: every method that writes a job's record reads and
    writes it atomically, either in one transaction that holds the write lock
    from the read on (SQLite: ``BEGIN IMMEDIATE``) or as a conditional update
    on a version (Kubernetes: ``resourceVersion``), retried from a fresh read
    on a version conflict. Several schedulers, in one process or several, may
    share one storage; every method may be called from any of them at any
    time. Errors are raised as ``JournalError``.
    """

    def job(self, key: str) -> JobRow | None:
        """The record of ``key`` as stored now; ``None`` if there is none."""
        ...

    def keys(self) -> list[str]:
        """Every key that has a record, sorted."""
        ...

    def save_job(
        self,
        key: str,
        *,
        cron: str,
        timezone: str,
        anchor: datetime,
        next_fire: datetime | None,
        now: datetime,
    ) -> JobRow:
        """Create the record of ``key``, or keep the one there; return the record as stored.

        A record with the same ``cron`` and ``timezone`` is kept unchanged, its
        anchor included: another scheduler may have advanced it, and a reload
        must never move it back. Otherwise (no record, or one computed for
        another cron or time zone) the record becomes ``(cron, timezone,
        anchor, next_fire)``. Atomic: on a version conflict, read again and
        decide again.
        """
        ...

    def delete_job(self, key: str) -> None:
        """Remove the record of ``key`` (nothing if there is none); its fire history stays."""
        ...

    def record(
        self,
        key: str,
        fires: Sequence[FireRow],
        *,
        cron: str,
        timezone: str,
        expected_anchor: datetime | None,
        anchor: datetime,
        next_fire: datetime | None,
        now: datetime,
    ) -> list[int] | None:
        """Compare-and-set: record ``fires`` and move the anchor, or write nothing.

        The precondition is on the record of ``key``: with ``expected_anchor``
        a datetime, the record exists, holds ``cron`` and ``timezone``, and its
        anchor is the same instant as ``expected_anchor``; with ``None``, there
        is no record (the write creates it).

        If the precondition holds, then in one atomic write the record becomes
        ``(cron, timezone, anchor, next_fire)`` and ``fires`` are appended to
        the history of ``key``, in order; the return value is their new ids,
        in the same order (an empty list for no fires). An id is unique at
        least within the history of ``key``; it is only handed back to
        ``finish``.

        If it does not hold (another scheduler moved the anchor, changed the
        cron, or removed or created the record), nothing at all is written and
        the return value is ``None``; the caller must then not run any of
        ``fires``. The precondition is on the record's contents, not on its
        version: a write refused only because the version moved (another
        fire's ``finish``, say) is retried from a fresh read while the
        precondition still holds.
        """
        ...

    def finish(self, key: str, fire_id: int, status: str) -> None:
        """Set how the run of fire ``fire_id`` of ``key`` ended; an unknown fire is ignored.

        Unconditional on the anchor: a run is finished by the scheduler that
        recorded its fire, whatever happened to the anchor since.
        """
        ...

    def history(self, key: str) -> list[Fire]:
        """The recorded fires of ``key``, oldest first, each recorded once.

        Only the newest fires need be kept (``ScheduleStore``: ``KEEP_FIRES``).
        """
        ...


class ScheduleStore:
    """``ScheduleStorage`` in the SQLite file ``path``; sqlite3 errors become ``JournalError``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = SqliteFile(self.path, "schedule store")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"schedule store {self.path}: cannot create its directory: {exc}"
            raise JournalError(msg) from exc
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
        with self._write() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db.connect()

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        # BEGIN IMMEDIATE on an autocommit connection: the write lock is taken before the
        # first read, so a compare-and-set sees the latest anchor and nobody writes in between.
        return self._db.write()

    def job(self, key: str) -> JobRow | None:
        """The stored job, or ``None`` if the key was never scheduled (or was removed)."""
        with self._connect() as conn:
            return self._read(conn, key)

    @staticmethod
    def _read(conn: sqlite3.Connection, key: str) -> JobRow | None:
        row = conn.execute(
            "SELECT key, cron, timezone, anchor, next_fire FROM jobs WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        return JobRow(
            key=row[0],
            cron=row[1],
            timezone=row[2],
            anchor=_parse(row[3]),
            next_fire=_parse(row[4]) if row[4] else None,
        )

    def keys(self) -> list[str]:
        """Every stored job key."""
        with self._connect() as conn:
            return [row[0] for row in conn.execute("SELECT key FROM jobs ORDER BY key")]

    def save_job(
        self,
        key: str,
        *,
        cron: str,
        timezone: str,
        anchor: datetime,
        next_fire: datetime | None,
        now: datetime,
    ) -> JobRow:
        """Keep the row of the same cron and time zone, else write this one; see the Protocol."""
        with self._write() as conn:
            stored = self._read(conn, key)
            if stored is not None and (stored.cron, stored.timezone) == (cron, timezone):
                return stored
            self._upsert(
                conn,
                key=key,
                cron=cron,
                timezone=timezone,
                anchor=anchor,
                next_fire=next_fire,
                now=now,
            )
        return JobRow(key=key, cron=cron, timezone=timezone, anchor=anchor, next_fire=next_fire)

    @staticmethod
    def _upsert(
        conn: sqlite3.Connection,
        *,
        key: str,
        cron: str,
        timezone: str,
        anchor: datetime,
        next_fire: datetime | None,
        now: datetime,
    ) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO jobs (key, cron, timezone, anchor, next_fire, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                key,
                cron,
                timezone,
                _stamp(anchor),
                _stamp(next_fire) if next_fire else None,
                _stamp(now),
            ),
        )

    def delete_job(self, key: str) -> None:
        """Forget a job's anchor (its history stays)."""
        with self._write() as conn:
            conn.execute("DELETE FROM jobs WHERE key = ?", (key,))

    def record(
        self,
        key: str,
        fires: Sequence[FireRow],
        *,
        cron: str,
        timezone: str,
        expected_anchor: datetime | None,
        anchor: datetime,
        next_fire: datetime | None,
        now: datetime,
    ) -> list[int] | None:
        """Record fires and move the anchor if it is still ``expected_anchor``; see the Protocol."""
        ids: list[int] = []
        with self._write() as conn:
            stored = self._read(conn, key)
            if expected_anchor is None:
                if stored is not None:
                    return None
            elif stored is None or (stored.cron, stored.timezone, stored.anchor) != (
                cron,
                timezone,
                expected_anchor,
            ):
                return None
            for fire in fires:
                cursor = conn.execute(
                    "INSERT INTO fires (key, fire_time, due, decided_at, decision, reason, detail)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        _stamp(fire.fire_time),
                        _stamp(fire.due),
                        _stamp(fire.decided_at),
                        fire.decision,
                        fire.reason,
                        fire.detail,
                    ),
                )
                ids.append(int(cursor.lastrowid or 0))
            self._upsert(
                conn,
                key=key,
                cron=cron,
                timezone=timezone,
                anchor=anchor,
                next_fire=next_fire,
                now=now,
            )
            conn.execute(
                "DELETE FROM fires WHERE key = ? AND id NOT IN"
                " (SELECT id FROM fires WHERE key = ? ORDER BY id DESC LIMIT ?)",
                (key, key, KEEP_FIRES),
            )
        return ids

    def finish(self, key: str, fire_id: int, status: str) -> None:
        """Record how a run ended."""
        with self._write() as conn:
            conn.execute(
                "UPDATE fires SET status = ? WHERE id = ? AND key = ?", (status, fire_id, key)
            )

    def history(self, key: str) -> list[Fire]:
        """The recorded fires of ``key``, oldest first."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, key, fire_time, due, decided_at, decision, reason, detail, status"
                " FROM fires WHERE key = ? ORDER BY id",
                (key,),
            ).fetchall()
        return [
            Fire(
                id=row[0],
                key=row[1],
                fire_time=_parse(row[2]),
                due=_parse(row[3]),
                decided_at=_parse(row[4]),
                decision=row[5],
                reason=row[6],
                detail=row[7],
                status=row[8],
            )
            for row in rows
        ]
