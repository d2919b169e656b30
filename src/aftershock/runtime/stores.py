"""The stores a run needs to be crash-safe and coordinated, as ports with two homes.

A run reads and writes five kinds of shared state besides its own journal
file. Each sits behind a Protocol here, with a local implementation (files and
SQLite under ``$AFTERSHOCK_HOME``: ``aftershock run``, ``schedule``, ``heal``,
the demo) and one over the Kubernetes API (``aftershock.operator.stores``):

==================  =====================================  ======================================
port                local (one host)                       operator (the cluster's API)
==================  =====================================  ======================================
:class:`Lever`      the file ``$AFTERSHOCK_HOME/lever``    the ConfigMap ``aftershock-lever``
:class:`RunRegistry`  a lock file per live run (flock)     this replica's live runs; runs of any
                                                           other holder are dead once it leads
:class:`BudgetLedger` ``ledger.sqlite3``                   ``ExperimentRun`` objects' results
:class:`TargetLeases` lock files under ``leases/``         ``coordination.k8s.io`` Leases
:class:`FaultRecords` (none: the journal file is the       the run's ``ExperimentRun``: one
                    record)                                record per fault, written first
==================  =====================================  ======================================

Schedule anchors are the scheduler's own port (``scheduling.store.ScheduleStorage``:
SQLite locally, each Experiment's ``status.schedule`` in the operator).

:class:`Stores` bundles one of each; :class:`~aftershock.runtime.admission.Admission`
holds it, so ``run``, the scheduler and the operator wire it once and share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, Self

from aftershock.journal.ledger_records import LedgerAction
from aftershock.model.experiment import Experiment
from aftershock.model.results import RunResult
from aftershock.ports import Handle

__all__ = [
    "EXPERIMENT_TARGET",
    "BudgetLedger",
    "FaultRecords",
    "Lever",
    "RunRegistry",
    "Stores",
    "TargetClaim",
    "TargetLeases",
    "claims_of",
]


# ---------------------------------------------------------------- the kill switch
class Lever(Protocol):
    """The kill switch: while engaged, running experiments abort and none start."""

    def engaged(self) -> bool:
        """True while engaged; cheap (runs poll it every 100 ms)."""
        ...


# ---------------------------------------------------------------- live runs
class RunRegistry(Protocol):
    """Which runs are alive, so nothing reverts a live run's faults or breaks its leases."""

    def alive(self, run_id: str) -> AbstractContextManager[None]:
        """Hold the run's liveness for the block (the run's whole life)."""
        ...

    def live(self, run_id: str) -> bool:
        """True while the run's holder is alive and the run has not ended."""
        ...


# ---------------------------------------------------------------- the ledger
class BudgetLedger(Protocol):
    """Error-budget spend per SLO, run by run: what the budget gate reads."""

    def remaining(self, slo: str, window: timedelta, now: datetime) -> float:
        """Share of ``slo``'s budget left over the rolling ``window`` ending at ``now``."""
        ...

    def record_run(
        self,
        result: RunResult,
        *,
        journal_path: str | None = None,
        namespace: str | None = None,
        healer_actions: Sequence[LedgerAction] | None = None,
    ) -> None:
        """Book a finished run (again = replace)."""
        ...


