"""The composition root: builds drivers, probes, journals, healers and the clock.

Entry points (``cli/``, ``operator/``, ``scheduling/``) call only this package;
everything below receives its collaborators from here.
"""

from aftershock.runtime.experiments import (
    RunOutcome,
    lever_engaged,
    new_run_id,
    run_experiment,
    run_is_live,
    set_lever,
)
from aftershock.runtime.healing import run_healers
from aftershock.runtime.recovery import RecoveryAction, RecoveryReport, ensure_home, recover
from aftershock.runtime.wiring import build_drivers, build_healer, merged_targets, pause_file

__all__ = [
    "RecoveryAction",
    "RecoveryReport",
    "RunOutcome",
    "build_drivers",
    "build_healer",
    "ensure_home",
    "lever_engaged",
    "merged_targets",
    "new_run_id",
    "pause_file",
    "recover",
    "run_experiment",
    "run_healers",
    "run_is_live",
    "set_lever",
]
