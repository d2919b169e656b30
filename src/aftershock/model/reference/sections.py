"""Where each model is documented, and how one section of a page is written."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Final

from pydantic import BaseModel

from aftershock.model.actions import ActionStepBase
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
from aftershock.model.faults import FaultStepBase
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
from aftershock.model.reference.fields import Links, field_rows, table
from aftershock.model.targets import (
    DockerTarget,
    KubernetesTarget,
    ProcessTarget,
    TargetSpec,
    ToxiproxyTarget,
)

__all__ = ["GENERATED", "LINKS", "code", "describe", "section"]

GENERATED: Final = (
    "<!-- Generated from src/aftershock/model by `aftershock schema --docs docs/reference`;"
    " do not edit. -->\n"
)

_PLACES: Final[tuple[tuple[type[BaseModel], str, str, str], ...]] = (
    (Experiment, "experiment.md", "experiment", "Experiment"),
    (ExperimentSpec, "experiment.md", "spec", "experiment spec"),
    (Metadata, "experiment.md", "metadata", "metadata"),
    (SloSpec, "experiment.md", "slo", "SLO"),
    (Schedule, "experiment.md", "schedule", "schedule"),
    (Blackout, "experiment.md", "blackout", "blackout"),
    (BudgetSpec, "experiment.md", "budget", "budget"),
    (TargetSpec, "targets.md", "target", "target"),
    (ToxiproxyTarget, "targets.md", "toxiproxy", "toxiproxy target"),
    (DockerTarget, "targets.md", "docker", "docker target"),
    (KubernetesTarget, "targets.md", "kubernetes", "kubernetes target"),
    (ProcessTarget, "targets.md", "process", "process target"),
    (FaultStepBase, "faults.md", "steps", "fault step"),
    (ActionStepBase, "actions.md", "steps", "action step"),
    (ProbeSpec, "probes.md", "probe", "probe"),
    (WatchSpec, "probes.md", "watch", "watch"),
    (HttpProbe, "probes.md", "http", "http probe"),
    (TcpProbe, "probes.md", "tcp", "tcp probe"),
    (CommandProbe, "probes.md", "command", "command probe"),
    (PrometheusProbe, "probes.md", "prometheus", "prometheus probe"),
    (SteadyStateCheck, "checks.md", "steady-state", "steady-state check"),
    (Tolerance, "checks.md", "tolerance", "tolerance"),
    (BodyMatch, "checks.md", "body", "body match"),
    (BudgetAbort, "checks.md", "budget-abort", "budget abort"),
    (ProbeAbort, "checks.md", "probe-abort", "probe abort"),
    (Expectations, "checks.md", "expect", "expectations"),
    (HealingPolicy, "healing-policy.md", "healingpolicy", "HealingPolicy"),
    (HealingPolicySpec, "healing-policy.md", "spec", "healing policy spec"),
    (Playbook, "healing-policy.md", "playbook", "playbook"),
    (When, "healing-policy.md", "when", "when"),
    (Limits, "healing-policy.md", "limits", "limits"),
    (Backoff, "healing-policy.md", "backoff", "backoff"),
    (Escalation, "healing-policy.md", "escalate", "escalation"),
    (Webhook, "healing-policy.md", "webhook", "webhook"),
    (DisruptionBudget, "healing-policy.md", "disruption-budget", "disruption budget"),
    (Breaker, "healing-policy.md", "breaker", "breaker"),
)

LINKS: Final[Links] = {model: (f"{page}#{anchor}", title) for model, page, anchor, title in _PLACES}
"""Every documented model: its section and the words of a link to it."""

ANCHORS: Final[Mapping[type[BaseModel], str]] = {model: a for model, _, a, _ in _PLACES}


def describe(obj: object) -> str:
    """A docstring as Markdown: dedented, ``rst literals`` as `code`."""
    doc = inspect.cleandoc(getattr(obj, "__doc__", None) or "")
    return doc.replace("``", "`")


def code(text: str) -> str:
    """A fenced YAML block."""
    return f"```yaml\n{text}```\n"


def section(
    model: type[BaseModel],
    title: str,
    *,
    level: int = 2,
    intro: str = "",
    example: str = "",
    skip: Iterable[str] = (),
    types_of: Mapping[str, str] | None = None,
    defaults_of: Mapping[str, str] | None = None,
) -> str:
    """A section on ``model``: anchor, title, docstring, ``intro``, field table, ``example``."""
    parts = [f'<a id="{ANCHORS[model]}"></a>\n\n{"#" * level} {title}\n', describe(model) + "\n"]
    if intro:
        parts.append(intro.strip() + "\n")
    rows = field_rows(model, LINKS, skip=skip, types_of=types_of, defaults_of=defaults_of)
    if rows:
        parts.append(table(rows))
    if example:
        parts.append(code(example))
    return "\n".join(parts)
