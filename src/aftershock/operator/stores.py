"""The operator's stores (``aftershock.runtime.stores``) over the Kubernetes API.

==================  ===============================================================
store               in the cluster
==================  ===============================================================
lever               the ConfigMap ``aftershock-lever`` (``data.engaged: "true"``),
                    read at the start of each leadership term and followed by the
                    watch; no file
run registry        this process's live runs, under a holder id unique to the
                    process (``<pod>/<random>``); a run of any other holder is dead
                    once this replica leads (a leader that loses the Lease stops
                    its runs, and they roll back, before another can lead)
fault records       ``ExperimentRun`` objects (``operator.runrecords``)
ledger              the same objects' ``status.result.budgets``
target leases       Lease objects (``operator.targetleases``)
==================  ===============================================================

Nothing a run promises lives on the pod's disk: its journal file (samples,
phases) and HTML report are pod-local (an ``emptyDir``) and die with the pod.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import structlog

from aftershock.operator.kube import KubeAccess
from aftershock.operator.runrecords import KubeLedger, KubeRunRecords, RunObjects
from aftershock.operator.targetleases import KubeTargetLeases
from aftershock.runtime.stores import Stores

__all__ = ["KubeLever", "KubeRunRegistry", "OperatorStores", "operator_stores"]

_log = structlog.get_logger("aftershock.operator")


class KubeLever:
    """The kill switch as the cluster says it is: the ConfigMap's ``engaged`` value."""

    def __init__(self) -> None:
        self._engaged = False

    def engaged(self) -> bool:
        """What the ConfigMap said last."""
        return self._engaged

    def follow(self, data: Mapping[str, str] | None) -> bool:
        """Take the ConfigMap's data (``None``: deleted = released); return the new state."""
        engaged = str((data or {}).get("engaged", "")).strip().lower() == "true"
        if engaged != self._engaged:
            _log.warning("kill switch " + ("engaged" if engaged else "released"))
        self._engaged = engaged
        return engaged


class KubeRunRegistry:
    """Live runs of this process, under a holder id no other process has."""

    def __init__(self, identity: str) -> None:
        self.holder = f"{identity}/{secrets.token_hex(4)}"
        self._live: set[str] = set()

    @contextlib.contextmanager
    def alive(self, run_id: str) -> Iterator[None]:
        """The run is alive for the block."""
        self._live.add(run_id)
        try:
            yield
        finally:
            self._live.discard(run_id)

    def live(self, run_id: str) -> bool:
        """True for this process's running runs only."""
        return run_id in self._live


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorStores:
    """The operator's stores, with their concrete types (recovery needs more than the ports)."""

    lever: KubeLever
    runs: KubeRunRegistry
    objects: RunObjects
    records: KubeRunRecords
    ledger: KubeLedger
    leases: KubeTargetLeases

    def ports(self) -> Stores:
        """The same stores, as a run sees them."""
        return Stores(
            lever=self.lever,
            ledger=self.ledger,
            leases=self.leases,
            runs=self.runs,
            records=self.records,
        )


def operator_stores(kube: KubeAccess, namespace: str, identity: str) -> OperatorStores:
    """Every store of one operator process, in ``namespace``."""
    runs = KubeRunRegistry(identity)
    objects = RunObjects(kube, namespace)
    return OperatorStores(
        lever=KubeLever(),
        runs=runs,
        objects=objects,
        records=KubeRunRecords(objects, runs.holder),
        ledger=KubeLedger(objects),
        leases=KubeTargetLeases(kube, namespace, runs.live, holder=runs.holder),
    )
