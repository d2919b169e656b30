"""The SLO ledger: every run and the error budget it spent, in one SQLite file.

The fault journal answers "what must be undone"; the ledger answers "how much
budget is left" (the gate before a run) and "how did chaos go over the weeks"
(``aftershock history``). One connection per call, WAL and a busy timeout, so a
scheduler, a CLI run and the healer can share the file; every write is one
``BEGIN IMMEDIATE`` transaction, so two writers queue instead of deadlocking.
"""

from __future__ import annotations

import sqlite3
import statistics
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

from aftershock.errors import JournalError
from aftershock.model.results import RunResult, RunStatus
from aftershock.slo.budget import remaining as remaining_budget
from aftershock.storage import SqliteFile

__all__ = ["LEDGER_FILE", "LEDGER_SCHEMA_VERSION", "Ledger", "LedgerRun", "LedgerSpend", "WeekRow"]

LEDGER_FILE: Final = "ledger.sqlite3"
"""The ledger's file name under ``$AFTERSHOCK_HOME``."""

LEDGER_SCHEMA_VERSION: Final = 1
"""The schema this code writes; a newer file is refused rather than misread."""

_BUSY_TIMEOUT_MS: Final = 10_000

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY,
        experiment TEXT NOT NULL,
        namespace TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,
        forced INTEGER NOT NULL DEFAULT 0,
        dry_run INTEGER NOT NULL DEFAULT 0,
        recovery_seconds REAL,
        journal_path TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS spend (
        run_id TEXT NOT NULL,
        slo TEXT NOT NULL,
        objective REAL NOT NULL,
        window_seconds REAL NOT NULL,
        spent REAL NOT NULL,
        burn_rate REAL NOT NULL,
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (run_id, slo)
    )""",
    "CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at)",
    "CREATE INDEX IF NOT EXISTS spend_slo_time ON spend (slo, recorded_at)",
)

# One fixed filter for runs and their spend; a None parameter switches its condition off.
_RUNS_QUERY: Final = (
    "SELECT r.* FROM runs r"
    " WHERE (? IS NULL OR r.experiment = ?) AND (? IS NULL OR r.started_at >= ?)"
    " ORDER BY r.started_at, r.run_id"
)
_SPEND_QUERY: Final = (
    "SELECT s.* FROM spend s JOIN runs r ON r.run_id = s.run_id"
    " WHERE (? IS NULL OR r.experiment = ?) AND (? IS NULL OR r.started_at >= ?)"
    " ORDER BY s.slo"
)


def _stamp(moment: datetime) -> str:
    # One fixed UTC format, so text order is time order and SQL can compare it.
    # Naive datetimes are taken as UTC, as everything aftershock writes is.
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerSpend:
    """Budget one run spent on one SLO."""

    run_id: str
    slo: str
    objective: float
    window_seconds: float
    spent: float
    burn_rate: float
    recorded_at: datetime
    """When the budget was spent: the run's end (its start if it never ended)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerRun:
    """One recorded run, with its spend on each SLO."""

    run_id: str
    experiment: str
    namespace: str | None
    started_at: datetime
    finished_at: datetime | None
    status: RunStatus
    forced: bool
    dry_run: bool
    recovery_seconds: float | None
    journal_path: str | None
    spend: tuple[LedgerSpend, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class WeekRow:
    """One experiment's runs in one ISO week (dry runs left out)."""

    experiment: str
    week: str
    """ISO week, e.g. ``2026-W10``."""
    week_start: date
    """The Monday of that week (UTC)."""
    runs: int
    passed: int
    failed: int
    aborted: int
    errored: int
    """Runs a driver or probe error ended."""
    interrupted: int
    """Runs stopped from outside (SIGINT, SIGTERM, a crash): not the system's failure."""
    forced: int
    budget_spent: float
    """Sum of the budget spent on every SLO by these runs."""
    recovery_median: float | None
    recovery_max: float | None


class Ledger:
    """The SQLite ledger at ``path`` (``$AFTERSHOCK_HOME/ledger.sqlite3`` by convention).

    Opening creates the file and schema if needed. Every sqlite3 error is raised
    as ``JournalError`` naming the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # Connections are per call, but within one process a lock keeps threads
        # from contending for SQLite's write lock (and its busy-retry sleeps).
        self._lock = threading.Lock()
        self._db = SqliteFile(self.path, "ledger")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"ledger {self.path}: cannot create its directory: {exc}"
            raise JournalError(msg) from exc
        self._migrate()

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db.connect()

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db.write()

    def _migrate(self) -> None:
        with self._lock, self._connect() as conn:
            # WAL lets readers (history, the gate) run while a writer commits; the
            # mode is stored in the file, so this is a no-op after the first open.
            conn.execute("PRAGMA journal_mode = WAL")
        with self._write() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)
            version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
            if version is None:
                conn.execute(
                    "INSERT INTO schema_version (version) VALUES (?)", (LEDGER_SCHEMA_VERSION,)
                )
            elif version > LEDGER_SCHEMA_VERSION:
                msg = (
                    f"ledger {self.path}: schema version {version} is newer than"
                    f" {LEDGER_SCHEMA_VERSION}; upgrade aftershock"
                )
                raise JournalError(msg)

    def record_run(
        self, result: RunResult, *, journal_path: str | None = None, namespace: str | None = None
    ) -> None:
        """Record a run and its spend; recording the same ``run_id`` again replaces it."""
        recorded_at = _stamp(result.finished_at or result.started_at)
        with self._write() as conn:
            conn.execute("DELETE FROM spend WHERE run_id = ?", (result.run_id,))
            conn.execute(
                "INSERT OR REPLACE INTO runs (run_id, experiment, namespace, started_at,"
                " finished_at, status, forced, dry_run, recovery_seconds, journal_path)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    result.run_id,
                    result.experiment,
                    namespace,
                    _stamp(result.started_at),
                    _stamp(result.finished_at) if result.finished_at else None,
                    result.status.value,
                    int(result.forced),
                    int(result.dry_run),
                    result.recovery_seconds,
                    journal_path,
                ),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO spend (run_id, slo, objective, window_seconds, spent,"
                " burn_rate, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        result.run_id,
                        b.slo,
                        b.objective,
                        b.window_seconds,
                        b.spent,
                        b.burn_rate,
                        recorded_at,
                    )
                    for b in result.budgets
                ],
            )

    def spent_since(
        self, slo: str, since: datetime, *, until: datetime | None = None
    ) -> list[float]:
        """Budget fractions spent on ``slo`` by runs that ended in ``[since, until]``.

        Dry runs inject nothing, so whatever they measured is not chaos spend.
        """
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT s.spent FROM spend s JOIN runs r ON r.run_id = s.run_id"
                " WHERE s.slo = ? AND s.recorded_at >= ? AND (? IS NULL OR s.recorded_at <= ?)"
                " AND r.dry_run = 0 ORDER BY s.recorded_at",
                (slo, _stamp(since), *([_stamp(until)] * 2 if until is not None else [None, None])),
            ).fetchall()
        return [float(row[0]) for row in rows]

    def remaining(self, slo: str, window: timedelta, now: datetime) -> float:
        """Share of ``slo``'s budget left over the rolling ``window`` ending at ``now``."""
        return remaining_budget(self.spent_since(slo, now - window, until=now))

    def runs(self, experiment: str | None = None, since: datetime | None = None) -> list[LedgerRun]:
        """Recorded runs, oldest first, optionally of one experiment or started since a time."""
        stamp = _stamp(since) if since is not None else None
        params = (experiment, experiment, stamp, stamp)
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            run_rows = conn.execute(_RUNS_QUERY, params).fetchall()
            spend_rows = conn.execute(_SPEND_QUERY, params).fetchall()
        spends: dict[str, list[LedgerSpend]] = {}
        for row in spend_rows:
            spends.setdefault(row["run_id"], []).append(
                LedgerSpend(
                    run_id=row["run_id"],
                    slo=row["slo"],
                    objective=row["objective"],
                    window_seconds=row["window_seconds"],
                    spent=row["spent"],
                    burn_rate=row["burn_rate"],
                    recorded_at=_parse(row["recorded_at"]),
                )
            )
        return [
            LedgerRun(
                run_id=row["run_id"],
                experiment=row["experiment"],
                namespace=row["namespace"],
                started_at=_parse(row["started_at"]),
                finished_at=_parse(row["finished_at"]) if row["finished_at"] else None,
                status=RunStatus(row["status"]),
                forced=bool(row["forced"]),
                dry_run=bool(row["dry_run"]),
                recovery_seconds=row["recovery_seconds"],
                journal_path=row["journal_path"],
                spend=tuple(spends.get(row["run_id"], ())),
            )
            for row in run_rows
        ]

    def history(self, weeks: int, now: datetime) -> list[WeekRow]:
        """Per experiment per ISO week, the last ``weeks`` weeks up to ``now`` (oldest first)."""
        if weeks < 1:
            msg = f"weeks must be at least 1, got {weeks}"
            raise ValueError(msg)
        today = (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(UTC)
        first_monday = today.date() - timedelta(days=today.weekday(), weeks=weeks - 1)
        since = datetime(first_monday.year, first_monday.month, first_monday.day, tzinfo=UTC)
        groups: dict[tuple[date, str], list[LedgerRun]] = {}
        for run in self.runs(since=since):
            started = run.started_at.astimezone(UTC)
            if run.dry_run or started > today:
                continue
            monday = started.date() - timedelta(days=started.weekday())
            groups.setdefault((monday, run.experiment), []).append(run)
        return [
            _week_row(monday, experiment, runs)
            for (monday, experiment), runs in sorted(groups.items())
        ]


def _week_row(monday: date, experiment: str, runs: list[LedgerRun]) -> WeekRow:
    year, week, _ = monday.isocalendar()
    statuses = [run.status for run in runs]
    recoveries = [r.recovery_seconds for r in runs if r.recovery_seconds is not None]
    return WeekRow(
        experiment=experiment,
        week=f"{year}-W{week:02d}",
        week_start=monday,
        runs=len(runs),
        passed=statuses.count(RunStatus.PASSED),
        failed=statuses.count(RunStatus.FAILED),
        aborted=statuses.count(RunStatus.ABORTED),
        errored=statuses.count(RunStatus.ERRORED),
        interrupted=statuses.count(RunStatus.INTERRUPTED),
        forced=sum(1 for r in runs if r.forced),
        budget_spent=sum(s.spent for r in runs for s in r.spend),
        recovery_median=statistics.median(recoveries) if recoveries else None,
        recovery_max=max(recoveries) if recoveries else None,
    )
