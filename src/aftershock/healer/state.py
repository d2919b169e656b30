"""Persistence of throttling and breaker state, so a restarted healer does not forget.

What is kept, per policy: each playbook's attempt times (``maxAttempts`` per
``cooldown``) and backoff position, the disruption times (the policy's
budget), and each target's circuit breaker with whether its escalation was
sent. A restart therefore neither refills ``maxAttempts`` nor closes an open
breaker. Times are wall-clock epoch seconds (``clock.now()``), the only scale
that means the same thing in the next process.

``SqliteStateStore`` keeps it in one SQLite file (WAL, a busy timeout, one
short connection per call, every write one ``BEGIN IMMEDIATE`` transaction);
``MemoryStateStore`` keeps it in a dict for tests and dry runs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Final, Protocol

from aftershock.errors import JournalError
from aftershock.storage import SqliteFile

__all__ = [
    "STATE_FILE",
    "BreakerPhase",
    "BreakerState",
    "MemoryStateStore",
    "PlaybookState",
    "PolicyState",
    "SqliteStateStore",
    "StateStore",
]

STATE_FILE: Final = "healer.sqlite3"
"""The state file's name under ``$AFTERSHOCK_HOME``."""

_SCHEMA_VERSION: Final = 1
_BUSY_TIMEOUT_MS: Final = 10_000
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS playbooks (
        policy TEXT NOT NULL, playbook TEXT NOT NULL, failures INTEGER NOT NULL,
        next_at REAL, last_delay REAL, PRIMARY KEY (policy, playbook))""",
    "CREATE TABLE IF NOT EXISTS attempts (policy TEXT NOT NULL, playbook TEXT NOT NULL, at REAL)",
    """CREATE TABLE IF NOT EXISTS breakers (
        policy TEXT NOT NULL, target TEXT NOT NULL, phase TEXT NOT NULL,
        failures INTEGER NOT NULL, opened_at REAL, trial_at REAL, escalated INTEGER NOT NULL,
        PRIMARY KEY (policy, target))""",
    "CREATE TABLE IF NOT EXISTS disruptions (policy TEXT NOT NULL, at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS attempts_key ON attempts (policy, playbook)",
    "CREATE INDEX IF NOT EXISTS disruptions_key ON disruptions (policy)",
)


@dataclass(slots=True, kw_only=True)
class PlaybookState:
    """Attempts and backoff of one playbook."""

    attempts: list[float] = field(default_factory=list)
    """Start times of recent attempts (epoch seconds), oldest first."""
    failures: int = 0
    """Consecutive failed attempts: the position in the backoff sequence."""
    next_at: float | None = None
    """No attempt before this (backoff), epoch seconds."""
    last_delay: float | None = None


class BreakerPhase(StrEnum):
    """The state of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(slots=True, kw_only=True)
class BreakerState:
    """The circuit breaker of one target."""

    phase: BreakerPhase = BreakerPhase.CLOSED
    failures: int = 0
    """Consecutive remediations that failed or did not restore health."""
    opened_at: float | None = None
    trial_at: float | None = None
    """When the half-open trial started; None while no trial is out."""
    escalated: bool = False
    """Whether the target's trouble was escalated: once, until a remediation restores it
    (the breaker closes) or a manual reset."""


@dataclass(slots=True, kw_only=True)
class PolicyState:
    """Everything kept for one policy."""

    playbooks: dict[str, PlaybookState] = field(default_factory=dict)
    breakers: dict[str, BreakerState] = field(default_factory=dict)
    disruptions: list[float] = field(default_factory=list)


class StateStore(Protocol):
    """Where the healer keeps its throttling state; every save is durable on return."""

    def load(self, policy: str) -> PolicyState:
        """Everything kept for ``policy`` (empty when nothing is)."""
        ...

    def save_playbook(self, policy: str, playbook: str, state: PlaybookState) -> None:
        """Replace the state of one playbook."""
        ...

    def save_breaker(self, policy: str, target: str, state: BreakerState) -> None:
        """Replace the breaker of one target."""
        ...

    def save_disruptions(self, policy: str, times: Sequence[float]) -> None:
        """Replace the policy's disruption times."""
        ...


def _copy_playbook(state: PlaybookState) -> PlaybookState:
    return replace(state, attempts=list(state.attempts))


