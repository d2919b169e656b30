"""The composition root: builds drivers, probes, journals, healers and the clock.

Entry points (``cli/``, ``operator/``, ``scheduling/``) call only this package;
everything below receives its collaborators from here. Two steps are written
once here and used by every entry point: admission (``Admission``: the kill
switch, the budget gate, target leases) and starting healers (``HealerHost``).
"""

from aftershock.runtime.admission import (
    KILL_SWITCH_ENGAGED,
    Admission,
    AdmissionCheck,
    lever_engaged,
    set_lever,
)
from aftershock.runtime.experiments import RunOutcome, new_run_id, run_experiment, run_is_live
from aftershock.runtime.healerhost import HealerHost, HealingNotes
from aftershock.runtime.healing import run_healers
from aftershock.runtime.local import local_stores
from aftershock.runtime.recovery import RecoveryAction, RecoveryReport, ensure_home, recover
from aftershock.runtime.stores import (
    BudgetLedger,
    FaultRecords,
    Lever,
    RunRegistry,
    Stores,
    TargetClaim,
    TargetLeases,
    claims_of,
)
from aftershock.runtime.wiring import build_drivers, merged_targets

__all__ = [
    "KILL_SWITCH_ENGAGED",
    "Admission",
    "AdmissionCheck",
    "BudgetLedger",
    "FaultRecords",
    "HealerHost",
    "HealingNotes",
    "Lever",
    "RecoveryAction",
    "RecoveryReport",
    "RunOutcome",
    "RunRegistry",
    "Stores",
    "TargetClaim",
    "TargetLeases",
    "build_drivers",
    "claims_of",
    "ensure_home",
    "lever_engaged",
    "local_stores",
    "merged_targets",
    "new_run_id",
    "recover",
    "run_experiment",
    "run_healers",
    "run_is_live",
    "set_lever",
]
