"""Parameters (``with:``) of every fault and healing action, one model each.

Numbers and booleans are strict: ``toxicity: true`` or ``toxicity: "0.5"`` is an
error, not 1.0 or 0.5. A YAML integer is still a valid float (``toxicity: 1``).
"""

from __future__ import annotations

import signal
from datetime import timedelta
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, StrictFloat, StrictInt, model_validator

from aftershock.model.base import Spec
from aftershock.model.units import Duration

__all__ = [
    "BandwidthParams",
    "GraceParams",
    "LatencyParams",
    "LimitDataParams",
    "NoParams",
    "ScaleParams",
    "SignalParams",
    "SlicerParams",
    "SlowCloseParams",
    "TimeoutParams",
    "ToxicParams",
]


def _check_signal(value: str) -> str:
    name = value.upper()
    if not name.startswith("SIG"):
        name = f"SIG{name}"
    if name not in signal.Signals.__members__:
        msg = f"unknown signal {value!r}; expected e.g. SIGKILL, SIGTERM"
        raise ValueError(msg)
    return name


Signal = Annotated[str, AfterValidator(_check_signal)]
"""A POSIX signal name, normalised to ``SIGxxx``."""


class NoParams(Spec):
    """A fault or action that takes no parameters."""


class ToxicParams(Spec):
    """What every Toxiproxy toxic accepts."""

    stream: Literal["upstream", "downstream"] = Field(
        default="downstream",
        description="upstream = client to server, downstream = server to client.",
    )
    toxicity: StrictFloat = Field(
        default=1.0, ge=0.0, le=1.0, description="Probability the toxic applies to a connection."
    )


class LatencyParams(ToxicParams):
    """Delay each chunk by latency +/- jitter."""

    latency: Duration
    jitter: Duration = timedelta(0)


class BandwidthParams(ToxicParams):
    """Throttle to ``rate`` KB/s."""

    rate: StrictInt = Field(ge=0, le=10**9, description="KB/s")


class SlowCloseParams(ToxicParams):
    """Delay the socket close."""

    delay: Duration


class TimeoutParams(ToxicParams):
    """Stop data; close after ``timeout`` (0s = hold until removed). Also ``reset_peer``."""

    timeout: Duration = timedelta(0)


class SlicerParams(ToxicParams):
    """Split data into small packets with an optional delay between them."""

    average_size: StrictInt = Field(ge=1, le=10**9)
    size_variation: StrictInt = Field(default=0, ge=0, le=10**9)
    delay: Duration = timedelta(0)

    @model_validator(mode="after")
    def _variation_below_average(self) -> Self:
        if self.size_variation >= self.average_size:
            msg = "sizeVariation must be smaller than averageSize"
            raise ValueError(msg)
        return self


class LimitDataParams(ToxicParams):
    """Close the connection after ``bytes`` bytes."""

    bytes: StrictInt = Field(ge=0, le=2**62)


class DownParams(Spec):
    """Disable the proxy: every connection refused until reverted."""


class SignalParams(Spec):
    """Send a signal (kill, crash)."""

    signal: Signal = "SIGKILL"


class GraceParams(Spec):
    """Stop or restart with a grace period before SIGKILL."""

    grace: Duration = timedelta(seconds=10)


class DeletePodParams(Spec):
    """Delete pods; ``grace`` overrides the pod's own grace period."""

    grace: Duration | None = None


class ScaleParams(Spec):
    """Scale a workload to ``replicas``."""

    replicas: StrictInt = Field(ge=0, le=10_000)
