"""A new leader's first duty: undo what dead holders left applied.

On taking the Lease, before it schedules or heals anything, the leader reads
every ``ExperimentRun`` still ``Running`` whose run is not its own (any other
holder is gone: a leader that loses the Lease stops its runs first), and for
each record not yet reverted:

* Docker, Kubernetes and external-Toxiproxy faults are reverted from the
  handle in the record (``intent`` records too: a crash may have come between
  the intent and the answer), and the outcome is recorded on the same object
  (``reverted`` with ``revertedAt``, or ``revert_failed`` with the error, left
  for the next leader to retry);
* faults on an embedded proxy or a supervised process ended with the pod that
  ran them; they are recorded ``reverted`` with ``outcome: died with its pod``;
* provisioned proxies the run never released are removed (only the one the
  record says aftershock created).

The run is then marked ``Interrupted`` with a reason naming the dead holder,
every target Lease claim of a run that is not alive is broken, and ended runs
older than ``runrecords.RETENTION`` (90 days, longer than any SLO window the
ledger sums) are deleted. The
interrupted run books no budget spend: its samples died with its pod.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from aftershock.drivers.toxiproxy import ToxiproxyDriver
from aftershock.journal.faults import fault_key
from aftershock.model.results import RunStatus
from aftershock.model.targets import TargetKind
from aftershock.operator.runrecords import KubeRunRecords
from aftershock.operator.stores import OperatorStores
from aftershock.ports import Handle
from aftershock.runtime.recovery import Leftover, RecoveryReport, undo_leftovers
from aftershock.settings import Settings

__all__ = ["DIED_WITH_POD", "take_over"]

DIED_WITH_POD = "died with its pod"

_OPEN_FAULTS = frozenset({"intent", "applied", "revert_failed"})
_OPEN_RESOURCES = frozenset({"intent", "created", "release_failed"})

_log = structlog.get_logger("aftershock.operator")


class _RecordsLog:
    """``RevertLog`` onto a run's ``ExperimentRun``."""

    def __init__(self, records: KubeRunRecords) -> None:
        self.records = records

    def reverted(self, handle: Handle) -> None:
        self.records.fault("reverted", handle, outcome="reverted by a new leader")

    def revert_failed(self, handle: Handle, error: str) -> None:
        self.records.fault("revert_failed", handle, error=error)

    def resource_released(self, handle: Handle, outcome: str) -> None:
        self.records.resource("released", handle, outcome=outcome)

    def resource_release_failed(self, handle: Handle, error: str) -> None:
        self.records.resource("release_failed", handle, error=error)


def _died_with_pod(handle: Handle) -> bool:
    if handle.kind is TargetKind.PROCESS:
        return True
    return handle.kind is TargetKind.TOXIPROXY and ToxiproxyDriver.in_process(handle)


def _handle(record: Mapping[str, Any]) -> Handle | None:
    try:
        return Handle.from_json(record["handle"])
    except (KeyError, TypeError, ValueError):
        return None


async def take_over(
    stores: OperatorStores, settings: Settings, *, drivers: Mapping[TargetKind, Any] | None = None
) -> RecoveryReport:
    """Revert every fault of every run whose holder is gone; mark those runs interrupted."""
    report = RecoveryReport()
    orphans: list[tuple[str, str]] = []
    faults: list[Leftover] = []
    resources: list[Leftover] = []
    log = _RecordsLog(stores.records)
    for item in stores.objects.all():
        spec, status = item.get("spec") or {}, item.get("status") or {}
        run_id = str(spec.get("runId") or "")
        if not run_id or status.get("phase") not in (None, "Running"):
            continue
        if stores.runs.live(run_id):
            continue
        orphans.append((run_id, str(spec.get("holder") or "unknown")))
        for record in status.get("faults") or []:
            handle = _handle(record)
            if handle is None or record.get("phase") not in _OPEN_FAULTS:
                continue
            if _died_with_pod(handle):
                stores.records.fault("reverted", handle, outcome=DIED_WITH_POD)
                continue
            faults.append(Leftover(run_id=run_id, key=fault_key(handle), handle=handle))
        for record in status.get("resources") or []:
            handle = _handle(record)
            if handle is None or record.get("phase") not in _OPEN_RESOURCES:
                continue
            created = record.get("phase") != "intent"
            resources.append(
                Leftover(run_id=run_id, key=fault_key(handle), handle=handle, created=created)
            )
    if faults or resources:
        await undo_leftovers(
            settings,
            faults,
            resources,
            drivers=drivers,
            log_of=lambda _run: log,
            live=stores.runs.live,
            report=report,
        )
    failed = {a.run_id for a in report.actions if not a.ok}
    for run_id, holder in orphans:
        reason = f"its holder {holder} is gone; {stores.runs.holder} reverted what it left applied"
        if run_id in failed:
            reason += " (some reverts failed: the next leader retries them)"
        _interrupted(stores, run_id, reason, keep_running=run_id in failed)
    broken = await stores.leases.break_dead()
    pruned = await asyncio.to_thread(stores.objects.prune, datetime.now(UTC))
    _log.info(
        "took over from a dead holder",
        runs=len(orphans),
        reverted=len([a for a in report.actions if a.ok]),
        failed=len(failed),
        leases_broken=len(broken),
        runs_pruned=len(pruned),
    )
    return report


def _interrupted(stores: OperatorStores, run_id: str, reason: str, *, keep_running: bool) -> None:
    now = datetime.now(UTC).isoformat()
    result: dict[str, Any] = {
        "status": RunStatus.INTERRUPTED.value,
        "reason": reason,
        "finishedAt": now,
        "recoverySeconds": None,
        "dryRun": False,
        "budgets": [],
    }

    def change(status: dict[str, Any]) -> None:
        status["result"] = result
        if not keep_running:
            status["phase"] = "Interrupted"

    stores.objects.update(run_id, change)
    stores.objects.forget(run_id)