class MemoryStateStore:
    """A ``StateStore`` in a dict: survives a new ``Healer``, not a new process."""

    def __init__(self) -> None:
        self._policies: dict[str, PolicyState] = {}

    def load(self, policy: str) -> PolicyState:
        """A copy of what is kept for ``policy``."""
        kept = self._policies.get(policy, PolicyState())
        return PolicyState(
            playbooks={k: _copy_playbook(v) for k, v in kept.playbooks.items()},
            breakers={k: replace(v) for k, v in kept.breakers.items()},
            disruptions=list(kept.disruptions),
        )

    def save_playbook(self, policy: str, playbook: str, state: PlaybookState) -> None:
        """Keep a copy."""
        self._policies.setdefault(policy, PolicyState()).playbooks[playbook] = _copy_playbook(state)

    def save_breaker(self, policy: str, target: str, state: BreakerState) -> None:
        """Keep a copy."""
        self._policies.setdefault(policy, PolicyState()).breakers[target] = replace(state)

    def save_disruptions(self, policy: str, times: Sequence[float]) -> None:
        """Keep a copy."""
        self._policies.setdefault(policy, PolicyState()).disruptions = list(times)


class SqliteStateStore:
    """A ``StateStore`` in one SQLite file (e.g. ``$AFTERSHOCK_HOME/healer.sqlite3``)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"cannot create the directory of {self.path}: {exc}"
            raise JournalError(msg) from exc
        self._db = SqliteFile(self.path, "healer state", busy_timeout_ms=_BUSY_TIMEOUT_MS)
        with self._db.connect() as db:
            # WAL is a property of the file: set once, readers then never block the writer.
            db.execute("PRAGMA journal_mode = WAL")
        with self._transaction() as db:
            for statement in _SCHEMA:
                db.execute(statement)
            row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            if row[0] is None:
                db.execute("INSERT INTO schema_version VALUES (?)", (_SCHEMA_VERSION,))
            elif int(row[0]) > _SCHEMA_VERSION:
                msg = f"{self.path} has healer state schema {row[0]}; this version reads up to 1"
                raise JournalError(msg)

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db.write()

    def load(self, policy: str) -> PolicyState:
        """Everything kept for ``policy``."""
        state = PolicyState()
        with self._transaction() as db:
            for name, failures, next_at, last_delay in db.execute(
                "SELECT playbook, failures, next_at, last_delay FROM playbooks WHERE policy = ?",
                (policy,),
            ):
                state.playbooks[name] = PlaybookState(
                    failures=failures, next_at=next_at, last_delay=last_delay
                )
            for name, at in db.execute(
                "SELECT playbook, at FROM attempts WHERE policy = ? ORDER BY at", (policy,)
            ):
                state.playbooks.setdefault(name, PlaybookState()).attempts.append(at)
            for target, phase, failures, opened_at, trial_at, escalated in db.execute(
                "SELECT target, phase, failures, opened_at, trial_at, escalated"
                " FROM breakers WHERE policy = ?",
                (policy,),
            ):
                state.breakers[target] = BreakerState(
                    phase=BreakerPhase(phase),
                    failures=failures,
                    opened_at=opened_at,
                    trial_at=trial_at,
                    escalated=bool(escalated),
                )
            state.disruptions = [
                at
                for (at,) in db.execute(
                    "SELECT at FROM disruptions WHERE policy = ? ORDER BY at", (policy,)
                )
            ]
        return state

    def save_playbook(self, policy: str, playbook: str, state: PlaybookState) -> None:
        """Replace one playbook's row and attempts in one transaction."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO playbooks VALUES (?, ?, ?, ?, ?)",
                (policy, playbook, state.failures, state.next_at, state.last_delay),
            )
            db.execute("DELETE FROM attempts WHERE policy = ? AND playbook = ?", (policy, playbook))
            db.executemany(
                "INSERT INTO attempts VALUES (?, ?, ?)",
                [(policy, playbook, at) for at in state.attempts],
            )

    def save_breaker(self, policy: str, target: str, state: BreakerState) -> None:
        """Replace one target's breaker."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO breakers VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    policy,
                    target,
                    state.phase.value,
                    state.failures,
                    state.opened_at,
                    state.trial_at,
                    int(state.escalated),
                ),
            )

    def save_disruptions(self, policy: str, times: Sequence[float]) -> None:
        """Replace the policy's disruption times."""
        with self._transaction() as db:
            db.execute("DELETE FROM disruptions WHERE policy = ?", (policy,))
            db.executemany("INSERT INTO disruptions VALUES (?, ?)", [(policy, at) for at in times])
