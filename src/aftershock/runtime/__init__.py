"""The composition root: builds drivers, probes, journals, healers and the clock.

Entry points (``cli/``, ``operator/``, ``scheduling/``) call only this package;
everything below receives its collaborators from here. Two steps are written
once here and used by every entry point: admission (``Admission``: the kill
switch, the budget gate, target leases) and starting healers (``HealerHost``).
"""

from typing import TYPE_CHECKING, Any

from aftershock.runtime.admission import (
    KILL_SWITCH_ENGAGED,
    Admission,
    AdmissionCheck,
    lever_engaged,
    set_lever,
)
from aftershock.runtime.experiments import RunOutcome, new_run_id, run_experiment, run_is_live
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

if TYPE_CHECKING:
    from aftershock.runtime.healerhost import HealerHost
    from aftershock.runtime.healing import run_healers
    from aftershock.runtime.healingnotes import HealingNotes

_HEALING = {
    "HealerHost": "aftershock.runtime.healerhost",
    "HealingNotes": "aftershock.runtime.healingnotes",
    "run_healers": "aftershock.runtime.healing",
}


def __getattr__(name: str) -> Any:
    """The healer host is loaded when first asked for: a run without a HealingPolicy
    never imports the healer, the health server or the metrics."""
    if name in _HEALING:
        import importlib

        value = getattr(importlib.import_module(_HEALING[name]), name)
        globals()[name] = value
        return value
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


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
