"""The Kubernetes healing actions: each catalog entry bound to what it reaches and does.

``k8s.rolloutRestart`` rolls a workload's pods, ``k8s.deletePod`` deletes the
selected pods (their owners replace them), ``k8s.scale`` sets a workload's
replicas, ``k8s.uncordon`` makes cordoned nodes schedulable again (whoever
cordoned them). Only objects the action applies to are acted on, so an action
may find nothing to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from kubernetes import client

from aftershock.drivers.bindings import Bindings, action_handlers
from aftershock.drivers.kubernetes import changes
from aftershock.drivers.kubernetes import select as sel
from aftershock.model import actions as a
from aftershock.model.base import Spec
from aftershock.model.params import DeletePodParams, NoParams, ScaleParams
from aftershock.model.targets import TargetKind

__all__ = ["ACTIONS", "ClusterAction"]

P = TypeVar("P", bound=Spec)
Perform = Callable[[client.ApiClient, sel.Candidate, str, P], bool]
"""``(api, object, stamp, params)``: act on one object; whether anything changed."""
Bound = Callable[[client.ApiClient, sel.Candidate, str], bool]


@dataclass(frozen=True, slots=True)
class ClusterAction(Generic[P]):
    """A healing action on the objects a target selects, one by one."""

    action: a.ActionType[P]
    reach: sel.Reach
    perform: Perform[P]

    def bound(self, params: Spec) -> Bound:
        """The action with ``params`` parsed (before anything is touched)."""
        typed = self.action.parse(params)
        return lambda api, obj, stamp: self.perform(api, obj, stamp, typed)


def _restart(api: client.ApiClient, obj: sel.Candidate, stamp: str, params: NoParams) -> bool:
    changes.restart(api, obj.kind, obj.namespace, obj.name, stamp)
    return True


def _delete(api: client.ApiClient, obj: sel.Candidate, stamp: str, params: DeletePodParams) -> bool:
    grace = changes.grace_seconds(params.grace)
    return changes.delete_pod(api, obj.namespace, obj.name, obj.uid, grace)


def _scale(api: client.ApiClient, obj: sel.Candidate, stamp: str, params: ScaleParams) -> bool:
    changes.set_replicas(api, obj.kind, obj.namespace, obj.name, params.replicas)
    return True


def _uncordon(api: client.ApiClient, obj: sel.Candidate, stamp: str, params: NoParams) -> bool:
    return changes.uncordon(api, obj.name)


ACTIONS: Final[Bindings[a.ActionType[Any], ClusterAction[Any]]] = action_handlers(
    TargetKind.KUBERNETES,
    ClusterAction(a.K8S_ROLLOUT_RESTART, sel.RESTARTABLE_WORKLOADS, _restart),
    ClusterAction(a.K8S_DELETE_POD, sel.PODS, _delete),
    ClusterAction(a.K8S_SCALE, sel.SCALABLE_WORKLOADS, _scale),
    ClusterAction(a.K8S_UNCORDON, sel.CORDONED_NODES, _uncordon),
)
"""Every Kubernetes healing action of the catalog, bound to what it does."""
