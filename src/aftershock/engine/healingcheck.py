"""Did the healer fire as the experiment expected (``expect.healedBy``, ``expect.within``)?

A healer's first action is timed from the last fault injected before it (not from
the start of the method), so a playbook that reacts to the second fault of a
method is measured against that fault.
"""

from __future__ import annotations

from collections.abc import Iterable

from aftershock.engine.context import HealingObserver
from aftershock.model.experiment import Expectations
from aftershock.model.results import HealingResult

__all__ = ["judge_healing"]


def judge_healing(
    observer: HealingObserver,
    expect: Expectations,
    *,
    method_started: float,
    t0: float,
    injected_at: Iterable[float | None],
) -> tuple[HealingResult, list[str]]:
    """What the healer did, timed from the fault that preceded it; and what was unmet.

    ``method_started`` is the method's start on the run's monotonic clock, ``t0``
    the run's; ``injected_at`` the faults' injection times in seconds since ``t0``.
    """
    expected = expect.healed_by
    raw = observer.healing_result(method_started, expected)
    if not raw.fired or raw.first_action_after is None:
        return raw, [f"healer playbook {expected!r} did not fire"] if expected else []
    method_t = method_started - t0
    acted_t = method_t + raw.first_action_after
    injected = [t for t in injected_at if t is not None and t <= acted_t]
    reference = max(injected, default=method_t)
    healthy = raw.healthy_after
    timed = raw.model_copy(
        update={
            "first_action_after": acted_t - reference,
            "healthy_after": None if healthy is None else method_t + healthy - reference,
        }
    )
    within = expect.within
    if expected is not None and within is not None:
        took = acted_t - reference
        if took > within.total_seconds():
            limit = within.total_seconds()
            return timed, [
                f"healer playbook {expected!r} acted {took:.2f}s after the fault (> {limit:g}s)"
            ]
    return timed, []
