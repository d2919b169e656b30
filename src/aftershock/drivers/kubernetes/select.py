"""What a Kubernetes target selects, and how: pure logic on plain API objects, no ``kubernetes``.

The driver lists pods, workloads or nodes as JSON (the API's own shape), turns
them into ``Candidate`` records here and hands them back, so the rules that
decide the blast radius are tested without a cluster:

1. reach: each operation acts on pods, workloads (of some kinds: those with a
   ``scale`` subresource, those that roll their pods) or nodes, and says which
   of them are eligible (a ``Reach``, bound to the operation by the driver);
   the label selector is applied by the API server;
2. match: ``kind``/``name`` narrow further. For pods, a workload kind means
   "pods it controls" (through a ReplicaSet for a Deployment) and ``Node``
   means "pods on that node"; for workload operations a target without a
   workload kind means "the workloads controlling the matched pods";
3. never aftershock's own pod, nor a workload that controls it;
4. eligibility: a pod being deleted is no target for deleting, a schedulable
   node none for uncordoning;
5. ``mode``: ``one``, ``all``, ``fixed:N`` or ``percent:P`` (rounded up, at
   least 1), drawn with ``random.Random(seed)`` from the candidates sorted by
   name, so a seed reproduces a run.

The namespace allowlist is checked by the driver before anything is listed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from aftershock.drivers.kubernetes.status import is_ready
from aftershock.errors import FaultInjectionFailed, TargetNotFound
from aftershock.model.targets import KubernetesTarget

__all__ = [
    "CORDONED_NODES",
    "PODS",
    "RESTARTABLE",
    "RESTARTABLE_WORKLOADS",
    "SCALABLE",
    "SCALABLE_WORKLOADS",
    "SCHEDULABLE_NODES",
    "WORKLOAD_KINDS",
    "Candidate",
    "OwnPod",
    "Reach",
    "Scope",
    "Selection",
    "check_scope",
    "match_pods",
    "node_candidate",
    "owner_chain",
    "pick_count",
    "pod_candidate",
    "select",
    "selector_string",
    "workload_candidate",
    "workloads_of",
]

WORKLOAD_KINDS: Final = ("Deployment", "StatefulSet", "ReplicaSet", "DaemonSet")
SCALABLE: Final = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})
"""Kinds with a ``scale`` subresource."""
RESTARTABLE: Final = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
"""Kinds whose controller rolls pods when the pod template changes."""

Scope = Literal["pods", "workloads", "nodes"]
Ref = tuple[str, str]
"""(kind, name) of an owner."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One pod, workload or node as the API lists it."""

    kind: str
    name: str
    namespace: str = ""
    """Empty for cluster-scoped objects (nodes)."""
    uid: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    owners: tuple[Ref, ...] = ()
    """The controller chain of a pod, nearest first: ReplicaSet, then Deployment."""
    ready: bool = False
    terminating: bool = False
    unschedulable: bool = False
    node: str = ""

    @property
    def ref(self) -> str:
        """``Kind/namespace/name`` (``Kind/name`` when cluster-scoped): how handles name it."""
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"

    @property
    def top_owner(self) -> Ref | None:
        """The outermost controller (a Deployment rather than its ReplicaSet), if any."""
        return self.owners[-1] if self.owners else None


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnPod:
    """Aftershock's own pod: never selected, nor are the workloads controlling it."""

    name: str
    namespace: str | None = None
    """``None`` when unknown: then a pod of that name in any namespace is ours."""
    owners: tuple[Ref, ...] = ()

    def is_pod(self, candidate: Candidate) -> bool:
        """Is ``candidate`` this pod?"""
        return (
            candidate.kind == "Pod"
            and candidate.name == self.name
            and self.namespace in {None, candidate.namespace}
        )

    def controls(self, namespace: str) -> set[Ref]:
        """The workloads in ``namespace`` that control this pod."""
        if self.namespace not in {None, namespace}:
            return set()
        return set(self.owners)


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """The outcome of a selection, with what was left out and why."""

    chosen: tuple[Candidate, ...]
    own: tuple[str, ...] = ()
    """Refs skipped because they are aftershock's own pod or workload."""
    ineligible: tuple[str, ...] = ()
    """Refs matched but in a state the operation does not apply to."""


