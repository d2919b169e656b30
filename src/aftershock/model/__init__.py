"""The domain: frozen pydantic models of every document aftershock reads.

Rule: no I/O here. Models validate at construction, are immutable, reject
unknown keys, and are the one source of the JSON Schema and the CRD schema.
"""

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
