"""Method steps: one fault on one target, placed on the run's timeline.

Each fault is named once, here: a ``FaultType`` constant (``TOXIPROXY_LATENCY``,
``DOCKER_KILL``, ...) holding its name, the target kind it applies to, its
parameter model and whether ``with:`` is required. ``CATALOG`` lists them in
the order of the schema and the docs. Everything else is built from it: one
step model per fault, discriminated by ``fault:`` (so a typo in a fault's
parameters is reported at ``method[i].with.<field>`` and editors get a precise
schema), the ``FaultStep`` union, the JSON Schema, and ``FAULTS`` (name → kind
and parameter model) for checks. Drivers bind a handler to each constant of
their kind and get typed parameters from it (``FaultType.parse``); tests check
that every entry has exactly one handler and that no other list of fault
names exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Final, Generic, TypeVar, Union

from pydantic import Field

from aftershock.model import params as p
from aftershock.model.base import Name, Spec
from aftershock.model.catalog import ParamsMismatch, checked_params, class_name, step_model
from aftershock.model.targets import TargetKind
from aftershock.model.units import Duration

__all__ = [
    "CATALOG",
    "DOCKER_CRASH",
    "DOCKER_KILL",
    "DOCKER_PAUSE",
    "DOCKER_RESTART",
    "DOCKER_STOP",
    "FAULTS",
    "FAULT_TYPES",
    "K8S_CORDON",
    "K8S_DELETE_POD",
    "K8S_ROLLOUT_RESTART",
    "K8S_SCALE",
    "PROCESS_KILL",
    "PROCESS_RESTART",
    "PROCESS_STOP",
    "TOXIPROXY_BANDWIDTH",
    "TOXIPROXY_DOWN",
    "TOXIPROXY_LATENCY",
    "TOXIPROXY_LIMIT_DATA",
    "TOXIPROXY_RESET_PEER",
    "TOXIPROXY_SLICER",
    "TOXIPROXY_SLOW_CLOSE",
    "TOXIPROXY_TIMEOUT",
    "FaultStep",
    "FaultStepBase",
    "FaultType",
    "ParamsMismatch",
    "fault_type",
]

P = TypeVar("P", bound=Spec)


@dataclass(frozen=True, slots=True)
class FaultType(Generic[P]):
    """One fault aftershock can apply: its name, target kind and parameter model ``P``."""

    name: str
    kind: TargetKind
    params: type[P]
    summary: str
    params_required: bool = False
    """Whether ``with:`` must be given (the model has required fields)."""

    def parse(self, params: Spec) -> P:
        """``params`` as this fault's model; ``ParamsMismatch`` if they are another model."""
        return checked_params(self.name, self.params, params)


_T, _D, _K, _P = TargetKind.TOXIPROXY, TargetKind.DOCKER, TargetKind.KUBERNETES, TargetKind.PROCESS

TOXIPROXY_LATENCY: Final = FaultType(
    "toxiproxy.latency",
    _T,
    p.LatencyParams,
    "Add latency (and jitter) to one direction of a proxy.",
    params_required=True,
)
TOXIPROXY_BANDWIDTH: Final = FaultType(
    "toxiproxy.bandwidth",
    _T,
    p.BandwidthParams,
    "Throttle a proxy's throughput.",
    params_required=True,
)
TOXIPROXY_SLOW_CLOSE: Final = FaultType(
    "toxiproxy.slow_close", _T, p.SlowCloseParams, "Delay socket close.", params_required=True
)
TOXIPROXY_TIMEOUT: Final = FaultType(
    "toxiproxy.timeout",
    _T,
    p.TimeoutParams,
    "Stop all data, optionally closing after a timeout.",
)
TOXIPROXY_RESET_PEER: Final = FaultType(
    "toxiproxy.reset_peer",
    _T,
    p.TimeoutParams,
    "Reset connections (TCP RST), immediately or after a timeout.",
)
TOXIPROXY_SLICER: Final = FaultType(
    "toxiproxy.slicer",
    _T,
    p.SlicerParams,
    "Slice data into small packets.",
    params_required=True,
)
TOXIPROXY_LIMIT_DATA: Final = FaultType(
    "toxiproxy.limit_data",
    _T,
    p.LimitDataParams,
    "Close connections after a number of bytes.",
    params_required=True,
)
TOXIPROXY_DOWN: Final = FaultType(
    "toxiproxy.down", _T, p.DownParams, "Disable the proxy: an outage."
)
DOCKER_KILL: Final = FaultType(
    "docker.kill",
    _D,
    p.SignalParams,
    "Signal containers through Docker (a manual stop: restart policies do not fire).",
)
DOCKER_CRASH: Final = FaultType(
    "docker.crash",
    _D,
    p.SignalParams,
    "Signal the container's main process from the host, so restart policies fire.",
)
DOCKER_STOP: Final = FaultType(
    "docker.stop", _D, p.GraceParams, "Stop containers with a grace period."
)
DOCKER_PAUSE: Final = FaultType(
    "docker.pause", _D, p.NoParams, "Freeze containers (cgroup freezer)."
)
DOCKER_RESTART: Final = FaultType("docker.restart", _D, p.GraceParams, "Restart containers.")
K8S_DELETE_POD: Final = FaultType(
    "k8s.deletePod", _K, p.DeletePodParams, "Delete pods; the owner replaces them."
)
K8S_SCALE: Final = FaultType(
    "k8s.scale",
    _K,
    p.ScaleParams,
    "Scale a workload; reverted to the recorded replica count.",
    params_required=True,
)
K8S_ROLLOUT_RESTART: Final = FaultType(
    "k8s.rolloutRestart", _K, p.NoParams, "Restart a workload's pods by rollout."
)
K8S_CORDON: Final = FaultType(
    "k8s.cordon", _K, p.NoParams, "Mark nodes unschedulable; reverted by uncordon."
)
PROCESS_KILL: Final = FaultType("process.kill", _P, p.SignalParams, "Signal a supervised process.")
PROCESS_STOP: Final = FaultType(
    "process.stop",
    _P,
    p.NoParams,
    "Freeze a supervised process (SIGSTOP); reverted by SIGCONT.",
)
PROCESS_RESTART: Final = FaultType(
    "process.restart", _P, p.GraceParams, "Restart a supervised process."
)