def _not_terminating(candidate: Candidate) -> bool:
    return not candidate.terminating


@dataclass(frozen=True, slots=True, kw_only=True)
class Reach:
    """What an operation acts on, and which of those objects it applies to."""

    scope: Scope
    kinds: frozenset[str] = frozenset()
    """For workloads: the kinds it can act on."""
    eligible: Callable[[Candidate], bool] = _not_terminating


PODS: Final = Reach(scope="pods")
"""Pods not being deleted (nor finished)."""
SCALABLE_WORKLOADS: Final = Reach(scope="workloads", kinds=SCALABLE)
RESTARTABLE_WORKLOADS: Final = Reach(scope="workloads", kinds=RESTARTABLE)
SCHEDULABLE_NODES: Final = Reach(scope="nodes", eligible=lambda c: not c.unschedulable)
CORDONED_NODES: Final = Reach(scope="nodes", eligible=lambda c: c.unschedulable)


def check_scope(
    operation: str, reach: Reach, target: KubernetesTarget, *, target_name: str
) -> Scope:
    """What ``operation`` acts on for this target; refuses combinations that make no sense."""
    kind = target.kind
    if reach.scope == "nodes" and kind != "Node":
        msg = f"{operation} acts on nodes: the target needs kind: Node"
        raise FaultInjectionFailed(msg, target=target_name)
    if reach.scope == "workloads" and (
        kind == "Node" or (kind in WORKLOAD_KINDS and kind not in reach.kinds)
    ):
        msg = f"{operation} cannot act on a {kind}; it acts on {', '.join(sorted(reach.kinds))}"
        raise FaultInjectionFailed(msg, target=target_name)
    return reach.scope


def pick_count(mode: str, total: int) -> int:
    """How many of ``total`` eligible candidates ``mode`` asks for (``one`` of none is none)."""
    if total <= 0:
        return 0
    if mode == "all":
        return total
    if mode == "one":
        return 1
    kind, _, value = mode.partition(":")
    if kind == "fixed":
        return min(total, int(value))
    if kind == "percent":
        return min(total, max(1, math.ceil(total * int(value) / 100)))
    msg = f"invalid mode {mode!r}"
    raise ValueError(msg)


def _controller(meta: Mapping[str, Any]) -> Ref | None:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("kind", "")), str(ref.get("name", ""))
    return None


def owner_chain(pod: Mapping[str, Any], replicasets: Mapping[str, Ref | None]) -> tuple[Ref, ...]:
    """A pod's controllers, nearest first; ``replicasets``: each ReplicaSet's own controller."""
    first = _controller(pod.get("metadata") or {})
    if first is None:
        return ()
    if first[0] == "ReplicaSet":
        above = replicasets.get(first[1])
        if above is not None:
            return (first, above)
    return (first,)


def pod_candidate(pod: Mapping[str, Any], replicasets: Mapping[str, Ref | None]) -> Candidate:
    """A ``Candidate`` from a pod as the API returns it."""
    meta = pod.get("metadata") or {}
    phase = (pod.get("status") or {}).get("phase")
    return Candidate(
        kind="Pod",
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        uid=str(meta.get("uid", "")),
        labels=dict(meta.get("labels") or {}),
        owners=owner_chain(pod, replicasets),
        ready=is_ready(pod),
        # A finished pod is as good as gone: deleting it breaks nothing.
        terminating=bool(meta.get("deletionTimestamp")) or phase in {"Succeeded", "Failed"},
        node=str((pod.get("spec") or {}).get("nodeName") or ""),
    )


