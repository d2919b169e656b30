"""``ExperimentRun`` objects: the operator's fault records and ledger, in the Kubernetes API.

One ``ExperimentRun`` per run, in the operator's namespace, named after the
run id (lower case). ``spec`` says what ran and who held it::

    spec: {runId, experiment, holder, seed, startedAt}

``status`` is the record, replaced as a whole with the ``resourceVersion``
last read (a concurrent writer makes the write fail with 409; it is re-read,
the change applied again, and retried)::

    status:
      phase: Running | Finished | Interrupted
      faults:    [{key, fault, kind, target, step, phase, handle, deadline,
                   intentAt, appliedAt, revertedAt, error}]
      resources: [{key, fault, kind, target, phase, handle, outcome, at, error}]
      result:    {status, reason, finishedAt, recoverySeconds, dryRun,
                  budgets: [{slo, spent, objective, windowSeconds, recordedAt}]}

A fault record holds the driver's handle (``Handle.to_json``): everything a
revert needs, so a new leader can undo it without the experiment or the dead
pod's journal. Phases follow the journal: ``intent`` is written before the
fault touches anything, ``applied`` after, then ``reverted`` or
``revert_failed``. Probe samples are not here: they stay in the pod's journal
file (one API write per sample would not scale); only fault, resource and
result records are.

The ledger (``BudgetLedger``) is the set of ``result.budgets`` over the
namespace's runs: ``remaining`` lists them and sums a rolling window.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aftershock.errors import DriverUnavailable, JournalError
from aftershock.journal.faults import fault_key
from aftershock.journal.ledger_records import LedgerAction
from aftershock.model.results import RunResult, RunStatus
from aftershock.operator.kube import KubeAccess, KubeConflict
from aftershock.ports import Handle
from aftershock.slo.budget import remaining as remaining_budget

__all__ = [
    "EXPERIMENT_LABEL",
    "RUNS",
    "KubeLedger",
    "KubeRunRecords",
    "RunObjects",
    "run_object_name",
]

RUNS: Final = "experimentruns"
EXPERIMENT_LABEL: Final = "aftershock.dev/experiment"
RETENTION: Final = timedelta(days=90)
"""How long ended runs are kept: longer than any SLO window the ledger sums."""

Mutation = Callable[[dict[str, Any]], None]


def run_object_name(run_id: str) -> str:
    """The ``ExperimentRun`` name of a run id (names are lower case)."""
    return run_id.lower()


def _now() -> str:
    return datetime.now(UTC).isoformat()


class RunObjects:
    """Reads and conditionally updates ``ExperimentRun`` objects (blocking calls)."""

    def __init__(self, kube: KubeAccess, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self._known: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def create(self, run_id: str, experiment: str, *, holder: str, seed: int) -> None:
        """Create the run's object with an empty record."""
        body = {
            "apiVersion": "aftershock.dev/v1alpha1",
            "kind": "ExperimentRun",
            "metadata": {
                "name": run_object_name(run_id),
                "namespace": self.namespace,
                "labels": {EXPERIMENT_LABEL: experiment[:63]},
            },
            "spec": {
                "runId": run_id,
                "experiment": experiment,
                "holder": holder,
                "seed": seed,
                "startedAt": _now(),
            },
        }
        created = self.kube.create_object(RUNS, self.namespace, body)
        with self._lock:
            self._known[run_id] = created
        self.update(run_id, lambda status: status.update(phase="Running", faults=[], resources=[]))

    def update(self, run_id: str, change: Mutation) -> dict[str, Any]:
        """Apply ``change`` to the run's status and write it, conditional on the version read
        (``KubeAccess.update_status``, starting from the copy kept from the last write).

        ``JournalError`` when it cannot be written at all.
        """
        name = run_object_name(run_id)
        with self._lock:
            known = self._known.get(run_id)

        def on_status(status: dict[str, Any]) -> dict[str, Any]:
            change(status)
            return status

        try:
            written = self.kube.update_status(RUNS, self.namespace, name, on_status, known=known)
        except (KubeConflict, DriverUnavailable, KeyError, TypeError) as exc:
            msg = f"ExperimentRun {self.namespace}/{name}: cannot record: {exc}"
            raise JournalError(msg) from exc
        if written is None:
            msg = f"ExperimentRun {self.namespace}/{name}: cannot record: it does not exist"
            raise JournalError(msg)
        with self._lock:
            self._known[run_id] = written
        return written

    def forget(self, run_id: str) -> None:
        """Drop the cached copy of a finished run."""
        with self._lock:
            self._known.pop(run_id, None)

    def all(self) -> list[dict[str, Any]]:
        """Every ``ExperimentRun`` of the namespace."""
        return self.kube.list_objects(RUNS, self.namespace)

    def prune(self, now: datetime, keep: timedelta = RETENTION) -> list[str]:
        """Delete ended runs that finished before ``now - keep``; return their names.

        ``keep`` must cover the longest SLO window: the ledger is these objects.
        A run still ``Running`` (its faults may be applied) is never deleted.
        """
        deleted = []
        for item in self.all():
            status = item.get("status") or {}
            finished = (status.get("result") or {}).get("finishedAt")
            if status.get("phase") not in ("Finished", "Interrupted") or not finished:
                continue
            try:
                at = datetime.fromisoformat(str(finished))
            except ValueError:
                continue
            if at < now - keep:
                name = str(item["metadata"]["name"])
                self.kube.delete_object(RUNS, self.namespace, name)
                deleted.append(name)
        return deleted