# ---------------------------------------------------------------- target leases
@dataclass(frozen=True, slots=True, kw_only=True)
class TargetClaim:
    """One run's claim on one of its targets, held while the run lives.

    Two claims conflict when they share one of ``keys`` (the target's
    :meth:`~aftershock.model.targets.TargetSpec.identities`) unless both are
    ``shared``. ``healers`` says whether healer daemons may act on the target
    meanwhile (``spec.healing``, or ``expect.healedBy``).
    """

    run_id: str
    experiment: str
    target: str
    keys: tuple[str, ...]
    shared: bool = False
    healers: bool = False

    def conflicts(self, other: TargetClaim) -> bool:
        """True when both cannot hold at once."""
        if other.run_id == self.run_id or not set(self.keys) & set(other.keys):
            return False
        return not (self.shared and other.shared)

    def to_json(self) -> dict[str, Any]:
        """The claim as JSON-ready data (lock files, Lease annotations)."""
        return {
            "run_id": self.run_id,
            "experiment": self.experiment,
            "target": self.target,
            "keys": list(self.keys),
            "shared": self.shared,
            "healers": self.healers,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Read a claim written by :meth:`to_json`; ``ValueError`` when it is not one."""
        try:
            keys = data["keys"]
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise TypeError
            return cls(
                run_id=str(data["run_id"]),
                experiment=str(data["experiment"]),
                target=str(data["target"]),
                keys=tuple(keys),
                shared=data.get("shared") is True,
                healers=data.get("healers") is True,
            )
        except (KeyError, TypeError) as exc:
            msg = f"not a target claim: {data!r:.200}"
            raise ValueError(msg) from exc


EXPERIMENT_TARGET = "(the experiment itself)"
"""The target name of the claim every run takes on its own experiment."""


def claims_of(experiment: Experiment, run_id: str) -> list[TargetClaim]:
    """The claims a run of ``experiment`` takes: one on the experiment itself (always
    exclusive: one experiment never runs twice at once), then one per target it declares."""
    spec = experiment.spec
    meta = experiment.metadata
    itself = TargetClaim(
        run_id=run_id,
        experiment=meta.name,
        target=EXPERIMENT_TARGET,
        keys=(f"experiment:{meta.namespace or ''}/{meta.name}",),
        healers=True,
    )
    return [itself] + [
        TargetClaim(
            run_id=run_id,
            experiment=experiment.metadata.name,
            target=name,
            keys=target.identities(),
            shared=spec.share_targets,
            healers=spec.healers_may_act,
        )
        for name, target in sorted(spec.targets.items())
    ]


class TargetLeases(Protocol):
    """Exclusive (or shared) claims on targets for the length of a run."""

    def hold(self, claims: Sequence[TargetClaim]) -> AbstractAsyncContextManager[None]:
        """Take every claim for the block, all or none, and release them after it.

        A claim that conflicts with one held by a live run raises
        ``TargetLeased`` naming the target and the holder's run id; claims of
        runs that are no longer alive are broken, not obeyed.
        """
        ...

    async def held(self) -> list[TargetClaim]:
        """Every claim held by a live run now (what healers stand back from)."""
        ...


# ---------------------------------------------------------------- fault records
class FaultRecords(Protocol):
    """A second, shared home for a run's fault records (the operator's API objects).

    The run's journal calls it for every fault and resource record *before*
    writing its own line, so an intent is in the shared store before the
    fault touches anything; a failure raises and the fault is not applied.
    """

    def started(self, run_id: str, experiment: str, *, seed: int) -> None:
        """Create the run's record (its holder is the caller)."""
        ...

    def fault(self, phase: str, handle: Handle, **fields: Any) -> None:
        """Record a fault's phase: ``intent``, ``applied``, ``reverted``, ``revert_failed``."""
        ...

    def resource(self, phase: str, handle: Handle, **fields: Any) -> None:
        """Record a resource's phase: ``intent``, ``created``, ``released``, ``release_failed``."""
        ...

    def finished(self, result: RunResult) -> None:
        """Record how the run ended (its ledger entry is booked by :class:`BudgetLedger`)."""
        ...


# ---------------------------------------------------------------- the bundle
@dataclass(frozen=True, slots=True, kw_only=True)
class Stores:
    """One of each store, wired once and shared by admission, runs and recovery."""

    lever: Lever
    ledger: BudgetLedger
    leases: TargetLeases
    runs: RunRegistry
    records: FaultRecords | None = None
    """Where fault records go besides the run's journal file (the operator's API)."""
