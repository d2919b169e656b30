"""Small SQLite files (ledger, schedule store): short connections, queued writers.

Each call opens its own connection with a busy timeout; every write is one
``BEGIN IMMEDIATE`` transaction, so concurrent writers (threads or processes)
queue instead of deadlocking. Errors become ``JournalError`` naming the file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from aftershock.errors import JournalError

__all__ = ["SqliteFile"]


class SqliteFile:
    """One SQLite database file; ``label`` names it in errors (``ledger``, ``schedule store``)."""

    def __init__(self, path: Path, label: str, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = path
        self.label = label
        self.busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection in autocommit mode (transactions are begun explicitly)."""
        try:
            with closing(sqlite3.connect(self.path, isolation_level=None)) as conn:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
                yield conn
        except sqlite3.Error as exc:
            msg = f"{self.label} {self.path}: {exc}"
            raise JournalError(msg) from exc

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one ``BEGIN IMMEDIATE`` transaction, committed on success."""
        with self._lock, self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
