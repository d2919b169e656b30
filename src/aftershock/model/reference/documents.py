"""The pages on the two kinds and their parts: experiment, policy, targets, probes, checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from aftershock.model.actions import ActionType
from aftershock.model.common import Blackout, Metadata, Schedule, SloSpec
from aftershock.model.experiment import (
    BudgetAbort,
    BudgetSpec,
    Expectations,
    Experiment,
    ExperimentSpec,
    ProbeAbort,
    SteadyStateCheck,
)
from aftershock.model.faults import FaultType
from aftershock.model.policy import (
    Backoff,
    Breaker,
    DisruptionBudget,
    Escalation,
    HealingPolicy,
    HealingPolicySpec,
    Limits,
    Playbook,
    Webhook,
    When,
)
from aftershock.model.probes import (
    BodyMatch,
    CommandProbe,
    HttpProbe,
    ProbeSpec,
    PrometheusProbe,
    TcpProbe,
    Tolerance,
    WatchSpec,
)
from aftershock.model.reference import examples as ex
from aftershock.model.reference.sections import GENERATED, code, section
from aftershock.model.targets import (
    DockerTarget,
    KubernetesTarget,
    ProcessTarget,
    TargetKind,
    TargetSpec,
    ToxiproxyTarget,
)

__all__ = [
    "checks_page",
    "experiment_page",
    "healing_policy_page",
    "probes_page",
    "targets_page",
]


def experiment_page() -> str:
    """``experiment.md``: the ``Experiment`` kind and its spec."""
    return "\n".join(
        [
            GENERATED,
            "# Experiment\n",
            (
                "A chaos experiment: steady state, a method of faults on a timeline, abort rules "
                "and expectations, booked against SLO error budgets.\n"
            ),
            code(ex.EXPERIMENT_EXAMPLE),
            section(Experiment, "Experiment"),
            section(
                ExperimentSpec,
                "spec",
                intro="Targets are described in [targets](targets.md), probes in "
                "[probes](probes.md), method steps in [faults](faults.md), steady state, "
                "abort conditions and expectations in [checks](checks.md).",
            ),
            section(Metadata, "metadata"),
            section(SloSpec, "slo"),
            section(Schedule, "schedule"),
            section(Blackout, "blackout", level=3),
            section(BudgetSpec, "budget"),
        ]
    )


def healing_policy_page() -> str:
    """``healing-policy.md``: the ``HealingPolicy`` kind and its spec."""
    return "\n".join(
        [
            GENERATED,
            "# HealingPolicy\n",
            (
                "A healing policy: health watches with hysteresis and remediation playbooks with "
                "limits, backoff, a circuit breaker and escalation.\n"
            ),
            code(ex.POLICY_EXAMPLE),
            section(HealingPolicy, "HealingPolicy"),
            section(
                HealingPolicySpec,
                "spec",
                intro="Watches are [probes](probes.md#watch) with hysteresis; playbook steps "
                "are [actions](actions.md).",
            ),
            section(Playbook, "playbooks"),
            section(When, "when", level=3),
            section(Limits, "limits", level=3),
            section(Backoff, "backoff", level=4),
            section(Escalation, "escalate"),
            section(Webhook, "webhook", level=3),
            section(DisruptionBudget, "disruptionBudget"),
            section(Breaker, "breaker"),
        ]
    )


_KIND_MODELS: dict[TargetKind, type[BaseModel]] = {
    TargetKind.TOXIPROXY: ToxiproxyTarget,
    TargetKind.DOCKER: DockerTarget,
    TargetKind.KUBERNETES: KubernetesTarget,
    TargetKind.PROCESS: ProcessTarget,
}


def _names(entries: Sequence[FaultType[Any] | ActionType[Any]], page: str) -> str:
    return ", ".join(f"[`{e.name}`]({page}#{e.name})" for e in entries) or "none"


def targets_page(faults: Sequence[FaultType[Any]], actions: Sequence[ActionType[Any]]) -> str:
    """``targets.md``: what faults and actions act on, one section per target kind."""
    parts = [
        GENERATED,
        "# Targets\n",
        (
            "A target names what a fault or a healing action acts on. Both kinds declare "
            "targets by name under `spec.targets`; steps refer to them by that name.\n"
        ),
        section(TargetSpec, "target"),
    ]
    for kind, model in _KIND_MODELS.items():
        of_kind = [f for f in faults if f.kind is kind]
        acts = [a for a in actions if a.kind is kind]
        intro = (
            f"Faults: {_names(of_kind, 'faults.md')}.\n\n"
            f"Healing actions: {_names(acts, 'actions.md')}."
        )
        example = ex.target_example(kind, of_kind)
        parts.append(section(model, f"`{kind.value}`", intro=intro, example=example))
    return "\n".join(parts)


def probes_page() -> str:
    """``probes.md``: how health is sampled, and the watches of a healing policy."""
    kinds = (
        (HttpProbe, "http"),
        (TcpProbe, "tcp"),
        (CommandProbe, "command"),
        (PrometheusProbe, "prometheus"),
    )
    parts = [
        GENERATED,
        "# Probes\n",
        (
            "Probes sample health: an experiment's `spec.probes` feed its steady-state checks, "
            "SLOs and abort conditions; a healing policy's `spec.watch` entries are probes with "
            "hysteresis. Each sample succeeds or fails and has a latency.\n"
        ),
        section(ProbeSpec, "probe"),
        section(
            WatchSpec,
            "watch",
            intro="Every field of a [probe](#probe), and:",
            skip=ProbeSpec.model_fields,
            example=ex.WATCH_EXAMPLE,
        ),
    ]
    for model, kind in kinds:
        parts.append(section(model, f"`{kind}`", example=ex.PROBE_EXAMPLES[kind]))
    return "\n".join(parts)


def checks_page() -> str:
    """``checks.md``: steady-state checks, tolerances, abort conditions, expectations."""
    return "\n".join(
        [
            GENERATED,
            "# Checks\n",
            (
                "What an experiment asserts: the steady state before and after the method "
                "(`spec.steadyState`), when to stop early (`spec.abort`) and what must hold after "
                "the faults end (`spec.expect`). A ratio comparison is on the share of successful "
                "samples in the window, a duration comparison on a percentile of their latency.\n"
            ),
            section(SteadyStateCheck, "steadyState", example=ex.CHECK_EXAMPLES["steady-state"]),
            section(Tolerance, "expect (tolerance)", level=3),
            section(BodyMatch, "body", level=4),
            "## abort\n\nEach entry is one of two conditions, told apart by its keys.\n",
            code(ex.CHECK_EXAMPLES["abort"]),
            section(BudgetAbort, "budget abort", level=3),
            section(ProbeAbort, "probe abort", level=3),
            section(Expectations, "expect", example=ex.CHECK_EXAMPLES["expect"]),
        ]
    )
