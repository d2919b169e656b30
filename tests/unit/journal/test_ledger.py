"""The SQLite ledger: real files in tmp_path, real threads."""

from __future__ import annotations

import re
import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from aftershock.errors import JournalError
from aftershock.journal import (
    LEDGER_FILE,
    LEDGER_SCHEMA_VERSION,
    FaultJournal,
    Ledger,
    LedgerRun,
    WeekRow,
    read_journal,
)
from aftershock.journal.ledger import LedgerAction, noted_healer_actions
from aftershock.model.results import (
    BudgetResult,
    FaultRecord,
    HealingResult,
    RunResult,
    RunStatus,
)

# A Wednesday; ISO week 2026-W10 runs Mon 2 Mar .. Sun 8 Mar.
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
WINDOW_28D = 28 * 86400.0


def spend(
    slo: str = "checkout-availability", spent: float = 0.01, rate: float = 10.0
) -> BudgetResult:
    return BudgetResult(
        slo=slo,
        objective=0.999,
        window_seconds=WINDOW_28D,
        spent=spent,
        burn_rate=rate,
        baseline_bad_ratio=0.0,
    )


def run(
    run_id: str,
    at: datetime,
    *,
    experiment: str = "checkout-db-latency",
    status: RunStatus = RunStatus.PASSED,
    budgets: tuple[BudgetResult, ...] = (),
    recovery: float | None = None,
    forced: bool = False,
    dry_run: bool = False,
) -> RunResult:
    return RunResult(
        run_id=run_id,
        experiment=experiment,
        status=status,
        started_at=at,
        finished_at=at + timedelta(minutes=2),
        forced=forced,
        dry_run=dry_run,
        budgets=list(budgets),
        recovery_seconds=recovery,
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "home" / LEDGER_FILE)


def test_open_creates_the_file_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "home" / LEDGER_FILE
    Ledger(path)
    assert path.exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [
            (LEDGER_SCHEMA_VERSION,)
        ]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "spend", "schema_version"} <= tables
    Ledger(path)  # reopening neither fails nor adds a second version row
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 1


def test_record_and_read_back(ledger: Ledger) -> None:
    result = run(
        "run-1",
        NOW,
        status=RunStatus.FAILED,
        budgets=(spend(spent=0.0124, rate=1000.0), spend("checkout-latency", 0.003, 3.0)),
        recovery=12.5,
    )
    ledger.record_run(result, journal_path="/state/journal/run-1.jsonl", namespace="shop")
    [stored] = ledger.runs()
    assert isinstance(stored, LedgerRun)
    assert stored.run_id == "run-1"
    assert stored.experiment == "checkout-db-latency"
    assert stored.namespace == "shop"
    assert stored.status is RunStatus.FAILED
    assert stored.started_at == NOW
    assert stored.finished_at == NOW + timedelta(minutes=2)
    assert (stored.forced, stored.dry_run) == (False, False)
    assert stored.recovery_seconds == 12.5
    assert stored.journal_path == "/state/journal/run-1.jsonl"
    assert [(s.slo, s.spent, s.burn_rate) for s in stored.spend] == [
        ("checkout-availability", 0.0124, 1000.0),
        ("checkout-latency", 0.003, 3.0),
    ]
    assert stored.spend[0].recorded_at == NOW + timedelta(minutes=2)
    assert stored.spend[0].objective == 0.999
    assert stored.spend[0].window_seconds == WINDOW_28D


def test_recording_a_run_again_replaces_it(ledger: Ledger) -> None:
    ledger.record_run(run("run-1", NOW, status=RunStatus.ERRORED, budgets=(spend(spent=0.05),)))
    ledger.record_run(run("run-1", NOW, status=RunStatus.PASSED, budgets=(spend(spent=0.01),)))
    [stored] = ledger.runs()
    assert stored.status is RunStatus.PASSED
    assert [s.spent for s in stored.spend] == [0.01]
    ledger.record_run(run("run-1", NOW))  # no budgets this time: old spend is gone too
    assert ledger.runs()[0].spend == ()
    assert ledger.spent_since("checkout-availability", NOW - timedelta(days=1)) == []


