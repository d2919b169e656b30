"""Error-budget arithmetic of a run, and the gate that refuses a run the budget cannot pay for.

Formulas (reference: healing-and-slo.md section 6, the SRE Workbook):

- error budget ``B = 1 - objective`` over window ``T``; its time equivalent is ``B * T``;
- burn rate ``BR = error_ratio / B``; time to exhaustion ``T / BR``;
- a burn at rate ``BR`` for ``w`` consumes ``BR * w / T`` of the budget;
- remaining budget ``1 - sum(spent)``;
- a run's cost on a time-slice SLO: bad time attributed to the run / ``(B * T)``,
  where bad time the system already had before the first fault is not attributed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from aftershock.model.common import SloSpec
from aftershock.model.experiment import BudgetSpec
from aftershock.model.results import BudgetResult
from aftershock.ports import ProbeResult

__all__ = [
    "GateDecision",
    "budget_for",
    "budget_time",
    "burn_rate",
    "consumed",
    "error_budget",
    "format_share",
    "gate",
    "is_good",
    "remaining",
    "time_to_exhaustion",
]

# Sums of float spends drift in the last bits (1 - 0.98 = 0.020000000000000018);
# the gate must not refuse a run over a billionth of a percent.
_EPSILON: Final = 1e-12


def error_budget(objective: float) -> float:
    """``B = 1 - objective``: the share of the window that may be bad."""
    if not 0.0 <= objective < 1.0:
        msg = f"objective must be in [0, 1), got {objective!r}"
        raise ValueError(msg)
    return 1.0 - objective


def budget_time(objective: float, window: timedelta) -> timedelta:
    """The budget as time: ``B * T`` (99.9 % over 30 d is 43.2 min)."""
    return window * error_budget(objective)


def is_good(sample: ProbeResult, latency: timedelta | None) -> bool:
    """A sample is good when it passed and, if the SLO has a latency, was no slower."""
    return sample.ok and (latency is None or sample.latency <= latency.total_seconds())


def burn_rate(error_ratio: float, objective: float) -> float:
    """``BR = error_ratio / B``; 1 spends the budget exactly over the window."""
    return error_ratio / error_budget(objective)


def consumed(rate: float, duration: timedelta, window: timedelta) -> float:
    """Share of the budget a burn at ``rate`` for ``duration`` consumes: ``BR * w / T``."""
    return rate * (duration / window)


def time_to_exhaustion(window: timedelta, rate: float) -> timedelta | None:
    """``T / BR``: how long a full budget lasts at this burn rate; ``None`` if it never runs out."""
    if rate <= 0.0:
        return None
    return window / rate


def remaining(spent_fractions: Iterable[float]) -> float:
    """``1 - sum(spent)``: the share of the budget left (negative when overspent)."""
    return 1.0 - sum(spent_fractions)


def format_share(value: float) -> str:
    """A fraction as a short percentage: 0.0124 -> ``1.24%``, 0.02 -> ``2%``."""
    return f"{round(value * 100, 2):g}%"


def budget_for(
    slo_name: str,
    slo: SloSpec,
    samples: Sequence[ProbeResult],
    *,
    every: float | timedelta,
    fault_window: tuple[float, float] | None,
    baseline_until: float | None,
    max_spend: float | None = None,
    remaining_before: float | None = None,
) -> BudgetResult:
    """The budget one run spent on one SLO, from the SLO probe's samples.

    Each sample stands for ``every`` seconds. Samples started before
    ``baseline_until`` (the first fault, monotonic seconds) give the baseline bad
    ratio: the system's own badness, which the run is not charged for. So
    ``spent = max(0, bad_time - baseline_ratio * observed_time) / (B * T)``. The
    burn rate is the error ratio of the samples in ``fault_window``
    (``[start, end)``, monotonic seconds; all samples when ``None``) over ``B``.
    """
    slice_seconds = every.total_seconds() if isinstance(every, timedelta) else float(every)
    if slice_seconds <= 0.0:
        msg = f"every must be positive, got {every!r}"
        raise ValueError(msg)
    budget = error_budget(slo.objective)
    window_seconds = slo.window.total_seconds()

    baseline = (
        [s for s in samples if s.started < baseline_until] if baseline_until is not None else []
    )
    baseline_ratio = _bad_ratio(baseline, slo.latency)

    bad = sum(1 for s in samples if not is_good(s, slo.latency))
    # Over the baseline samples themselves this correction cancels exactly, so
    # only what happened from the first fault on is charged.
    attributed = (bad - baseline_ratio * len(samples)) * slice_seconds
    spent = max(0.0, attributed) / (budget * window_seconds)

    if fault_window is None:
        during: Sequence[ProbeResult] = samples
    else:
        start, end = fault_window
        during = [s for s in samples if start <= s.started < end]
    rate = _bad_ratio(during, slo.latency) / budget

    return BudgetResult(
        slo=slo_name,
        objective=slo.objective,
        window_seconds=window_seconds,
        spent=spent,
        burn_rate=rate,
        baseline_bad_ratio=baseline_ratio,
        remaining_before=remaining_before,
        max_spend=max_spend,
    )


def _bad_ratio(samples: Sequence[ProbeResult], latency: timedelta | None) -> float:
    if not samples:
        return 0.0
    return sum(1 for s in samples if not is_good(s, latency)) / len(samples)


@dataclass(frozen=True, slots=True, kw_only=True)
class GateDecision:
    """Whether a run may start, given what is left of an SLO's budget."""

    allowed: bool
    remaining: float
    needed: float
    message: str


def gate(remaining: float, budget: BudgetSpec) -> GateDecision:
    """Allow a run only if ``remaining >= maxSpend + reserve``.

    The run may spend up to ``maxSpend`` (abort rules stop it there), and
    ``reserve`` must still be left afterwards, so both must be there now.
    """
    needed = budget.max_spend + budget.reserve
    message = (
        f"budget of SLO {budget.slo!r} has {format_share(remaining)} left;"
        f" this run may spend {format_share(budget.max_spend)}"
    )
    if budget.reserve > 0.0:
        message += f" and {format_share(budget.reserve)} must remain"
    return GateDecision(
        allowed=remaining + _EPSILON >= needed,
        remaining=remaining,
        needed=needed,
        message=message,
    )
