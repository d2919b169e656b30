"""``judge_healing``: the healer's first action is timed from the fault that preceded it."""

from __future__ import annotations

from datetime import timedelta

from aftershock.engine.healingcheck import judge_healing
from aftershock.model.experiment import Expectations
from aftershock.model.results import HealingResult


class Observed:
    """A ``HealingObserver`` that saw what it is given; it records what it was asked."""

    def __init__(self, result: HealingResult) -> None:
        self.result = result
        self.asked: list[tuple[float, str | None]] = []

    def healing_result(self, since: float, expected: str | None) -> HealingResult:
        self.asked.append((since, expected))
        return self.result


def expect(healed_by: str | None = "revive", within: float | None = None) -> Expectations:
    return Expectations(
        healed_by=healed_by, within=None if within is None else timedelta(seconds=within)
    )


def test_a_playbook_that_did_not_fire_is_unmet_only_when_expected() -> None:
    observer = Observed(HealingResult(expected_playbook="revive"))
    result, unmet = judge_healing(
        observer, expect(), method_started=110.0, t0=100.0, injected_at=[10.0]
    )
    assert observer.asked == [(110.0, "revive")]
    assert result.fired is False
    assert unmet == ["healer playbook 'revive' did not fire"]
    _, unmet = judge_healing(
        Observed(HealingResult()), expect(None), method_started=110.0, t0=100.0, injected_at=[]
    )
    assert unmet == []


def test_the_action_is_timed_from_the_last_fault_before_it() -> None:
    # method at t=10 s; faults at 10 s and 20 s; the healer acted 14 s into the method (t=24 s)
    # and the endpoint was healthy 16 s into it (t=26 s): 4 s and 6 s after the second fault.
    observer = Observed(
        HealingResult(fired=True, playbook="revive", first_action_after=14.0, healthy_after=16.0)
    )
    result, unmet = judge_healing(
        observer, expect(within=5), method_started=110.0, t0=100.0, injected_at=[10.0, 20.0, 30.0]
    )
    assert result.first_action_after == 4.0
    assert result.healthy_after == 6.0
    assert unmet == []


def test_an_action_later_than_within_is_unmet() -> None:
    observer = Observed(HealingResult(fired=True, playbook="revive", first_action_after=8.0))
    result, unmet = judge_healing(
        observer, expect(within=5), method_started=110.0, t0=100.0, injected_at=[10.0, None]
    )
    assert result.first_action_after == 8.0
    assert result.healthy_after is None
    assert unmet == ["healer playbook 'revive' acted 8.00s after the fault (> 5s)"]
