"""The Toxiproxy faults: each catalog entry bound to the toxic it adds, or to disabling the proxy.

Every toxic aftershock adds is named ``aftershock-<run_id>-<step>``
(``toxic_name``), so toxics lost from the journal can still be found and
removed by ``aftershock recover``. A ``ToxicFault`` turns the step's typed
parameters into the toxic's type, stream, toxicity and attributes (all
integers, as Toxiproxy takes them; the slicer's delay in µs). ``toxiproxy.down``
adds no toxic: ``DisableProxy`` disables the proxy, and the undo record keeps
whether it was enabled before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Generic, TypeVar

from aftershock.drivers.bindings import Bindings, fault_handlers, params_checked
from aftershock.drivers.toxiproxy.undo import ToxicPlan
from aftershock.errors import FaultInjectionFailed
from aftershock.model import faults as f
from aftershock.model.base import Spec
from aftershock.model.params import (
    BandwidthParams,
    DownParams,
    LatencyParams,
    LimitDataParams,
    SlicerParams,
    SlowCloseParams,
    TimeoutParams,
    ToxicParams,
)
from aftershock.model.targets import TargetKind

__all__ = ["FAULTS", "PREFIX", "DisableProxy", "ToxicFault", "toxic_attributes", "toxic_name"]

P = TypeVar("P", bound=ToxicParams)
PREFIX: Final = "aftershock-"
"""Every toxic aftershock creates starts with this."""


def toxic_name(run_id: str, step: str) -> str:
    """The toxic name of one method step of one run."""
    return f"{PREFIX}{run_id}-{step}"


@dataclass(frozen=True, slots=True)
class ToxicFault(Generic[P]):
    """A fault that adds one toxic of ``type``, with the attributes its parameters give."""

    fault: f.FaultType[P]
    type: str
    attributes: Callable[[P], dict[str, int]]

    def plan(self, name: str, params: Spec) -> ToxicPlan:
        """The toxic named ``name`` this fault adds with ``params``."""
        typed = self.fault.parse(params)
        return ToxicPlan(
            name=name,
            type=self.type,
            stream=typed.stream,
            toxicity=typed.toxicity,
            attributes=self.attributes(typed),
        )


@dataclass(frozen=True, slots=True)
class DisableProxy:
    """A fault that disables the proxy (an outage); revert enables it if it was enabled."""

    fault: f.FaultType[DownParams]


def _ms(value: timedelta) -> int:
    return round(value / timedelta(milliseconds=1))


def _latency(params: LatencyParams) -> dict[str, int]:
    return {"latency": _ms(params.latency), "jitter": _ms(params.jitter)}


def _bandwidth(params: BandwidthParams) -> dict[str, int]:
    return {"rate": params.rate}


def _slow_close(params: SlowCloseParams) -> dict[str, int]:
    return {"delay": _ms(params.delay)}


def _timeout(params: TimeoutParams) -> dict[str, int]:
    return {"timeout": _ms(params.timeout)}


def _slicer(params: SlicerParams) -> dict[str, int]:
    sizes = {"average_size": params.average_size, "size_variation": params.size_variation}
    return {**sizes, "delay": round(params.delay / timedelta(microseconds=1))}


def _limit_data(params: LimitDataParams) -> dict[str, int]:
    return {"bytes": params.bytes}


FaultHandler = ToxicFault[Any] | DisableProxy

FAULTS: Final[Bindings[f.FaultType[Any], FaultHandler]] = fault_handlers(
    TargetKind.TOXIPROXY,
    ToxicFault(f.TOXIPROXY_LATENCY, "latency", _latency),
    ToxicFault(f.TOXIPROXY_BANDWIDTH, "bandwidth", _bandwidth),
    ToxicFault(f.TOXIPROXY_SLOW_CLOSE, "slow_close", _slow_close),
    ToxicFault(f.TOXIPROXY_TIMEOUT, "timeout", _timeout),
    ToxicFault(f.TOXIPROXY_RESET_PEER, "reset_peer", _timeout),
    ToxicFault(f.TOXIPROXY_SLICER, "slicer", _slicer),
    ToxicFault(f.TOXIPROXY_LIMIT_DATA, "limit_data", _limit_data),
    DisableProxy(f.TOXIPROXY_DOWN),
)
"""Every Toxiproxy fault of the catalog, bound to what it does."""


def toxic_attributes(fault: f.FaultType[Any], params: Spec) -> dict[str, int]:
    """The Toxiproxy attributes of a toxic fault; ``FaultInjectionFailed`` for any other."""
    handler = FAULTS.get(fault)
    if not isinstance(handler, ToxicFault):
        msg = f"{fault.name} adds no toxic"
        raise FaultInjectionFailed(msg)
    with params_checked(""):
        return dict(handler.plan("", params).attributes)