def _upsert(items: list[dict[str, Any]], key: str, fields: Mapping[str, Any]) -> None:
    for item in items:
        if item.get("key") == key:
            item.update(fields)
            return
    items.append({"key": key, **fields})


_FAULT_TIME: Final = {
    "intent": "intentAt",
    "applied": "appliedAt",
    "reverted": "revertedAt",
    "revert_failed": "failedAt",
}


class KubeRunRecords:
    """``FaultRecords`` in ``ExperimentRun`` objects, written by this holder."""

    def __init__(self, objects: RunObjects, holder: str) -> None:
        self.objects = objects
        self.holder = holder

    def started(self, run_id: str, experiment: str, *, seed: int) -> None:
        """Create the run's object: it exists before any fault is recorded."""
        try:
            self.objects.create(run_id, experiment, holder=self.holder, seed=seed)
        except (KubeConflict, DriverUnavailable) as exc:
            msg = f"cannot create the ExperimentRun of run {run_id}: {exc}"
            raise JournalError(msg) from exc

    def fault(self, phase: str, handle: Handle, **fields: Any) -> None:
        """Record a fault's phase (with its handle) before returning."""
        record = {
            "fault": handle.fault,
            "kind": handle.kind.value,
            "target": handle.target,
            "step": handle.step,
            "phase": phase,
            "handle": handle.to_json(),
            _FAULT_TIME.get(phase, "at"): _now(),
            **fields,
        }

        def change(status: dict[str, Any]) -> None:
            faults = list(status.get("faults") or [])
            _upsert(faults, fault_key(handle), record)
            status["faults"] = faults

        self.objects.update(handle.run_id, change)

    def resource(self, phase: str, handle: Handle, **fields: Any) -> None:
        """Record a resource's phase (with its handle) before returning."""
        record = {
            "fault": handle.fault,
            "kind": handle.kind.value,
            "target": handle.target,
            "phase": phase,
            "handle": handle.to_json(),
            "at": _now(),
            **fields,
        }

        def change(status: dict[str, Any]) -> None:
            resources = list(status.get("resources") or [])
            _upsert(resources, fault_key(handle), record)
            status["resources"] = resources

        self.objects.update(handle.run_id, change)

    def finished(self, result: RunResult) -> None:
        """Mark the run ended (its result is written by the ledger)."""
        phase = "Interrupted" if result.status is RunStatus.INTERRUPTED else "Finished"
        self.objects.update(result.run_id, lambda status: status.update(phase=phase))


class KubeLedger:
    """``BudgetLedger`` over the ``result.budgets`` of the namespace's ``ExperimentRun`` s."""

    def __init__(self, objects: RunObjects) -> None:
        self.objects = objects

    def record_run(
        self,
        result: RunResult,
        *,
        journal_path: str | None = None,
        namespace: str | None = None,
        healer_actions: Sequence[LedgerAction] | None = None,
    ) -> None:
        """Write the run's result and spend into its ``ExperimentRun``."""
        del namespace  # the object lives in the operator's namespace
        recorded = (result.finished_at or result.started_at).astimezone(UTC).isoformat()
        summary = {
            "status": result.status.value,
            "reason": result.reason,
            "finishedAt": recorded,
            "recoverySeconds": result.recovery_seconds,
            "dryRun": result.dry_run,
            "journal": journal_path,
            "healerActions": None if healer_actions is None else len(healer_actions),
            "budgets": [
                {
                    "slo": b.slo,
                    "spent": b.spent,
                    "objective": b.objective,
                    "windowSeconds": b.window_seconds,
                    "recordedAt": recorded,
                }
                for b in result.budgets
            ],
        }
        self.objects.update(result.run_id, lambda status: status.update(result=summary))
        self.objects.forget(result.run_id)

    def remaining(self, slo: str, window: timedelta, now: datetime) -> float:
        """Share of ``slo``'s budget left over the rolling ``window`` ending at ``now``."""
        since = now - window
        spent: list[float] = []
        for item in self.objects.all():
            result = (item.get("status") or {}).get("result") or {}
            if result.get("dryRun") is True:
                continue
            for budget in result.get("budgets") or []:
                if not isinstance(budget, dict) or budget.get("slo") != slo:
                    continue
                try:
                    at = datetime.fromisoformat(str(budget["recordedAt"]))
                    value = float(budget["spent"])
                except (KeyError, TypeError, ValueError):
                    continue
                if since <= at <= now:
                    spent.append(value)
        return remaining_budget(spent)
