"""The SLO ledger: every run and the error budget it spent, in one SQLite file.

The fault journal answers "what must be undone"; the ledger answers "how much
budget is left" (the gate before a run) and "how did chaos go over the weeks"
(``aftershock history``). One connection per call, WAL and a busy timeout, so a
scheduler, a CLI run and the healer can share the file; every write is one
``BEGIN IMMEDIATE`` transaction, so two writers queue instead of deadlocking.

The file carries its schema version. Opening an older file migrates it in one
transaction (each step in ``_MIGRATIONS`` adds, never rewrites), so runs
recorded by an older aftershock stay readable: what that version did not keep
(faults, healer actions) reads back as ``None``, not as "none happened".
"""

from __future__ import annotations

import sqlite3
import statistics
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from aftershock.errors import JournalError
from aftershock.journal.ledger_records import (
    LedgerAction,
    LedgerFault,
    LedgerRun,
    LedgerSpend,
    WeekRow,
    noted_healer_actions,
)
from aftershock.model.results import HealingResult, RunResult, RunStatus
from aftershock.slo.budget import remaining as remaining_budget
from aftershock.storage import SqliteFile

__all__ = [
    "LEDGER_FILE",
    "LEDGER_SCHEMA_VERSION",
    "Ledger",
    "LedgerAction",
    "LedgerFault",
    "LedgerRun",
    "LedgerSpend",
    "WeekRow",
    "noted_healer_actions",
]

LEDGER_FILE: Final = "ledger.sqlite3"
"""The ledger's file name under ``$AFTERSHOCK_HOME``."""

LEDGER_SCHEMA_VERSION: Final = 2
"""The schema this code writes; an older file is migrated, a newer one refused, never misread."""

_BUSY_TIMEOUT_MS: Final = 10_000
_SPEND_COLUMNS: Final = ("slo", "objective", "window_seconds", "spent", "burn_rate")
_ACTION_COLUMNS: Final = ("playbook", "action", "target", "outcome", "at_seconds")

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
"""Version 1, as the first aftershock wrote it; a new file starts here and is migrated."""

_MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    # 2: what trends need per run. ``*_recorded`` tell a run that had no faults or
    # healer actions (1) from one recorded before they were kept (0).
    2: (
        *(
            f"ALTER TABLE runs ADD COLUMN {column}"
            for column in (
                "recover_within REAL",
                "healing TEXT",  # the run's HealingResult as JSON
                "faults_recorded INTEGER NOT NULL DEFAULT 0",
                "actions_recorded INTEGER NOT NULL DEFAULT 0",
            )
        ),
        (
            "CREATE TABLE faults (run_id TEXT NOT NULL, seq INTEGER NOT NULL, step TEXT NOT NULL,"
            " fault TEXT NOT NULL, target TEXT NOT NULL, injected_at TEXT, reverted_at TEXT,"
            " error TEXT, PRIMARY KEY (run_id, seq))"
        ),
        (
            "CREATE TABLE healer_actions (run_id TEXT NOT NULL, seq INTEGER NOT NULL,"
            " playbook TEXT NOT NULL, action TEXT NOT NULL, target TEXT, outcome TEXT,"
            " at_seconds REAL, PRIMARY KEY (run_id, seq))"
        ),
    ),
}
"""Version N's statements take a file from version N - 1 to N."""

# One fixed filter for runs and what belongs to them; a None parameter switches its condition off.
_FILTER: Final = " WHERE (? IS NULL OR r.experiment = ?) AND (? IS NULL OR r.started_at >= ?)"
# Table names below are this module's constants; only values are parameters.
_RUNS_QUERY: Final = f"SELECT r.* FROM runs r{_FILTER} ORDER BY r.started_at, r.run_id"  # noqa: S608
_PART_QUERIES: Final = {
    table: f"SELECT d.* FROM {table} d JOIN runs r USING (run_id){_FILTER} ORDER BY {order}"  # noqa: S608
    for table, order in (("spend", "d.slo"), ("faults", "d.seq"), ("healer_actions", "d.seq"))
}


def _stamp(moment: datetime) -> str:
    # One fixed UTC format, so text order is time order and SQL can compare it.
    # Naive datetimes are taken as UTC, as everything aftershock writes is.
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _maybe_stamp(moment: datetime | None) -> str | None:
    return None if moment is None else _stamp(moment)


