"""Persistence of throttling state: SQLite and in-memory stores, and what a restart keeps."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from aftershock.errors import JournalError
from aftershock.healer.state import (
    BreakerPhase,
    BreakerState,
    MemoryStateStore,
    PlaybookState,
    SqliteStateStore,
    StateStore,
)
from aftershock.healer.throttling import Decision, Throttler

from .helpers import playbook, policy


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    if request.param == "memory":
        return MemoryStateStore()
    return SqliteStateStore(tmp_path / "home" / "healer.sqlite3")


def test_round_trip(store: StateStore) -> None:
    assert store.load("p").playbooks == {}
    store.save_playbook("p", "fix", PlaybookState(attempts=[1.5, 2.5], failures=2, next_at=9.0))
    store.save_breaker(
        "p", "api", BreakerState(phase=BreakerPhase.OPEN, failures=3, opened_at=4.0, escalated=True)
    )
    store.save_disruptions("p", [1.5, 2.5])
    store.save_disruptions("other", [7.0])
    store.save_playbook("p", "fix", PlaybookState(attempts=[2.5, 3.5], failures=3, last_delay=20.0))
    loaded = store.load("p")
    assert loaded.playbooks == {
        "fix": PlaybookState(attempts=[2.5, 3.5], failures=3, next_at=None, last_delay=20.0)
    }
    assert loaded.breakers == {
        "api": BreakerState(phase=BreakerPhase.OPEN, failures=3, opened_at=4.0, escalated=True)
    }
    assert loaded.disruptions == [1.5, 2.5]
    assert store.load("other").disruptions == [7.0]
    loaded.playbooks["fix"].attempts.append(99.0)  # a copy, not the stored value
    assert store.load("p").playbooks["fix"].attempts == [2.5, 3.5]


def test_sqlite_file_is_wal_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "healer.sqlite3"
    SqliteStateStore(path)
    SqliteStateStore(path)  # opening twice is fine
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
        db.execute("UPDATE schema_version SET version = 99")
    db.close()
    with pytest.raises(JournalError, match="schema 99"):
        SqliteStateStore(path)


def test_sqlite_errors_are_translated(tmp_path: Path) -> None:
    (tmp_path / "not-a-db").write_bytes(b"\x00garbage" * 512)
    with pytest.raises(JournalError) as info:
        SqliteStateStore(tmp_path / "not-a-db")
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_a_restart_keeps_attempts_backoff_and_an_open_breaker(store: StateStore) -> None:
    doc = policy(playbook(max_attempts=2), breaker=(1, "30m"))
    book = doc.spec.playbooks[0]
    first = Throttler("checkout", doc.spec, store, random.Random(1))
    first.started(book, "api", 100.0)
    first.started(book, "api", 110.0)
    first.backoff(book, 110.0)
    assert first.failed("api", 110.0) is BreakerPhase.OPEN
    assert first.mark_escalated("api")

    again = Throttler("checkout", doc.spec, store, random.Random(1))
    assert again.attempts(book, 120.0) == [100.0, 110.0]
    assert again.throttle(book.name).state.failures == 1
    assert again.check(book, "api", 120.0).decision is Decision.BREAKER_OPEN
    assert again.mark_escalated("api") is False  # already sent before the restart


def test_a_trial_cut_short_by_a_restart_counts_as_failed(store: StateStore) -> None:
    doc = policy(breaker=(1, "30m"))
    book = doc.spec.playbooks[0]
    first = Throttler("checkout", doc.spec, store, random.Random(1))
    first.failed("api", 0.0)
    assert first.check(book, "api", 1800.0).trial
    first.started(book, "api", 1800.0)

    again = Throttler("checkout", doc.spec, store, random.Random(1))
    breaker = again.breaker("api")
    assert (breaker.phase, breaker.opened_at) == (BreakerPhase.OPEN, 1800.0)
