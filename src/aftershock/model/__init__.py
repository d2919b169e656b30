"""The domain: frozen pydantic models of every document aftershock reads.

Rule: no I/O here. Models validate at construction, are immutable, reject
unknown keys, and are the one source of the JSON Schema and the CRD schema.

The names below load with the module that defines them, on first use: a
command that needs one small module (``secrets`` for redacting log lines) does
not build the whole document model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aftershock.model.actions import ACTIONS, ActionStep, ErrorsMode
    from aftershock.model.checks import check_document
    from aftershock.model.common import API_VERSION, Metadata, Schedule, SloSpec
    from aftershock.model.documents import DOCUMENT_ADAPTER, Document
    from aftershock.model.experiment import (
        BudgetAbort,
        BudgetSpec,
        Expectations,
        Experiment,
        ExperimentSpec,
        ProbeAbort,
        SteadyStateCheck,
    )
    from aftershock.model.faults import FAULTS, FaultStep
    from aftershock.model.policy import HealingPolicy, HealingPolicySpec, Playbook
    from aftershock.model.probes import ProbeSpec, Tolerance, WatchSpec
    from aftershock.model.secrets import Secret, Text, reveal
    from aftershock.model.targets import TargetKind, TargetSpec
    from aftershock.model.units import Duration, Percentage, Threshold

__all__ = [
    "ACTIONS",
    "API_VERSION",
    "DOCUMENT_ADAPTER",
    "FAULTS",
    "ActionStep",
    "BudgetAbort",
    "BudgetSpec",
    "Document",
    "Duration",
    "ErrorsMode",
    "Expectations",
    "Experiment",
    "ExperimentSpec",
    "FaultStep",
    "HealingPolicy",
    "HealingPolicySpec",
    "Metadata",
    "Percentage",
    "Playbook",
    "ProbeAbort",
    "ProbeSpec",
    "Schedule",
    "Secret",
    "SloSpec",
    "SteadyStateCheck",
    "TargetKind",
    "TargetSpec",
    "Text",
    "Threshold",
    "Tolerance",
    "WatchSpec",
    "check_document",
    "reveal",
]

_HOME: dict[str, str] = {
    "ACTIONS": "actions",
    "API_VERSION": "common",
    "ActionStep": "actions",
    "BudgetAbort": "experiment",
    "BudgetSpec": "experiment",
    "DOCUMENT_ADAPTER": "documents",
    "Document": "documents",
    "Duration": "units",
    "ErrorsMode": "actions",
    "Expectations": "experiment",
    "Experiment": "experiment",
    "ExperimentSpec": "experiment",
    "FAULTS": "faults",
    "FaultStep": "faults",
    "HealingPolicy": "policy",
    "HealingPolicySpec": "policy",
    "Metadata": "common",
    "Percentage": "units",
    "Playbook": "policy",
    "ProbeAbort": "experiment",
    "ProbeSpec": "probes",
    "Schedule": "common",
    "Secret": "secrets",
    "SloSpec": "common",
    "SteadyStateCheck": "experiment",
    "TargetKind": "targets",
    "TargetSpec": "targets",
    "Text": "secrets",
    "Threshold": "units",
    "Tolerance": "probes",
    "WatchSpec": "probes",
    "check_document": "checks",
    "reveal": "secrets",
}
"""The module under ``aftershock.model`` that defines each name."""


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