def workload_candidate(kind: str, obj: Mapping[str, Any]) -> Candidate:
    """A ``Candidate`` from a Deployment, StatefulSet, ReplicaSet or DaemonSet."""
    meta = obj.get("metadata") or {}
    return Candidate(
        kind=kind,
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        uid=str(meta.get("uid", "")),
        labels=dict(meta.get("labels") or {}),
        owners=(c,) if (c := _controller(meta)) else (),
        terminating=bool(meta.get("deletionTimestamp")),
    )


def node_candidate(obj: Mapping[str, Any]) -> Candidate:
    """A ``Candidate`` from a Node."""
    meta = obj.get("metadata") or {}
    return Candidate(
        kind="Node",
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        labels=dict(meta.get("labels") or {}),
        unschedulable=bool((obj.get("spec") or {}).get("unschedulable")),
    )


def match_pods(target: KubernetesTarget, pods: Iterable[Candidate]) -> list[Candidate]:
    """The pods a target names by ``kind``/``name`` (all of them without a name)."""
    kind, name = target.kind, target.name
    if name is None:
        return list(pods)
    if kind == "Pod":
        return [p for p in pods if p.name == name]
    if kind == "Node":
        return [p for p in pods if p.node == name]
    return [p for p in pods if (kind, name) in p.owners]


def workloads_of(pods: Iterable[Candidate], kinds: Collection[str]) -> dict[Ref, str]:
    """The outermost controllers of ``pods`` whose kind is in ``kinds``, with their namespace."""
    found: dict[Ref, str] = {}
    for pod in pods:
        top = pod.top_owner
        if top is not None and top[0] in kinds:
            found[top] = pod.namespace
    return found


def select(
    candidates: Sequence[Candidate],
    *,
    mode: str,
    seed: int | None,
    target_name: str,
    own: OwnPod | None = None,
    eligible: Callable[[Candidate], bool] | None = None,
    require_eligible: bool = True,
    what: str = "object",
    where: str = "",
) -> Selection:
    """Drop aftershock's own pod and workloads and the ineligible, then apply ``mode``.

    Raises ``TargetNotFound`` when nothing is left, saying at which rule the
    candidates dropped out; with ``require_eligible=False`` candidates that are
    all ineligible give an empty selection instead (an action with nothing to do).
    """
    mine: list[Candidate] = []
    allowed: list[Candidate] = []
    for c in candidates:
        ours = own is not None and (
            own.is_pod(c) or (c.kind != "Pod" and (c.kind, c.name) in own.controls(c.namespace))
        )
        (mine if ours else allowed).append(c)
    usable = [c for c in allowed if eligible is None or eligible(c)]
    ineligible = [c.ref for c in allowed if c not in usable]
    if not usable and (require_eligible or not allowed):
        raise TargetNotFound(
            _nothing_left(what, where, len(candidates), mine, ineligible), target=target_name
        )
    usable.sort(key=lambda c: (c.namespace, c.name, c.uid))  # listing order is not a contract
    count = pick_count(mode, len(usable))
    chosen = usable if count == len(usable) else random.Random(seed).sample(usable, count)
    return Selection(
        chosen=tuple(sorted(chosen, key=lambda c: (c.namespace, c.name))),
        own=tuple(sorted(c.ref for c in mine)),
        ineligible=tuple(sorted(ineligible)),
    )


def _nothing_left(
    what: str, where: str, matched: int, mine: list[Candidate], ineligible: list[str]
) -> str:
    if not matched:
        return f"no {what} matches{where}"
    reasons = []
    if mine:
        reasons.append(f"{len(mine)} is aftershock's own ({', '.join(c.ref for c in mine)})")
    if ineligible:
        reasons.append(f"{len(ineligible)} not in a state this applies to")
    return f"{matched} {what}(s) matched but none is usable: {'; '.join(reasons)}"


def selector_string(label_selector: Mapping[str, Any] | None) -> str:
    """A workload's ``spec.selector`` (matchLabels, matchExpressions) as a query string."""
    if not label_selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((label_selector.get("matchLabels") or {}).items())]
    for expr in label_selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)
