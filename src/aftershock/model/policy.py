"""The ``HealingPolicy`` kind: health watches and remediation playbooks with limits."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, Self

from pydantic import Field, StrictBool, StrictFloat, StrictInt, model_validator

from aftershock.model.actions import ActionStep
from aftershock.model.base import Name, Spec
from aftershock.model.common import Metadata
from aftershock.model.probes import WatchSpec
from aftershock.model.secrets import HttpUrlText, Text
from aftershock.model.targets import TargetSpec
from aftershock.model.units import Duration

__all__ = [
    "Backoff",
    "DisruptionBudget",
    "Escalation",
    "HealingPolicy",
    "HealingPolicySpec",
    "Limits",
    "Playbook",
    "When",
]


class Backoff(Spec):
    """Exponential backoff between attempts: initial x factor^n, capped, with jitter."""

    initial: Duration = timedelta(seconds=5)
    factor: StrictFloat = Field(default=2.0, ge=1.0, le=100.0)
    max: Duration = timedelta(minutes=5)
    jitter: StrictFloat = Field(default=0.1, ge=0.0, le=1.0, description="Share of each delay.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max < self.initial:
            msg = "max must not be shorter than initial"
            raise ValueError(msg)
        return self


class Limits(Spec):
    """How often a playbook may act."""

    max_attempts: StrictInt = Field(default=3, ge=1, le=1000, description="Per cooldown period.")
    backoff: Backoff = Field(default_factory=Backoff)
    cooldown: Duration = timedelta(minutes=10)


class When(Spec):
    """The condition that starts a playbook."""

    unhealthy: Name
    for_: Duration = Field(default=timedelta(0), alias="for")


class Playbook(Spec):
    """Ordered remediation steps for one condition."""

    name: Name
    when: When
    steps: list[ActionStep] = Field(min_length=1)
    limits: Limits = Field(default_factory=Limits)
    on_failure: Literal["escalate", "retry", "stop"] = "escalate"


class Webhook(Spec):
    """Where escalations are posted."""

    url: HttpUrlText
    headers: dict[str, Text] = Field(default_factory=dict)
    timeout: Duration = timedelta(seconds=5)


class Escalation(Spec):
    """What happens when healing gives up."""

    webhook: Webhook | None = None
    command: list[str] | None = None


class DisruptionBudget(Spec):
    """At most ``max`` remediations per ``per`` across every target of the policy."""

    max: StrictInt = Field(default=5, ge=1, le=10_000)
    per: Duration = timedelta(hours=1)


class Breaker(Spec):
    """Opens after ``failures`` consecutive failed remediations; half-opens after ``reset``."""

    failures: StrictInt = Field(default=3, ge=1, le=1000)
    reset: Duration = timedelta(minutes=30)


class HealingPolicySpec(Spec):
    """The body of a healing policy."""

    targets: dict[Name, TargetSpec] = Field(default_factory=dict)
    watch: dict[Name, WatchSpec] = Field(min_length=1)
    playbooks: list[Playbook] = Field(min_length=1)
    escalate: Escalation | None = None
    disruption_budget: DisruptionBudget = Field(default_factory=DisruptionBudget)
    breaker: Breaker = Field(default_factory=Breaker)
    dry_run: StrictBool = False


class HealingPolicy(Spec):
    """A healing policy document (also the ``HealingPolicy`` custom resource)."""

    api_version: Literal["aftershock.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["HealingPolicy"]
    metadata: Metadata
    spec: HealingPolicySpec