def _maybe_parse(text: str | None) -> datetime | None:
    return None if text is None else _parse(text)


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
            # Read inside the write transaction: two processes opening an old file
            # migrate it once, the second finding it done.
            found = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
            version = 1 if found is None else int(found)
            if version > LEDGER_SCHEMA_VERSION:
                msg = (
                    f"ledger {self.path}: schema version {version} is newer than"
                    f" {LEDGER_SCHEMA_VERSION}; upgrade aftershock"
                )
                raise JournalError(msg)
            for step in range(version + 1, LEDGER_SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step]:
                    conn.execute(statement)
            if found is None:
                conn.execute(
                    "INSERT INTO schema_version (version) VALUES (?)", (LEDGER_SCHEMA_VERSION,)
                )
            elif version < LEDGER_SCHEMA_VERSION:
                conn.execute("UPDATE schema_version SET version = ?", (LEDGER_SCHEMA_VERSION,))

    def record_run(
        self,
        result: RunResult,
        *,
        journal_path: str | None = None,
        namespace: str | None = None,
        healer_actions: Sequence[LedgerAction] | None = None,
    ) -> None:
        """Record a run, its spend and faults; recording the same ``run_id`` again replaces it.

        ``healer_actions`` are the healer's steps during the run, as its journal
        notes them; ``None`` records them as unknown (the result only says whether
        and when the healer acted), ``()`` as none taken.
        """
        run_id = result.run_id
        run = {
            "run_id": run_id,
            "experiment": result.experiment,
            "namespace": namespace,
            "started_at": _stamp(result.started_at),
            "finished_at": _maybe_stamp(result.finished_at),
            "status": result.status.value,
            "forced": int(result.forced),
            "dry_run": int(result.dry_run),
            "recovery_seconds": result.recovery_seconds,
            "journal_path": journal_path,
            "recover_within": result.recover_within,
            "healing": result.healing.model_dump_json() if result.healing else None,
            "faults_recorded": 1,
            "actions_recorded": int(healer_actions is not None),
        }
        recorded_at = _stamp(result.finished_at or result.started_at)
        spend = [
            {
                "run_id": run_id,
                **b.model_dump(include=set(_SPEND_COLUMNS)),
                "recorded_at": recorded_at,
            }
            for b in result.budgets
        ]
        faults = [
            {"run_id": run_id, "seq": seq, "step": f.step, "fault": f.fault, "target": f.target}
            | {
                "injected_at": _maybe_stamp(f.injected_at),
                "reverted_at": _maybe_stamp(f.reverted_at),
            }
            | {"error": f.error}
            for seq, f in enumerate(result.faults)
        ]
        actions = [
            {"run_id": run_id, "seq": seq, **{k: getattr(a, k) for k in _ACTION_COLUMNS}}
            for seq, a in enumerate(healer_actions or ())
        ]
        with self._write() as conn:
            for table, rows in (("runs", [run]), ("spend", spend), ("faults", faults)):
                _replace(conn, table, rows, run_id)
            _replace(conn, "healer_actions", actions, run_id)

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
        parts: dict[str, dict[str, list[sqlite3.Row]]] = {}
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            run_rows = conn.execute(_RUNS_QUERY, params).fetchall()
            for table, query in _PART_QUERIES.items():
                for row in conn.execute(query, params):
                    parts.setdefault(table, {}).setdefault(row["run_id"], []).append(row)
        return [
            _run(row, {t: rows.get(row["run_id"], []) for t, rows in parts.items()})
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


def _replace(conn: sqlite3.Connection, table: str, rows: list[dict[str, Any]], run_id: str) -> None:
    """Put ``rows`` in the place of what ``table`` held for ``run_id``."""
    # Table and column names are this module's constants; only values are parameters.
    conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))  # noqa: S608
    if rows:
        columns = list(rows[0])
        names, values = ", ".join(columns), ", ".join(f":{c}" for c in columns)
        conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({values})", rows)  # noqa: S608


def _run(row: sqlite3.Row, parts: dict[str, list[sqlite3.Row]]) -> LedgerRun:
    healing = row["healing"]
    return LedgerRun(
        run_id=row["run_id"],
        experiment=row["experiment"],
        namespace=row["namespace"],
        started_at=_parse(row["started_at"]),
        finished_at=_maybe_parse(row["finished_at"]),
        status=RunStatus(row["status"]),
        forced=bool(row["forced"]),
        dry_run=bool(row["dry_run"]),
        recovery_seconds=row["recovery_seconds"],
        journal_path=row["journal_path"],
        spend=tuple(
            LedgerSpend(
                run_id=s["run_id"],
                **{k: s[k] for k in _SPEND_COLUMNS},
                recorded_at=_parse(s["recorded_at"]),
            )
            for s in parts.get("spend", ())
        ),
        recover_within=row["recover_within"],
        healing=HealingResult.model_validate_json(healing) if healing else None,
        faults=tuple(
            LedgerFault(
                **{k: f[k] for k in ("step", "fault", "target", "error")},
                injected_at=_maybe_parse(f["injected_at"]),
                reverted_at=_maybe_parse(f["reverted_at"]),
            )
            for f in parts.get("faults", ())
        )
        if row["faults_recorded"]
        else None,
        healer_actions=tuple(
            LedgerAction(**{k: a[k] for k in _ACTION_COLUMNS})
            for a in parts.get("healer_actions", ())
        )
        if row["actions_recorded"]
        else None,
    )


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