def test_forced_runs_are_recorded_with_forced_1(ledger: Ledger) -> None:
    ledger.record_run(run("run-forced", NOW, forced=True, budgets=(spend(spent=0.03),)))
    assert ledger.runs()[0].forced is True
    with sqlite3.connect(ledger.path) as conn:
        assert conn.execute("SELECT forced FROM runs").fetchone()[0] == 1
    # Forcing past the gate does not make the spend free.
    assert ledger.remaining("checkout-availability", timedelta(days=28), NOW + timedelta(1)) == (
        pytest.approx(0.97)
    )


def test_remaining_counts_only_the_window(ledger: Ledger) -> None:
    slo = "checkout-availability"
    ledger.record_run(run("too-old", NOW - timedelta(days=40), budgets=(spend(spent=0.5),)))
    ledger.record_run(run("recent", NOW - timedelta(days=10), budgets=(spend(spent=0.02),)))
    ledger.record_run(run("yesterday", NOW - timedelta(days=1), budgets=(spend(spent=0.01),)))
    ledger.record_run(run("other-slo", NOW - timedelta(days=1), budgets=(spend("other", 0.3),)))
    ledger.record_run(
        run("dry", NOW - timedelta(days=1), dry_run=True, budgets=(spend(spent=0.4),))
    )
    ledger.record_run(run("later", NOW + timedelta(days=1), budgets=(spend(spent=0.2),)))
    assert ledger.remaining(slo, timedelta(days=28), NOW) == pytest.approx(0.97)
    assert ledger.spent_since(slo, NOW - timedelta(days=28), until=NOW) == [0.02, 0.01]
    assert ledger.spent_since(slo, NOW - timedelta(days=28)) == [0.02, 0.01, 0.2]
    assert ledger.remaining("never-spent", timedelta(days=28), NOW) == 1.0


def test_naive_times_are_taken_as_utc(ledger: Ledger) -> None:
    ledger.record_run(run("naive", NOW.replace(tzinfo=None), budgets=(spend(spent=0.1),)))
    assert ledger.runs()[0].started_at == NOW
    assert ledger.spent_since("checkout-availability", NOW.replace(tzinfo=None)) == [0.1]


def test_runs_filters_by_experiment_and_time(ledger: Ledger) -> None:
    ledger.record_run(run("a1", NOW - timedelta(days=3), experiment="a", budgets=(spend(),)))
    ledger.record_run(run("b1", NOW - timedelta(days=2), experiment="b"))
    ledger.record_run(run("a2", NOW - timedelta(days=1), experiment="a"))
    assert [r.run_id for r in ledger.runs()] == ["a1", "b1", "a2"]
    assert [r.run_id for r in ledger.runs(experiment="a")] == ["a1", "a2"]
    assert [r.run_id for r in ledger.runs(since=NOW - timedelta(days=2))] == ["b1", "a2"]
    [only] = ledger.runs(experiment="a", since=NOW - timedelta(days=5))[:1]
    assert len(only.spend) == 1


