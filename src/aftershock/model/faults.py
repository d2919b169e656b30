"""Method steps: one fault on one target, placed on the run's timeline.

Each fault is its own model, discriminated by ``fault:``, so a typo in a
fault's parameters is reported at ``method[i].with.<field>`` and editors get a
precise schema. ``FAULTS`` maps every fault name to its target kind and
parameter model, for drivers and checks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Final, Literal, get_args

from pydantic import Field

from aftershock.model import params as p
from aftershock.model.base import Name, Spec
from aftershock.model.targets import TargetKind
from aftershock.model.units import Duration

__all__ = ["FAULTS", "FaultStep", "FaultStepBase"]


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

    @property
    def params(self) -> Spec:
        """The ``with:`` parameters of this step."""
        value: Spec = self.__dict__["with_"]
        return value


def _with(model: type[Spec], *, required: bool = False) -> object:
    if required:
        return Field(alias="with")
    return Field(default_factory=model, alias="with")


class ToxiproxyLatency(FaultStepBase):
    """Add latency (and jitter) to one direction of a proxy."""

    fault: Literal["toxiproxy.latency"]
    with_: p.LatencyParams = _with(p.LatencyParams, required=True)  # type: ignore[assignment]


class ToxiproxyBandwidth(FaultStepBase):
    """Throttle a proxy's throughput."""

    fault: Literal["toxiproxy.bandwidth"]
    with_: p.BandwidthParams = _with(p.BandwidthParams, required=True)  # type: ignore[assignment]


class ToxiproxySlowClose(FaultStepBase):
    """Delay socket close."""

    fault: Literal["toxiproxy.slow_close"]
    with_: p.SlowCloseParams = _with(p.SlowCloseParams, required=True)  # type: ignore[assignment]


class ToxiproxyTimeout(FaultStepBase):
    """Stop all data, optionally closing after a timeout."""

    fault: Literal["toxiproxy.timeout"]
    with_: p.TimeoutParams = _with(p.TimeoutParams)  # type: ignore[assignment]


class ToxiproxyResetPeer(FaultStepBase):
    """Reset connections (TCP RST), immediately or after a timeout."""

    fault: Literal["toxiproxy.reset_peer"]
    with_: p.TimeoutParams = _with(p.TimeoutParams)  # type: ignore[assignment]


class ToxiproxySlicer(FaultStepBase):
    """Slice data into small packets."""

    fault: Literal["toxiproxy.slicer"]
    with_: p.SlicerParams = _with(p.SlicerParams, required=True)  # type: ignore[assignment]


class ToxiproxyLimitData(FaultStepBase):
    """Close connections after a number of bytes."""

    fault: Literal["toxiproxy.limit_data"]
    with_: p.LimitDataParams = _with(p.LimitDataParams, required=True)  # type: ignore[assignment]


class ToxiproxyDown(FaultStepBase):
    """Disable the proxy: an outage."""

    fault: Literal["toxiproxy.down"]
    with_: p.DownParams = _with(p.DownParams)  # type: ignore[assignment]


class DockerKill(FaultStepBase):
    """Signal containers through Docker (a manual stop: restart policies do not fire)."""

    fault: Literal["docker.kill"]
    with_: p.SignalParams = _with(p.SignalParams)  # type: ignore[assignment]


class DockerCrash(FaultStepBase):
    """Signal the container's main process from the host, so restart policies fire."""

    fault: Literal["docker.crash"]
    with_: p.SignalParams = _with(p.SignalParams)  # type: ignore[assignment]


class DockerStop(FaultStepBase):
    """Stop containers with a grace period."""

    fault: Literal["docker.stop"]
    with_: p.GraceParams = _with(p.GraceParams)  # type: ignore[assignment]


class DockerPause(FaultStepBase):
    """Freeze containers (cgroup freezer)."""

    fault: Literal["docker.pause"]
    with_: p.NoParams = _with(p.NoParams)  # type: ignore[assignment]


