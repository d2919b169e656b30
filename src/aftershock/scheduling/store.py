"""The scheduler's persistent state: one SQLite file, two tables.

``jobs`` holds, per key, the cron text it was computed for and the **anchor**:
every cron fire time up to the anchor has been dealt with (run or recorded as
skipped). The anchor and the fire's record are written in one transaction
*before* a run starts, so a crash or restart at any point can neither run a fire
twice (its anchor is already past it) nor lose one (until the anchor moves, the
fire is still due and the misfire policy decides about it on the next start).

``fires`` is the history behind ``ChaosScheduler.history``; the newest
``KEEP_FIRES`` per key are kept.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from aftershock.errors import JournalError
from aftershock.scheduling.policy import Fire
from aftershock.storage import SqliteFile

__all__ = ["KEEP_FIRES", "FireRow", "JobRow", "ScheduleStore"]

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
    """What the store remembers about a job between restarts."""

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


class ScheduleStore:
    """The SQLite file at ``path``; every sqlite3 error becomes ``JournalError``."""

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
        return self._db.write()

    def job(self, key: str) -> JobRow | None:
        """The stored job, or ``None`` if the key was never scheduled (or was removed)."""
        with self._connect() as conn:
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
    ) -> None:
        """Create or replace a job's row."""
        with self._write() as conn:
            self._upsert(
                conn,
                key=key,
                cron=cron,
                timezone=timezone,
                anchor=anchor,
                next_fire=next_fire,
                now=now,
            )

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
        anchor: datetime,
        next_fire: datetime | None,
        now: datetime,
    ) -> list[int]:
        """Record fires and move the anchor, atomically; return the new fire ids."""
        ids: list[int] = []
        with self._write() as conn:
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

    def finish(self, fire_id: int, status: str) -> None:
        """Record how a run ended."""
        with self._write() as conn:
            conn.execute("UPDATE fires SET status = ? WHERE id = ?", (status, fire_id))

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
