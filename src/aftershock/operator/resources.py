"""Custom resources in, status out: pure functions, no I/O.

A resource body from the API server is validated with the same models and
cross-reference checks as a YAML file, so ``aftershock validate`` and the
operator agree on what is valid. A run's result becomes the ``.status`` of its
``Experiment``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from aftershock.healer.status import HealerStatus
from aftershock.loading.problems import format_path, translate
from aftershock.model import DOCUMENT_ADAPTER, Experiment, HealingPolicy, check_document
from aftershock.model.results import RunResult, RunStatus
from aftershock.settings import Allowlist

__all__ = [
    "PHASES",
    "Validation",
    "errored_status",
    "healer_status",
    "invalid_status",
    "refused_status",
    "run_status",
    "valid_status",
    "validate_resource",
]

Path = tuple[str | int, ...]

PHASES: Final[Mapping[RunStatus, str]] = {
    RunStatus.PASSED: "Succeeded",
    RunStatus.FAILED: "Failed",
    RunStatus.ABORTED: "Aborted",
    RunStatus.ERRORED: "Errored",
    RunStatus.INTERRUPTED: "Aborted",
}
"""The ``.status.phase`` of an Experiment after a run, by verdict."""

_META_KEYS: Final = ("name", "namespace", "labels", "annotations")


class Validation:
    """The outcome of validating one resource: a document, or located problems."""

    def __init__(
        self, document: Experiment | HealingPolicy | None, problems: list[tuple[Path, str]]
    ) -> None:
        self.document = document
        self.problems = problems

    @property
    def message(self) -> str:
        """``spec.method[0].with.latency: required field is missing; ...``."""
        return "; ".join(
            f"{format_path(path) or '(document)'}: {msg}" for path, msg in self.problems
        )


def _document_data(body: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a resource that is an aftershock document (server fields dropped)."""
    meta = body.get("metadata") or {}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {k: meta[k] for k in _META_KEYS if meta.get(k) is not None},
        "spec": body.get("spec"),
    }


def validate_resource(
    body: Mapping[str, Any], *, kind: str, allow: Allowlist | None = None
) -> Validation:
    """Validate a resource body with the models, the cross-checks and the allowlist."""
    data = _document_data(body)
    try:
        document = DOCUMENT_ADAPTER.validate_python(data)
    except ValidationError as exc:
        return Validation(None, translate(exc, data))
    if document.kind != kind:
        return Validation(None, [(("kind",), f"expected {kind}, got {document.kind}")])
    problems: list[tuple[Path, str]] = list(check_document(document))
    if allow is not None:
        for name, target in document.spec.targets.items():
            refusal = allow.refusal(target)
            if refusal is not None:
                problems.append((("spec", "targets", name), refusal))
    if isinstance(document, Experiment) and document.spec.healing_policy is not None:
        problems.append(
            (
                ("spec", "healingPolicy"),
                (
                    "a file reference cannot be followed in the cluster; "
                    "run the policy as a HealingPolicy resource instead"
                ),
            )
        )
    return Validation(None if problems else document, problems)


def _stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else _stamp(moment)


def _condition(
    *, status: bool, reason: str, message: str, generation: int | None
) -> dict[str, Any]:
    return {
        "type": "Valid",
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": _stamp(),
        "observedGeneration": generation,
    }


def invalid_status(validation: Validation, *, generation: int | None) -> dict[str, Any]:
    """``.status`` of a resource that failed validation."""
    return {
        "phase": "Invalid",
        "nextRun": None,
        "conditions": [
            _condition(
                status=False, reason="Invalid", message=validation.message, generation=generation
            )
        ],
    }


def valid_status(
    *, phase: str, next_run: datetime | None, generation: int | None
) -> dict[str, Any]:
    """``.status`` of a valid resource that is now scheduled (or running, for a policy)."""
    return {
        "phase": phase,
        "nextRun": _iso(next_run),
        "conditions": [
            _condition(
                status=True, reason="Valid", message="the resource is valid", generation=generation
            )
        ],
    }


def healer_status(
    status: HealerStatus,
    *,
    watched_by: str,
    last_action: Mapping[str, Any] | None = None,
    last_recovery: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``.status`` fields of a HealingPolicy whose healer runs: each watch's health, the
    playbooks' attempts, the targets it stands back on and why, the last action and the
    last recovery (MTTR), and the replica watching."""
    return {
        "watchedBy": watched_by,
        "lastAction": dict(last_action) if last_action else None,
        "lastRecovery": dict(last_recovery) if last_recovery else None,
        "watches": [
            {
                "name": w.name,
                "target": w.target,
                "phase": w.phase,
                "healthy": w.healthy,
                "since": w.last_transition_at,
                "incident": w.incident,
            }
            for w in status.watches
        ],
        "playbooks": [
            {
                "name": p.name,
                "target": p.target,
                "attemptsInWindow": p.attempts_in_window,
                "maxAttempts": p.max_attempts,
                "remediating": p.remediating,
            }
            for p in status.playbooks
        ],
        "standingBack": dict(status.standing_back),
        "openIncidents": status.open_incidents,
    }


def _percent(share: float) -> str:
    return f"{share * 100:.4g}%"


def run_status(
    result: RunResult, *, next_run: datetime | None, journal: str | None = None
) -> dict[str, Any]:
    """``.status`` after a run: phase, verdict, reason, budget spent per SLO, recovery."""
    return {
        "phase": PHASES[result.status],
        "verdict": result.status.value,
        "reason": result.reason,
        "runId": result.run_id,
        "lastRun": _iso(result.finished_at or result.started_at),
        "budgetSpent": {b.slo: _percent(b.spent) for b in result.budgets},
        "recoverySeconds": (
            None if result.recovery_seconds is None else round(result.recovery_seconds, 3)
        ),
        "abortedBy": result.aborted_by,
        "journal": journal,
        "nextRun": _iso(next_run),
    }


def refused_status(reason: str, *, next_run: datetime | None) -> dict[str, Any]:
    """``.status`` when a run was refused before it started (kill switch, budget gate)."""
    return {
        "phase": "Aborted",
        "verdict": RunStatus.ABORTED.value,
        "reason": reason,
        "lastRun": _stamp(),
        "nextRun": _iso(next_run),
    }


def errored_status(reason: str, *, next_run: datetime | None) -> dict[str, Any]:
    """``.status`` when a run could not be carried out at all."""
    return {
        "phase": "Errored",
        "verdict": RunStatus.ERRORED.value,
        "reason": reason,
        "lastRun": _stamp(),
        "nextRun": _iso(next_run),
    }
