"""Error-budget arithmetic: the reference's worked examples, the gate, and properties."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aftershock.model.common import SloSpec
from aftershock.model.experiment import BudgetSpec
from aftershock.ports import ProbeResult
from aftershock.slo import (
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

DAYS_28 = 28 * 86400


def slo(**fields: Any) -> SloSpec:
    return SloSpec.model_validate({"probe": "checkout", "objective": "99.9%", **fields})


def timeline(pattern: str, *, every: float = 1.0, latency: float = 0.05) -> list[ProbeResult]:
    """One sample per character: ``.`` good, ``x`` failed, ``s`` passed but slow (1 s)."""
    return [
        ProbeResult(ok=c != "x", latency=1.0 if c == "s" else latency, started=i * every)
        for i, c in enumerate(pattern)
    ]


# ---------------------------------------------------------------- formulas


def test_budget_as_time() -> None:
    assert budget_time(0.999, timedelta(days=30)) == timedelta(minutes=43.2)
    ms = timedelta(milliseconds=1)
    assert budget_time(0.9995, timedelta(days=30)) == pytest.approx(timedelta(minutes=21.6), abs=ms)
    assert budget_time(0.995, timedelta(days=30)) == pytest.approx(timedelta(hours=3.6), abs=ms)
    assert budget_time(0.99, timedelta(days=30)) == pytest.approx(timedelta(hours=7.2), abs=ms)


def test_burn_rate_and_what_it_consumes() -> None:
    # SRE Workbook table 5-8: 14.4x for 1 h spends 2 % of a 30-day budget.
    assert consumed(14.4, timedelta(hours=1), timedelta(days=30)) == pytest.approx(0.02)
    assert burn_rate(0.0144, 0.999) == pytest.approx(14.4)
    assert burn_rate(0.001, 0.999) == pytest.approx(1.0)


def test_time_to_exhaustion_is_window_over_burn_rate() -> None:
    # 30 d / 14.4 = 50 h, not "2 hours".
    exhausted = time_to_exhaustion(timedelta(days=30), 14.4)
    assert exhausted == pytest.approx(timedelta(hours=50), abs=timedelta(milliseconds=1))
    assert time_to_exhaustion(timedelta(days=30), 0.0) is None


def test_error_budget_refuses_impossible_objectives() -> None:
    assert error_budget(0.999) == pytest.approx(0.001)
    with pytest.raises(ValueError, match="objective"):
        error_budget(1.0)


def test_remaining_is_one_minus_the_sum() -> None:
    assert remaining([]) == 1.0
    assert remaining([0.25, 0.5]) == 0.25
    assert remaining([0.7, 0.5]) == pytest.approx(-0.2)


def test_a_sample_is_good_when_ok_and_fast_enough() -> None:
    fast, slow, failed = timeline(".sx")
    assert is_good(fast, None)
    assert is_good(slow, None)
    assert not is_good(slow, timedelta(milliseconds=250))
    assert is_good(ProbeResult(ok=True, latency=0.25, started=0), timedelta(milliseconds=250))
    assert not is_good(failed, None)


# ---------------------------------------------------------------- a run's spend


def test_thirty_second_outage_on_28_days() -> None:
    samples = timeline("." * 60 + "x" * 30 + "." * 30)
    result = budget_for(
        "checkout-availability",
        slo(window="28d"),
        samples,
        every=1.0,
        fault_window=(60.0, 90.0),
        baseline_until=60.0,
        max_spend=0.02,
        remaining_before=0.9,
    )
    # 30 / (0.001 x 2 419 200) = 1.24 %
    assert result.spent == pytest.approx(30 / (0.001 * DAYS_28))
    assert format_share(result.spent) == "1.24%"
    assert result.burn_rate == pytest.approx(1000.0)
    assert result.baseline_bad_ratio == 0.0
    assert result.window_seconds == DAYS_28
    assert result.objective == pytest.approx(0.999)
    assert (result.slo, result.max_spend, result.remaining_before) == (
        "checkout-availability",
        0.02,
        0.9,
    )


def test_each_sample_stands_for_its_period() -> None:
    samples = timeline("." * 10 + "x" * 15, every=2.0)
    result = budget_for(
        "s", slo(), samples, every=timedelta(seconds=2), fault_window=None, baseline_until=20.0
    )
    assert result.spent == pytest.approx(30 / (0.001 * DAYS_28))


def test_baseline_correction_subtracts_errors_the_system_already_had() -> None:
    # 10 % bad before the first fault; 30 % bad after it. Only the excess is charged.
    before = "x" + "." * 9
    after = "xxx" + "." * 7
    samples = timeline(before * 10 + after * 10)
    corrected = budget_for(
        "s", slo(), samples, every=1.0, fault_window=(100.0, 200.0), baseline_until=100.0
    )
    raw = budget_for(
        "s", slo(), samples, every=1.0, fault_window=(100.0, 200.0), baseline_until=None
    )
    assert corrected.baseline_bad_ratio == pytest.approx(0.1)
    assert corrected.spent == pytest.approx(20 / (0.001 * DAYS_28))
    assert raw.spent == pytest.approx(40 / (0.001 * DAYS_28))
    # The burn rate is the plain error ratio during the faults over B.
    assert corrected.burn_rate == pytest.approx(0.3 / 0.001)


def test_a_run_better_than_its_baseline_spends_nothing() -> None:
    samples = timeline("x." * 10 + "." * 20)
    result = budget_for("s", slo(), samples, every=1.0, fault_window=None, baseline_until=20.0)
    assert result.spent == 0.0


def test_slow_samples_are_bad_when_the_slo_has_a_latency() -> None:
    samples = timeline("." * 5 + "s" * 5)
    with_latency = budget_for(
        "s", slo(latency="250ms"), samples, every=1.0, fault_window=(5.0, 10.0), baseline_until=5.0
    )
    without = budget_for(
        "s", slo(), samples, every=1.0, fault_window=(5.0, 10.0), baseline_until=5.0
    )
    assert with_latency.spent == pytest.approx(5 / (0.001 * DAYS_28))
    assert with_latency.burn_rate == pytest.approx(1000.0)
    assert without.spent == 0.0


def test_no_samples_spend_nothing_and_every_must_be_positive() -> None:
    result = budget_for("s", slo(), [], every=1.0, fault_window=(0.0, 1.0), baseline_until=0.0)
    assert (result.spent, result.burn_rate, result.baseline_bad_ratio) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="every"):
        budget_for("s", slo(), [], every=0.0, fault_window=None, baseline_until=None)


# ---------------------------------------------------------------- the gate


def budget(**fields: Any) -> BudgetSpec:
    return BudgetSpec.model_validate({"slo": "checkout-availability", **fields})


def test_gate_refuses_when_the_budget_cannot_pay_for_the_run() -> None:
    decision = gate(0.012, budget(maxSpend="2%", reserve="0.5%"))
    assert not decision.allowed
    assert decision.needed == pytest.approx(0.025)
    assert decision.remaining == 0.012
    assert decision.message == (
        "budget of SLO 'checkout-availability' has 1.2% left;"
        " this run may spend 2% and 0.5% must remain"
    )


def test_gate_allows_when_spend_and_reserve_fit() -> None:
    decision = gate(0.5, budget(maxSpend="2%", reserve="10%"))
    assert decision.allowed
    assert gate(0.02, budget(maxSpend="2%")).allowed
    assert gate(0.12, budget(maxSpend="2%", reserve="10%")).allowed
    assert not gate(0.119, budget(maxSpend="2%", reserve="10%")).allowed


def test_gate_tolerates_float_noise_in_summed_spend() -> None:
    left = remaining([0.5, 0.48])  # 0.020000000000000018 or 0.01999...: either way "2%"
    assert gate(left, budget(maxSpend="2%")).allowed


def test_gate_message_without_reserve() -> None:
    message = gate(-0.1, budget(maxSpend="2%")).message
    assert message == "budget of SLO 'checkout-availability' has -10% left; this run may spend 2%"


# ---------------------------------------------------------------- properties

patterns = st.text(alphabet=".xs", max_size=80)


@given(patterns, st.integers(0, 80), st.sampled_from([None, "250ms"]))
def test_spend_is_never_negative(pattern: str, cut: int, latency: str | None) -> None:
    result = budget_for(
        "s",
        slo(latency=latency),
        timeline(pattern),
        every=1.0,
        fault_window=(float(cut), float(len(pattern))),
        baseline_until=float(cut),
    )
    assert result.spent >= 0.0
    assert result.burn_rate >= 0.0


@given(patterns, st.integers(0, 80), st.data())
def test_spend_is_monotone_in_bad_samples(pattern: str, cut: int, data: st.DataObject) -> None:
    # Turning any sample from the first fault on bad never lowers the spend.
    # (Before it, a bad sample raises the baseline instead: that is the point.)
    cut = min(cut, len(pattern))
    good_after = [i for i, c in enumerate(pattern) if c == "." and i >= cut]
    if not good_after:
        return
    flip = data.draw(st.sampled_from(good_after))
    worse = pattern[:flip] + "x" + pattern[flip + 1 :]

    def spent(p: str) -> float:
        return budget_for(
            "s", slo(), timeline(p), every=1.0, fault_window=None, baseline_until=float(cut)
        ).spent

    assert spent(worse) >= spent(pattern)


@given(patterns, st.integers(0, 80))
def test_baseline_correction_never_increases_spend(pattern: str, cut: int) -> None:
    samples = timeline(pattern)

    def spent(baseline_until: float | None) -> float:
        return budget_for(
            "s", slo(), samples, every=1.0, fault_window=None, baseline_until=baseline_until
        ).spent

    assert spent(float(cut)) <= spent(None) + 1e-15


@given(st.lists(st.floats(0, 1), max_size=20))
def test_remaining_adds_up(spends: list[float]) -> None:
    assert remaining(spends) == pytest.approx(1 - sum(spends))
