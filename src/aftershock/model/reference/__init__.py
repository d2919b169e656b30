"""Reference docs of the YAML language, generated from the model as Markdown pages.

Rule: pure, like the rest of ``model/``: pages are returned as strings, never
written here (``aftershock schema --docs DIR`` writes them). The output is
deterministic, so a test can regenerate the pages and compare them with the
checked-in ``docs/reference``. Field names, types, defaults and limits come from
the models and the catalogs; only the prose and the examples are written here,
and a catalog entry without an example fails the generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aftershock.model import actions as a
from aftershock.model import faults as f
from aftershock.model.reference.catalogs import actions_page, faults_page, index_page
from aftershock.model.reference.documents import (
    checks_page,
    experiment_page,
    healing_policy_page,
    probes_page,
    targets_page,
)

__all__ = ["reference_docs"]


def reference_docs(
    faults: Sequence[f.FaultType[Any]] = f.CATALOG,
    actions: Sequence[a.ActionType[Any]] = a.CATALOG,
) -> dict[str, str]:
    """Every page of the reference: file name → Markdown, in a fixed order."""
    return {
        "index.md": index_page(faults, actions),
        "experiment.md": experiment_page(),
        "healing-policy.md": healing_policy_page(),
        "targets.md": targets_page(faults, actions),
        "faults.md": faults_page(faults),
        "actions.md": actions_page(actions),
        "probes.md": probes_page(),
        "checks.md": checks_page(),
    }
