"""The Kubernetes driver's undo record: the cluster, the namespace, and what each fault needs.

One record for every fault; each fills its own part (see ``faults``):
``k8s.deletePod`` the pods, their owners' Ready counts and the grace;
``k8s.scale`` the replicas asked for and each workload's count before;
``k8s.rolloutRestart`` the workloads and the ``restartedAt`` stamp;
``k8s.cordon`` the nodes and whether they were unschedulable before. Its JSON
keys are those of the records written before it had a version, so those read
as version 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Self

from aftershock.drivers.undo import VERSION_KEY, Fields, read_undo, write_undo
from aftershock.errors import DriverError
from aftershock.ports import JSON, Handle

__all__ = [
    "UNDO_VERSION",
    "KubernetesUndo",
    "NodeMark",
    "OwnerReady",
    "PodRef",
    "WorkloadRef",
    "undo_of",
    "with_undo",
]

UNDO_VERSION: Final = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class PodRef:
    """A pod ``k8s.deletePod`` deletes; ``uid`` makes sure a namesake is left alone."""

    name: str
    uid: str
    owner: str | None = None
    """``Kind/name`` of its outermost controller, if any."""

    @classmethod
    def read(cls, f: Fields) -> Self:
        """From one entry of ``pods``."""
        return cls(name=f.text("name"), uid=f.text("uid", ""), owner=f.optional_text("owner"))

    def to_json(self) -> dict[str, JSON]:
        """As JSON."""
        return {"name": self.name, "uid": self.uid, "owner": self.owner}


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnerReady:
    """A controller of deleted pods, and how many Ready pods it had before."""

    kind: str
    name: str
    ready: int = 0

    @classmethod
    def read(cls, f: Fields) -> Self:
        """From one entry of ``owners``."""
        return cls(kind=f.text("kind"), name=f.text("name"), ready=f.integer("ready", 0))

    def to_json(self) -> dict[str, JSON]:
        """As JSON."""
        return {"kind": self.kind, "name": self.name, "ready": self.ready}


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadRef:
    """A workload scaled or restarted; ``previous``: its replica count before a scale."""

    kind: str
    name: str
    previous: int | None = None

    @classmethod
    def read(cls, f: Fields) -> Self:
        """From one entry of ``workloads``."""
        return cls(
            kind=f.text("kind"), name=f.text("name"), previous=f.optional_integer("previous")
        )

    def to_json(self) -> dict[str, JSON]:
        """As JSON (``previous`` only when recorded)."""
        data: dict[str, JSON] = {"kind": self.kind, "name": self.name}
        if self.previous is not None:
            data["previous"] = self.previous
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeMark:
    """A node ``k8s.cordon`` aims at, and whether it was unschedulable already."""

    name: str
    was_unschedulable: bool = False

    @classmethod
    def read(cls, f: Fields) -> Self:
        """From one entry of ``nodes``."""
        return cls(name=f.text("name"), was_unschedulable=f.flag("wasUnschedulable", default=False))

    def to_json(self) -> dict[str, JSON]:
        """As JSON."""
        return {"name": self.name, "wasUnschedulable": self.was_unschedulable}


@dataclass(frozen=True, slots=True, kw_only=True)
class KubernetesUndo:
    """How to undo a Kubernetes fault (or wait out its effect) from the journal alone."""

    v: int = UNDO_VERSION
    server: str = ""
    """The API server the fault went to; a revert elsewhere is logged."""
    namespace: str = ""
    """Empty for nodes (cluster-scoped)."""
    own: tuple[str, ...] = ()
    """Refs skipped because they are aftershock's own pod or workload."""
    grace: int | None = None
    pods: tuple[PodRef, ...] = ()
    owners: tuple[OwnerReady, ...] = ()
    orphans: tuple[str, ...] = ()
    """Deleted pods nobody replaces (no controller): nothing to wait for."""
    deleted: tuple[str, ...] | None = None
    replicas: int | None = None
    workloads: tuple[WorkloadRef, ...] = ()
    restarted_at: str | None = None
    nodes: tuple[NodeMark, ...] = ()
    cordoned: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, JSON]:
        """The record as JSON."""
        return {
            VERSION_KEY: self.v,
            "server": self.server,
            "namespace": self.namespace,
            "own": list(self.own),
            "grace": self.grace,
            "pods": [p.to_json() for p in self.pods],
            "owners": [o.to_json() for o in self.owners],
            "orphans": list(self.orphans),
            "deleted": None if self.deleted is None else list(self.deleted),
            "replicas": self.replicas,
            "workloads": [w.to_json() for w in self.workloads],
            "restartedAt": self.restarted_at,
            "nodes": [n.to_json() for n in self.nodes],
            "cordoned": None if self.cordoned is None else list(self.cordoned),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Read a record written by ``to_json``, or an unversioned one of the same keys."""
        f = Fields(data)
        return cls(
            v=f.version(UNDO_VERSION),
            server=f.text("server", ""),
            namespace=f.text("namespace", ""),
            own=f.texts("own"),
            grace=f.optional_integer("grace"),
            pods=f.records("pods", PodRef.read),
            owners=f.records("owners", OwnerReady.read),
            orphans=f.texts("orphans"),
            deleted=f.optional_texts("deleted"),
            replicas=f.optional_integer("replicas"),
            workloads=f.records("workloads", WorkloadRef.read),
            restarted_at=f.optional_text("restartedAt"),
            nodes=f.records("nodes", NodeMark.read),
            cordoned=f.optional_texts("cordoned"),
        )


def undo_of(handle: Handle, failure: type[DriverError]) -> KubernetesUndo:
    """The undo record of ``handle``; an unusable one is ``failure``."""
    return read_undo(handle, KubernetesUndo, failure)


def with_undo(handle: Handle, undo: KubernetesUndo) -> Handle:
    """``handle`` with ``undo`` as its undo record."""
    return write_undo(handle, undo)
