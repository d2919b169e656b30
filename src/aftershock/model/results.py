"""Results of a run: the verdict and the figures behind it, as written to journals and reports."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BudgetResult",
    "CheckResult",
    "FaultRecord",
    "HealingResult",
    "ProbeSummary",
    "RunResult",
    "RunStatus",
]


class RunStatus(StrEnum):
    """How a run ended; each maps to an exit code of ``aftershock run``."""

    PASSED = "passed"
    FAILED = "failed"
    ABORTED = "aborted"
    ERRORED = "errored"
    INTERRUPTED = "interrupted"

    @property
    def exit_code(self) -> int:
        """0 passed, 1 failed, 3 aborted, 4 errored, 130 interrupted."""
        return {"passed": 0, "failed": 1, "aborted": 3, "errored": 4, "interrupted": 130}[
            self.value
        ]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CheckResult(_Record):
    """One steady-state check evaluated over its window."""

    phase: str
    probe: str
    ok: bool
    samples: int
    success_ratio: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    failures: list[str] = Field(default_factory=list)


class FaultRecord(_Record):
    """One fault's life: when it was injected, reverted, and the revert verified."""

    step: str
    fault: str
    target: str
    resources: list[str] = Field(default_factory=list)
    injected_at: datetime | None = None
    reverted_at: datetime | None = None
    verified_at: datetime | None = None
    error: str | None = None


class ProbeSummary(_Record):
    """All samples of one probe during the run."""

    probe: str
    count: int
    success_ratio: float
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


class BudgetResult(_Record):
    """Error budget spent by this run on one SLO."""

    slo: str
    objective: float
    window_seconds: float
    spent: float = Field(description="Share of the whole window's budget this run spent (0..1).")
    burn_rate: float = Field(description="Error ratio during the fault window / allowed ratio.")
    baseline_bad_ratio: float
    remaining_before: float | None = None
    max_spend: float | None = None


class HealingResult(_Record):
    """Whether the expected healer fired, and how fast.

    In a run's result, times are seconds after the injection of the fault that
    preceded the healer's first action.
    """

    expected_playbook: str | None = None
    fired: bool = False
    playbook: str | None = None
    first_action_after: float | None = None
    healthy_after: float | None = None


class RunResult(_Record):
    """The verdict of one run and everything it rests on."""

    run_id: str
    experiment: str
    status: RunStatus
    reason: str = ""
    started_at: datetime
    finished_at: datetime | None = None
    method_started_at: datetime | None = None
    method_ended_at: datetime | None = None
    forced: bool = False
    dry_run: bool = False
    seed: int | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    faults: list[FaultRecord] = Field(default_factory=list)
    probes: list[ProbeSummary] = Field(default_factory=list)
    budgets: list[BudgetResult] = Field(default_factory=list)
    recovery_seconds: float | None = None
    recover_within: float | None = None
    healing: HealingResult | None = None
    aborted_by: str | None = None
    notes: list[str] = Field(default_factory=list)