def test_history_by_iso_week(ledger: Ledger) -> None:
    monday = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)  # W10
    sunday_before = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # W09
    rows = [
        run("w10-1", monday, recovery=10.0, budgets=(spend(spent=0.01), spend("other", 0.02))),
        run("w10-2", monday + timedelta(days=1), status=RunStatus.FAILED, recovery=30.0),
        run("w10-3", monday + timedelta(days=2), status=RunStatus.ABORTED, forced=True),
        run("w10-4", monday + timedelta(days=2), recovery=20.0, budgets=(spend(spent=0.005),)),
        run("w10-dry", monday, dry_run=True),
        run("w10-other", monday, experiment="api-kill", status=RunStatus.ERRORED),
        run("w09", sunday_before, status=RunStatus.INTERRUPTED, recovery=5.0),
        run("w07", monday - timedelta(weeks=3)),
        run("future", NOW + timedelta(days=1)),
    ]
    for r in rows:
        ledger.record_run(r)
    history = ledger.history(weeks=2, now=NOW)
    assert all(isinstance(row, WeekRow) for row in history)
    assert [(row.week, row.experiment) for row in history] == [
        ("2026-W09", "checkout-db-latency"),
        ("2026-W10", "api-kill"),
        ("2026-W10", "checkout-db-latency"),
    ]
    w09, other, w10 = history
    assert w09.week_start == date(2026, 2, 23)
    # A run stopped by a signal is interrupted, not errored: its own column.
    assert (w09.runs, w09.errored, w09.interrupted) == (1, 0, 1)
    assert (w09.recovery_median, w09.recovery_max) == (5.0, 5.0)
    assert (other.runs, other.errored, other.interrupted, other.recovery_median) == (1, 1, 0, None)
    assert w10.week_start == date(2026, 3, 2)
    assert (w10.runs, w10.passed, w10.failed, w10.aborted, w10.errored) == (4, 2, 1, 1, 0)
    assert w10.interrupted == 0
    assert w10.forced == 1
    assert w10.budget_spent == pytest.approx(0.035)
    assert w10.recovery_median == 20.0
    assert w10.recovery_max == 30.0


def test_history_across_the_new_year(ledger: Ledger) -> None:
    # 2025-12-29 (Monday) starts ISO week 2026-W01.
    ledger.record_run(run("dec", datetime(2025, 12, 30, tzinfo=UTC)))
    ledger.record_run(run("jan", datetime(2026, 1, 2, tzinfo=UTC)))
    [row] = ledger.history(weeks=1, now=datetime(2026, 1, 3, tzinfo=UTC))
    assert (row.week, row.week_start, row.runs) == ("2026-W01", date(2025, 12, 29), 2)
    with pytest.raises(ValueError, match="weeks"):
        ledger.history(weeks=0, now=NOW)


def test_a_corrupt_file_is_a_journal_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"this is not an SQLite database, just garbage " * 200)
    with pytest.raises(JournalError, match=re.escape(str(path))) as caught:
        Ledger(path)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


def test_a_file_damaged_after_opening_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(path)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(JournalError, match=re.escape(str(path))):
        ledger.runs()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (LEDGER_SCHEMA_VERSION + 1,))
    with pytest.raises(JournalError, match="newer"):
        Ledger(path)


