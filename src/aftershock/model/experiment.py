"""The ``Experiment`` kind: steady state, a method of faults, abort rules, expectations."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from aftershock.model.base import Name, Spec
from aftershock.model.common import API_VERSION, Metadata, Schedule, SloSpec
from aftershock.model.faults import FaultStep
from aftershock.model.probes import ProbeSpec, Tolerance
from aftershock.model.targets import TargetSpec
from aftershock.model.units import Duration, Percentage

__all__ = [
    "BudgetAbort",
    "BudgetSpec",
    "Expectations",
    "Experiment",
    "ExperimentSpec",
    "ProbeAbort",
    "SteadyStateCheck",
]


class SteadyStateCheck(Spec):
    """A probe's samples over a window must meet a tolerance."""

    probe: Name
    over: Duration = Field(default=timedelta(seconds=10), description="Sampling window.")
    expect: Tolerance


class BudgetAbort(Spec):
    """Abort when this run has spent more than ``spentAbove`` of an SLO's budget."""

    budget: Name
    spent_above: Percentage


class ProbeAbort(Spec):
    """Abort when a probe's samples over the last ``over`` meet ``expect``."""

    probe: Name
    over: Duration = timedelta(seconds=10)
    expect: Tolerance


def _abort_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        if "budget" in value:
            return "budget-abort"
        if "probe" in value:
            return "probe-abort"
        return None
    return "budget-abort" if isinstance(value, BudgetAbort) else "probe-abort"


AbortCondition = Annotated[
    Annotated[BudgetAbort, Tag("budget-abort")] | Annotated[ProbeAbort, Tag("probe-abort")],
    Discriminator(
        _abort_tag,
        custom_error_type="abort_condition",
        custom_error_message="an abort condition needs either budget+spentAbove or probe+expect",
    ),
]


class Expectations(Spec):
    """What must hold after the faults end."""

    recover_within: Duration | None = Field(
        default=None, description="Steady state must hold again this soon after the last fault."
    )
    healed_by: Name | None = Field(default=None, description="A playbook that must have fired.")
    within: Duration | None = Field(default=None, description="How soon the healer must act.")


class BudgetSpec(Spec):
    """How much of an SLO's error budget this experiment may spend per run."""

    slo: Name
    max_spend: Percentage
    reserve: Percentage = Field(
        default=0.0, description="Budget that must remain after the run; the gate keeps it."
    )


class ExperimentSpec(Spec):
    """The body of an experiment."""

    description: str = ""
    schedule: Schedule | None = None
    targets: dict[Name, TargetSpec] = Field(default_factory=dict)
    probes: dict[Name, ProbeSpec] = Field(default_factory=dict)
    slo: dict[Name, SloSpec] = Field(default_factory=dict)
    steady_state: list[SteadyStateCheck] = Field(default_factory=list)
    method: list[FaultStep] = Field(min_length=1)
    abort: list[AbortCondition] = Field(default_factory=list)
    expect: Expectations = Field(default_factory=Expectations)
    budget: BudgetSpec | None = None
    healing: Literal["allow", "pause"] | None = Field(
        default=None,
        description="Whether healer daemons may act on this run's targets while it runs:"
        " allow, or pause (they stand back). Default: allow when expect.healedBy names a"
        " playbook, pause otherwise.",
    )
    share_targets: bool = Field(
        default=False,
        description="Let runs of experiments that also set shareTargets use the same targets"
        " at the same time; otherwise a run on a target another run holds is refused.",
    )
    healing_policy: str | None = Field(
        default=None, description="File of a HealingPolicy to run in-process during the run."
    )

    @property
    def healers_may_act(self) -> bool:
        """Whether healer daemons may act on the targets while a run of this holds them."""
        if self.healing is not None:
            return self.healing == "allow"
        return self.expect.healed_by is not None


class Experiment(Spec):
    """A chaos experiment document (also the ``Experiment`` custom resource)."""

    api_version: Literal["aftershock.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["Experiment"]
    metadata: Metadata
    spec: ExperimentSpec


assert API_VERSION == "aftershock.dev/v1alpha1"
