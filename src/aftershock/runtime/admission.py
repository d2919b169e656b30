"""Admission: the one step that decides whether an experiment may start now.

``aftershock run``, the scheduler and the operator all admit through
:class:`Admission`, which applies, in this order:

1. the kill switch (the :class:`~aftershock.runtime.stores.Lever`): while it is
   engaged nothing starts, except a dry run, which touches nothing;
2. the budget gate: what the ledger says is left of ``spec.budget.slo``'s error
   budget must cover ``maxSpend`` plus ``reserve`` (``--force`` skips it);
3. target leases: a claim on each of the run's targets, held for the whole
   run; a target another live run holds refuses the run with ``TargetLeased``
   (exit 3, naming that run), unless both experiments set ``shareTargets``.

:meth:`Admission.check` applies 1 and 2 and says what it found, without
raising, so the scheduler can record why a fire was skipped.
:meth:`Admission.admitted` refuses with ``BudgetExhausted`` (its message is
the reason), then holds the leases for its block and yields the budget left
for every SLO of the experiment.

Admission holds the :class:`~aftershock.runtime.stores.Stores` (local ones by
default, the operator's over the Kubernetes API), so whoever admits a run also
gives it the registry, ledger and records it is booked in.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from aftershock.errors import KILL_SWITCH_ENGAGED, BudgetExhausted
from aftershock.journal.ledger import Ledger
from aftershock.model.experiment import Experiment
from aftershock.runtime.local import FileLever, local_stores
from aftershock.runtime.stores import BudgetLedger, Stores, claims_of
from aftershock.settings import Settings
from aftershock.slo.budget import GateDecision, gate

__all__ = [
    "KILL_SWITCH_ENGAGED",
    "Admission",
    "AdmissionCheck",
    "lever_engaged",
    "set_lever",
]


# ---------------------------------------------------------------- the local kill switch
def lever_engaged(settings: Settings) -> bool:
    """True while this host's kill switch is engaged (a file under ``$AFTERSHOCK_HOME``)."""
    return FileLever(settings.home).engaged()


def set_lever(settings: Settings, *, engaged: bool, reason: str = "") -> None:
    """Engage or release this host's kill switch; running experiments poll it and abort."""
    FileLever(settings.home).set(engaged=engaged, reason=reason)


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
    """The admission step over a set of stores (by default this host's)."""

    def __init__(
        self,
        settings: Settings,
        *,
        stores: Stores | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        """Without ``stores``, the local ones under ``settings.home``, opened on first
        use (with ``ledger`` as their ledger when given)."""
        self.settings = settings
        self._stores = stores
        self._ledger = ledger

    @property
    def stores(self) -> Stores:
        """The lever, ledger, leases, run registry and records runs are admitted over."""
        if self._stores is None:
            self._stores = local_stores(self.settings, ledger=self._ledger)
        return self._stores

    @property
    def ledger(self) -> BudgetLedger:
        """The SLO ledger the gate reads and runs are booked in."""
        return self.stores.ledger

    def check(
        self, experiment: Experiment, now: datetime, *, force: bool = False, dry_run: bool = False
    ) -> AdmissionCheck:
        """Apply the kill switch and the budget gate; refuse nothing, report what applies."""
        if not dry_run and self.stores.lever.engaged():
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
        the block (a dry run takes none); a target held by another live run
        raises ``TargetLeased`` (a ``BudgetExhausted``) naming it.
        """
        found = self.check(experiment, now, force=force, dry_run=dry_run)
        if found.refusal is not None:
            raise BudgetExhausted(found.refusal)
        remaining = dict(found.remaining)
        if dry_run:
            yield remaining
            return
        async with self.stores.leases.hold(claims_of(experiment, run_id)):
            yield remaining