def test_concurrent_writers_from_two_threads(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    shared = Ledger(path)
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def write(prefix: str, ledger: Ledger) -> None:
        try:
            start.wait()
            for i in range(40):
                at = NOW - timedelta(minutes=i)
                ledger.record_run(run(f"{prefix}-{i}", at, budgets=(spend(spent=0.001),)))
                ledger.remaining("checkout-availability", timedelta(days=28), NOW)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=("own", Ledger(path))),  # its own instance
        threading.Thread(target=write, args=("shared-a", shared)),
        threading.Thread(target=write, args=("shared-b", shared)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(shared.runs()) == 120
    later = NOW + timedelta(hours=1)
    assert shared.remaining("checkout-availability", timedelta(days=28), later) == pytest.approx(
        1 - 120 * 0.001
    )


# ---------------------------------------------------------------- schema 2: faults, healing


def detailed(run_id: str, at: datetime) -> RunResult:
    return RunResult(
        run_id=run_id,
        experiment="checkout-db-latency",
        status=RunStatus.FAILED,
        started_at=at,
        finished_at=at + timedelta(minutes=2),
        recovery_seconds=8.0,
        recover_within=30.0,
        budgets=[spend(spent=0.02)],
        faults=[
            FaultRecord(
                step="slow-db",
                fault="toxiproxy.latency",
                target="db",
                injected_at=at + timedelta(seconds=5),
                reverted_at=at + timedelta(seconds=65),
            ),
            FaultRecord(step="crash", fault="docker.kill", target="api", error="no container"),
        ],
        healing=HealingResult(
            expected_playbook="restart-api",
            fired=True,
            playbook="restart-api",
            first_action_after=2.5,
            healthy_after=9.0,
        ),
    )


def test_faults_healing_and_healer_actions_read_back(ledger: Ledger) -> None:
    actions = [
        LedgerAction(playbook="restart-api", action="docker.restart", target="api", outcome="ok"),
        LedgerAction(
            playbook="restart-api", action="wait.healthy", outcome="timeout", at_seconds=31.5
        ),
    ]
    ledger.record_run(detailed("run-1", NOW), healer_actions=actions)
    [stored] = ledger.runs()
    assert stored.recover_within == 30.0
    assert stored.healing == detailed("run-1", NOW).healing
    assert stored.faults is not None
    assert [(f.step, f.fault, f.family, f.target) for f in stored.faults] == [
        ("slow-db", "toxiproxy.latency", "toxiproxy", "db"),
        ("crash", "docker.kill", "docker", "api"),
    ]
    assert stored.faults[0].injected_at == NOW + timedelta(seconds=5)
    assert stored.faults[0].reverted_at == NOW + timedelta(seconds=65)
    assert (stored.faults[1].injected_at, stored.faults[1].error) == (None, "no container")
    assert stored.healer_actions == tuple(actions)
    # Budget, recovery and the verdict are as before.
    assert [s.spent for s in stored.spend] == [0.02]
    assert stored.recovery_seconds == 8.0


def test_healer_actions_not_given_are_unknown_not_none(ledger: Ledger) -> None:
    ledger.record_run(detailed("unknown", NOW))
    ledger.record_run(detailed("none", NOW + timedelta(seconds=1)), healer_actions=[])
    unknown, none = ledger.runs()
    assert unknown.healer_actions is None
    assert none.healer_actions == ()
    assert unknown.healing is not None
    assert unknown.healing.fired  # the result still says the healer acted
    ledger.record_run(run("plain", NOW + timedelta(seconds=2)))
    plain = ledger.runs()[-1]
    assert (plain.faults, plain.healing, plain.recover_within) == ((), None, None)


def test_recording_again_replaces_faults_and_actions(ledger: Ledger) -> None:
    ledger.record_run(
        detailed("run-1", NOW), healer_actions=[LedgerAction(playbook="p", action="a")]
    )
    ledger.record_run(run("run-1", NOW))
    [stored] = ledger.runs()
    assert stored.faults == ()
    assert stored.healer_actions is None
    assert stored.healing is None
    with sqlite3.connect(ledger.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM faults").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM healer_actions").fetchone()[0] == 0


# The schema as the first aftershock wrote it, frozen here: the migration test opens
# a file made by it, not by today's code.
V1_SCHEMA = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, experiment TEXT NOT NULL, namespace TEXT,
        started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL,
        forced INTEGER NOT NULL DEFAULT 0, dry_run INTEGER NOT NULL DEFAULT 0,
        recovery_seconds REAL, journal_path TEXT)""",
    """CREATE TABLE spend (
        run_id TEXT NOT NULL, slo TEXT NOT NULL, objective REAL NOT NULL,
        window_seconds REAL NOT NULL, spent REAL NOT NULL, burn_rate REAL NOT NULL,
        recorded_at TEXT NOT NULL, PRIMARY KEY (run_id, slo))""",
    "CREATE INDEX runs_started ON runs (started_at)",
    "CREATE INDEX spend_slo_time ON spend (slo, recorded_at)",
    "INSERT INTO schema_version (version) VALUES (1)",
)


def version_1_ledger(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        for statement in V1_SCHEMA:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO runs VALUES ('old-1', 'checkout-db-latency', 'shop',"
            " '2026-03-02T10:00:00.000000+00:00', '2026-03-02T10:02:00.000000+00:00',"
            " 'failed', 1, 0, 12.5, '/state/journal/old-1.jsonl')"
        )
        conn.execute(
            "INSERT INTO spend VALUES ('old-1', 'checkout-availability', 0.999, ?, 0.03, 30.0,"
            " '2026-03-02T10:02:00.000000+00:00')",
            (WINDOW_28D,),
        )
    conn.close()


def test_a_version_1_ledger_is_migrated_and_its_runs_stay_readable(tmp_path: Path) -> None:
    path = tmp_path / LEDGER_FILE
    version_1_ledger(path)
    ledger = Ledger(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [
            (LEDGER_SCHEMA_VERSION,)
        ]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert LEDGER_SCHEMA_VERSION == 2
    assert {"runs", "spend", "faults", "healer_actions"} <= tables
    [old] = ledger.runs()
    assert (old.run_id, old.status, old.forced, old.namespace) == (
        "old-1",
        RunStatus.FAILED,
        True,
        "shop",
    )
    assert old.recovery_seconds == 12.5
    assert old.journal_path == "/state/journal/old-1.jsonl"
    assert [(s.slo, s.spent) for s in old.spend] == [("checkout-availability", 0.03)]
    # What version 1 did not keep is unknown, not "none happened".
    assert (old.faults, old.healer_actions, old.healing, old.recover_within) == (
        None,
        None,
        None,
        None,
    )
    assert ledger.remaining("checkout-availability", timedelta(days=28), NOW) == pytest.approx(0.97)
    [week] = ledger.history(weeks=1, now=NOW)
    assert (week.runs, week.failed, week.forced, week.recovery_median) == (1, 1, 1, 12.5)
    # The migrated file takes new runs with everything, and reopening changes nothing.
    ledger.record_run(
        detailed("new-1", NOW), healer_actions=[LedgerAction(playbook="p", action="a")]
    )
    Ledger(path)
    old, new = Ledger(path).runs()
    assert old.faults is None
    assert new.faults is not None
    assert len(new.faults) == 2
    assert new.healer_actions == (LedgerAction(playbook="p", action="a"),)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 1
    conn.close()


def test_processes_opening_an_old_ledger_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / LEDGER_FILE
    version_1_ledger(path)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_it() -> None:
        try:
            start.wait()
            Ledger(path).runs()  # each its own instance, as separate processes would be
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
        columns = [r[1] for r in conn.execute("PRAGMA table_info(runs)")]
    conn.close()
    assert columns.count("healing") == 1


def test_healer_actions_noted_in_a_run_journal_are_what_the_ledger_records(
    tmp_path: Path, ledger: Ledger
) -> None:
    with FaultJournal(tmp_path / "journal", "run-1") as journal:
        journal.note("sample", probe="web", t=0.5, ok=True)
        journal.note(
            "healing",
            playbook="restart-api",
            action="docker.restart",
            target="api",
            outcome="ok",
            t=3.25,
        )
        journal.note(
            "healing", playbook="restart-api", action="wait.healthy", outcome=None, t="soon"
        )
        journal.note("healing", playbook=None, action="docker.restart", t=4.0)  # unusable: skipped
        journal.note("incident", target="api", mttr_seconds=9.0, t=12.0)
    actions = noted_healer_actions(read_journal(journal.path))
    assert actions == (
        LedgerAction(
            playbook="restart-api",
            action="docker.restart",
            target="api",
            outcome="ok",
            at_seconds=3.25,
        ),
        LedgerAction(playbook="restart-api", action="wait.healthy"),
    )
    ledger.record_run(
        detailed("run-1", NOW), journal_path=str(journal.path), healer_actions=actions
    )
    assert ledger.runs()[0].healer_actions == actions
