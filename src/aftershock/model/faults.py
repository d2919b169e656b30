"""Method steps: one fault on one target, placed on the run's timeline.

``CATALOG`` is the one list of faults: each entry names a fault, the target
kind it applies to, its parameter model and whether ``with:`` is required.
Everything else is built from it: one step model per fault, discriminated by
``fault:`` (so a typo in a fault's parameters is reported at
``method[i].with.<field>`` and editors get a precise schema), the ``FaultStep``
union, the JSON Schema, and ``FAULTS`` (name → kind and parameter model) for
drivers and checks. Drivers bind a handler to each catalog entry of their
kind; a test checks that no other list of fault names exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Final, TypeVar, Union

from pydantic import Field

from aftershock.model import params as p
from aftershock.model.base import Name, Spec
from aftershock.model.catalog import class_name, step_model
from aftershock.model.targets import TargetKind
from aftershock.model.units import Duration

__all__ = ["CATALOG", "FAULTS", "FaultStep", "FaultStepBase", "FaultType", "fault_type"]

P = TypeVar("P", bound=Spec)


@dataclass(frozen=True, slots=True)
class FaultType:
    """One fault aftershock can apply: its name, target kind and parameters."""

    name: str
    kind: TargetKind
    params: type[Spec]
    summary: str
    params_required: bool = False
    """Whether ``with:`` must be given (the model has required fields)."""

    def parse(self, params: Spec, model: type[P]) -> P:
        """``params`` as ``model``; a ``TypeError`` if this fault's parameters are another model."""
        if self.params is not model or not isinstance(params, model):
            msg = f"{self.name} takes {self.params.__name__}, not {model.__name__}"
            raise TypeError(msg)
        return params


_T, _D, _K, _P = TargetKind.TOXIPROXY, TargetKind.DOCKER, TargetKind.KUBERNETES, TargetKind.PROCESS

CATALOG: Final[tuple[FaultType, ...]] = (
    FaultType(
        "toxiproxy.latency",
        _T,
        p.LatencyParams,
        "Add latency (and jitter) to one direction of a proxy.",
        params_required=True,
    ),
    FaultType(
        "toxiproxy.bandwidth",
        _T,
        p.BandwidthParams,
        "Throttle a proxy's throughput.",
        params_required=True,
    ),
    FaultType(
        "toxiproxy.slow_close", _T, p.SlowCloseParams, "Delay socket close.", params_required=True
    ),
    FaultType(
        "toxiproxy.timeout",
        _T,
        p.TimeoutParams,
        "Stop all data, optionally closing after a timeout.",
    ),
    FaultType(
        "toxiproxy.reset_peer",
        _T,
        p.TimeoutParams,
        "Reset connections (TCP RST), immediately or after a timeout.",
    ),
    FaultType(
        "toxiproxy.slicer",
        _T,
        p.SlicerParams,
        "Slice data into small packets.",
        params_required=True,
    ),
    FaultType(
        "toxiproxy.limit_data",
        _T,
        p.LimitDataParams,
        "Close connections after a number of bytes.",
        params_required=True,
    ),
    FaultType("toxiproxy.down", _T, p.DownParams, "Disable the proxy: an outage."),
    FaultType(
        "docker.kill",
        _D,
        p.SignalParams,
        "Signal containers through Docker (a manual stop: restart policies do not fire).",
    ),
    FaultType(
        "docker.crash",
        _D,
        p.SignalParams,
        "Signal the container's main process from the host, so restart policies fire.",
    ),
    FaultType("docker.stop", _D, p.GraceParams, "Stop containers with a grace period."),
    FaultType("docker.pause", _D, p.NoParams, "Freeze containers (cgroup freezer)."),
    FaultType("docker.restart", _D, p.GraceParams, "Restart containers."),
    FaultType("k8s.deletePod", _K, p.DeletePodParams, "Delete pods; the owner replaces them."),
    FaultType(
        "k8s.scale",
        _K,
        p.ScaleParams,
        "Scale a workload; reverted to the recorded replica count.",
        params_required=True,
    ),
    FaultType("k8s.rolloutRestart", _K, p.NoParams, "Restart a workload's pods by rollout."),
    FaultType("k8s.cordon", _K, p.NoParams, "Mark nodes unschedulable; reverted by uncordon."),
    FaultType("process.kill", _P, p.SignalParams, "Signal a supervised process."),
    FaultType(
        "process.stop",
        _P,
        p.NoParams,
        "Freeze a supervised process (SIGSTOP); reverted by SIGCONT.",
    ),
    FaultType("process.restart", _P, p.GraceParams, "Restart a supervised process."),
)
"""Every fault, in the order the schema and the docs list them."""

FAULT_TYPES: Final[dict[str, FaultType]] = {fault.name: fault for fault in CATALOG}


def fault_type(name: str) -> FaultType:
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
    def fault_type(self) -> FaultType:
        """This step's catalog entry."""
        return FAULT_TYPES[self.fault]


def _step_model(fault: FaultType) -> type[FaultStepBase]:
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
