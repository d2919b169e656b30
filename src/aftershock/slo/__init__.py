"""Error-budget arithmetic: pure functions, no I/O, no third-party imports."""

from aftershock.slo.budget import (
    GateDecision,
    budget_for,
    budget_time,
    burn_rate,
    consumed,
    error_budget,
    format_share,
    gate,
    is_good,
    remaining,
    time_to_exhaustion,
)
from aftershock.slo.stats import percentile, success_ratio, summarize
from aftershock.slo.tolerance import evaluate, sample_is_good

__all__ = [
    "GateDecision",
    "budget_for",
    "budget_time",
    "burn_rate",
    "consumed",
    "error_budget",
    "evaluate",
    "format_share",
    "gate",
    "is_good",
    "percentile",
    "remaining",
    "sample_is_good",
    "success_ratio",
    "summarize",
    "time_to_exhaustion",
]
