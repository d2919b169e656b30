"""What the SLO ledger holds about a run: its spend, faults, healer actions, and weekly rows.

Plain records, read back by ``Ledger`` (``ledger.py``) and drawn by
``aftershock history``; ``noted_healer_actions`` reads a run's healer steps
from its journal for ``Ledger.record_run``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from aftershock.journal.reading import JournalRecord
from aftershock.model.results import HealingResult, RunStatus

__all__ = [
    "LedgerAction",
    "LedgerFault",
    "LedgerRun",
    "LedgerSpend",
    "WeekRow",
    "noted_healer_actions",
]


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
class LedgerFault:
    """One fault a run injected (or tried to)."""

    step: str
    fault: str
    """The fault's name, e.g. ``docker.kill``."""
    target: str
    injected_at: datetime | None = None
    """``None`` when injecting it failed."""
    reverted_at: datetime | None = None
    error: str | None = None

    @property
    def family(self) -> str:
        """The part of the fault's name before the dot: ``toxiproxy``, ``docker``, ``k8s``..."""
        return self.fault.partition(".")[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerAction:
    """One remediation step the healer took during a run."""

    playbook: str
    action: str
    """The step's action, e.g. ``docker.restart``."""
    target: str | None = None
    outcome: str | None = None
    at_seconds: float | None = None
    """Seconds after the run started."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerRun:
    """One recorded run, with its spend on each SLO, its faults and the healer's actions."""

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
    recover_within: float | None = None
    healing: HealingResult | None = None
    faults: tuple[LedgerFault, ...] | None = None
    """``None`` for a run recorded before the ledger kept faults (schema 1)."""
    healer_actions: tuple[LedgerAction, ...] | None = None
    """``None`` when the recorder did not itemise them (schema 1, or not given)."""


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


def noted_healer_actions(records: Iterable[JournalRecord]) -> tuple[LedgerAction, ...]:
    """The healer's steps a run's journal notes (its ``healing`` notes), for ``record_run``."""

    def text(value: object) -> str | None:
        return value if isinstance(value, str) else None

    found = []
    for rec in records:
        f = rec.fields
        playbook, action, at = text(f.get("playbook")), text(f.get("action")), f.get("t")
        if rec.event != "healing" or playbook is None or action is None:
            continue
        seconds = float(at) if isinstance(at, int | float) and not isinstance(at, bool) else None
        found.append(
            LedgerAction(
                playbook=playbook,
                action=action,
                target=text(f.get("target")),
                outcome=text(f.get("outcome")),
                at_seconds=seconds if seconds is not None and math.isfinite(seconds) else None,
            )
        )
    return tuple(found)
