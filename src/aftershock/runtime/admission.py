"""Admission: the one step that decides whether an experiment may start now.

``aftershock run``, the scheduler and the operator all admit through
:class:`Admission`, which applies, in this order:

1. the kill switch (``aftershock lever``): while it is engaged nothing starts,
   except a dry run, which touches nothing;
2. the budget gate: what the ledger says is left of ``spec.budget.slo``'s error
   budget must cover ``maxSpend`` plus ``reserve`` (``--force`` skips it);
3. target leases: exclusive claims on the run's targets, held for the whole
   run, through a :class:`TargetLeases` store. Without a store no claims are
   taken (a single host needs none; the operator's store plugs in here).

:meth:`Admission.check` applies 1 and 2 and says what it found, without
raising, so the scheduler can record why a fire was skipped.
:meth:`Admission.admitted` refuses with ``BudgetExhausted`` (its message is
the reason), then holds the leases for its block and yields the budget left
for every SLO of the experiment.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from aftershock.errors import KILL_SWITCH_ENGAGED, BudgetExhausted
from aftershock.journal.ledger import LEDGER_FILE, Ledger
from aftershock.model.experiment import Experiment
from aftershock.model.targets import TargetSpec
from aftershock.settings import Settings
from aftershock.slo.budget import GateDecision, gate

__all__ = [
    "KILL_SWITCH_ENGAGED",
    "Admission",
    "AdmissionCheck",
    "TargetLeases",
    "lever_engaged",
    "set_lever",
]

"""Why a run is refused while the lever is engaged."""


# ---------------------------------------------------------------- the kill switch
def _lever_path(settings: Settings) -> Path:
    return settings.home / "lever"


def lever_engaged(settings: Settings) -> bool:
    """True while the kill switch is engaged (a file under ``$AFTERSHOCK_HOME``)."""
    return _lever_path(settings).exists()


def set_lever(settings: Settings, *, engaged: bool, reason: str = "") -> None:
    """Engage or release the kill switch; running experiments poll it and abort."""
    path = _lever_path(settings)
    if engaged:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{datetime.now(UTC).isoformat()} {reason}\n", encoding="utf-8")
    else:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------- target leases
class TargetLeases(Protocol):
    """Exclusive claims on targets for the length of a run, so two runs never share one."""

    def hold(
        self, run_id: str, targets: Mapping[str, TargetSpec]
    ) -> AbstractAsyncContextManager[None]:
        """Claim every target for the block and release them after it.

        A target held by another live run refuses the run: raise
        ``BudgetExhausted`` naming the target and the holder.
        """
        ...


# ---------------------------------------------------------------- the step
@dataclass(frozen=True, slots=True, kw_only=True)
class AdmissionCheck:
    """What the kill switch and the budget gate say about one experiment, now."""

    kill_switch: bool
    """The lever is engaged (never true for a dry run)."""
    budget: GateDecision | None
    """The gate's answer for ``spec.budget``; ``None`` without a budget, when
    forced, or when the kill switch already refuses."""
    remaining: Mapping[str, float] = field(default_factory=dict)
    """Share of the error budget left, per SLO of the experiment."""

    @property
    def refusal(self) -> str | None:
        """Why the run may not start, or ``None`` when it may."""
        if self.kill_switch:
            return KILL_SWITCH_ENGAGED
        if self.budget is not None and not self.budget.allowed:
            return self.budget.message
        return None


class Admission:
    """The admission step over this host's lever, ledger and (optional) target leases."""

    def __init__(
        self,
        settings: Settings,
        *,
        ledger: Ledger | None = None,
        leases: TargetLeases | None = None,
    ) -> None:
        """``ledger`` defaults to ``$AFTERSHOCK_HOME/ledger.sqlite3``, opened on first use."""
        self.settings = settings
        self.leases = leases
        self._ledger = ledger

    @property
    def ledger(self) -> Ledger:
        """The SLO ledger the gate reads and runs are booked in."""
        if self._ledger is None:
            self.settings.home.mkdir(parents=True, exist_ok=True)
            self._ledger = Ledger(self.settings.home / LEDGER_FILE)
        return self._ledger

    def check(
        self, experiment: Experiment, now: datetime, *, force: bool = False, dry_run: bool = False
    ) -> AdmissionCheck:
        """Apply the kill switch and the budget gate; refuse nothing, report what applies."""
        if not dry_run and lever_engaged(self.settings):
            return AdmissionCheck(kill_switch=True, budget=None)
        spec = experiment.spec
        remaining = {
            name: self.ledger.remaining(name, slo.window, now) for name, slo in spec.slo.items()
        }
        decision = None
        # An unknown budget SLO is a validation error reported before any run.
        if spec.budget is not None and not force and spec.budget.slo in remaining:
            decision = gate(remaining[spec.budget.slo], spec.budget)
        return AdmissionCheck(kill_switch=False, budget=decision, remaining=remaining)

    @contextlib.asynccontextmanager
    async def admitted(
        self,
        experiment: Experiment,
        *,
        run_id: str,
        now: datetime,
        force: bool = False,
        dry_run: bool = False,
    ) -> AsyncIterator[dict[str, float]]:
        """Admit the run for the block, or raise ``BudgetExhausted`` with the reason.

        Yields the budget left per SLO. The run's target leases are held for
        the block (a dry run takes none).
        """
        found = self.check(experiment, now, force=force, dry_run=dry_run)
        if found.refusal is not None:
            raise BudgetExhausted(found.refusal)
        remaining = dict(found.remaining)
        if self.leases is None or dry_run:
            yield remaining
            return
        async with self.leases.hold(run_id, experiment.spec.targets):
            yield remaining