CATALOG: Final[tuple[FaultType[Any], ...]] = (
    TOXIPROXY_LATENCY,
    TOXIPROXY_BANDWIDTH,
    TOXIPROXY_SLOW_CLOSE,
    TOXIPROXY_TIMEOUT,
    TOXIPROXY_RESET_PEER,
    TOXIPROXY_SLICER,
    TOXIPROXY_LIMIT_DATA,
    TOXIPROXY_DOWN,
    DOCKER_KILL,
    DOCKER_CRASH,
    DOCKER_STOP,
    DOCKER_PAUSE,
    DOCKER_RESTART,
    K8S_DELETE_POD,
    K8S_SCALE,
    K8S_ROLLOUT_RESTART,
    K8S_CORDON,
    PROCESS_KILL,
    PROCESS_STOP,
    PROCESS_RESTART,
)
"""Every fault, in the order the schema and the docs list them."""

FAULT_TYPES: Final[dict[str, FaultType[Any]]] = {fault.name: fault for fault in CATALOG}
"""Fault name → catalog entry."""


def fault_type(name: str) -> FaultType[Any]:
    """The catalog entry of ``name``; ``KeyError`` for a name that is not a fault."""
    return FAULT_TYPES[name]


class FaultStepBase(Spec):
    """What every method step has: a name, a target, and a place on the timeline."""

    name: Name
    target: Name
    at: Duration = Field(default=timedelta(0), description="Start, from the start of the method.")
    for_: Duration | None = Field(
        default=None,
        alias="for",
        description=(
            "How long the fault stays; omitted = until the method ends "
            "(the latest at+for, or at, of all steps)."
        ),
    )

    fault: str
    with_: Spec = Field(alias="with")

    @property
    def params(self) -> Spec:
        """The ``with:`` parameters of this step (the model its fault's entry names)."""
        return self.with_

    @property
    def fault_type(self) -> FaultType[Any]:
        """This step's catalog entry."""
        return FAULT_TYPES[self.fault]


def _step_model(fault: FaultType[Any]) -> type[FaultStepBase]:
    return step_model(
        FaultStepBase,
        discriminator="fault",
        name=fault.name,
        params=fault.params,
        params_required=fault.params_required,
        summary=fault.summary,
        model_name=class_name(fault.name),
    )


STEP_MODELS: Final[tuple[type[FaultStepBase], ...]] = tuple(_step_model(f) for f in CATALOG)
"""One step model per catalog entry, in catalog order."""

if TYPE_CHECKING:
    FaultStep = FaultStepBase
else:
    FaultStep = Annotated[Union[STEP_MODELS], Field(discriminator="fault")]  # noqa: UP007
"""One method step; the ``fault`` name selects its parameter model."""

FAULTS: Final[dict[str, tuple[TargetKind, type[Spec]]]] = {
    fault.name: (fault.kind, fault.params) for fault in CATALOG
}
"""Fault name → (target kind it applies to, parameter model)."""