class DockerRestart(FaultStepBase):
    """Restart containers."""

    fault: Literal["docker.restart"]
    with_: p.GraceParams = _with(p.GraceParams)  # type: ignore[assignment]


class K8sDeletePod(FaultStepBase):
    """Delete pods; the owner replaces them."""

    fault: Literal["k8s.deletePod"]
    with_: p.DeletePodParams = _with(p.DeletePodParams)  # type: ignore[assignment]


class K8sScale(FaultStepBase):
    """Scale a workload; reverted to the recorded replica count."""

    fault: Literal["k8s.scale"]
    with_: p.ScaleParams = _with(p.ScaleParams, required=True)  # type: ignore[assignment]


class K8sRolloutRestart(FaultStepBase):
    """Restart a workload's pods by rollout."""

    fault: Literal["k8s.rolloutRestart"]
    with_: p.NoParams = _with(p.NoParams)  # type: ignore[assignment]


class K8sCordon(FaultStepBase):
    """Mark nodes unschedulable; reverted by uncordon."""

    fault: Literal["k8s.cordon"]
    with_: p.NoParams = _with(p.NoParams)  # type: ignore[assignment]


class ProcessKill(FaultStepBase):
    """Signal a supervised process."""

    fault: Literal["process.kill"]
    with_: p.SignalParams = _with(p.SignalParams)  # type: ignore[assignment]


class ProcessStop(FaultStepBase):
    """Freeze a supervised process (SIGSTOP); reverted by SIGCONT."""

    fault: Literal["process.stop"]
    with_: p.NoParams = _with(p.NoParams)  # type: ignore[assignment]


class ProcessRestart(FaultStepBase):
    """Restart a supervised process."""

    fault: Literal["process.restart"]
    with_: p.GraceParams = _with(p.GraceParams)  # type: ignore[assignment]


_STEPS: Final = (
    ToxiproxyLatency,
    ToxiproxyBandwidth,
    ToxiproxySlowClose,
    ToxiproxyTimeout,
    ToxiproxyResetPeer,
    ToxiproxySlicer,
    ToxiproxyLimitData,
    ToxiproxyDown,
    DockerKill,
    DockerCrash,
    DockerStop,
    DockerPause,
    DockerRestart,
    K8sDeletePod,
    K8sScale,
    K8sRolloutRestart,
    K8sCordon,
    ProcessKill,
    ProcessStop,
    ProcessRestart,
)

FaultStep = Annotated[
    ToxiproxyLatency
    | ToxiproxyBandwidth
    | ToxiproxySlowClose
    | ToxiproxyTimeout
    | ToxiproxyResetPeer
    | ToxiproxySlicer
    | ToxiproxyLimitData
    | ToxiproxyDown
    | DockerKill
    | DockerCrash
    | DockerStop
    | DockerPause
    | DockerRestart
    | K8sDeletePod
    | K8sScale
    | K8sRolloutRestart
    | K8sCordon
    | ProcessKill
    | ProcessStop
    | ProcessRestart,
    Field(discriminator="fault"),
]
"""One method step; the ``fault`` name selects its parameter model."""


def _kind_of(name: str) -> TargetKind:
    prefix = name.split(".", 1)[0]
    return next(k for k in TargetKind if k.prefix == prefix)


def _entry(cls: type[FaultStepBase]) -> tuple[str, tuple[TargetKind, type[Spec]]]:
    name = str(get_args(cls.model_fields["fault"].annotation)[0])
    params = cls.model_fields["with_"].annotation
    assert isinstance(params, type)
    assert issubclass(params, Spec)
    return name, (_kind_of(name), params)


FAULTS: Final[dict[str, tuple[TargetKind, type[Spec]]]] = dict(_entry(c) for c in _STEPS)
"""Fault name → (target kind it applies to, parameter model)."""
