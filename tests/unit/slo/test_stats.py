"""Percentiles (numpy's linear method) and probe summaries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aftershock.ports import ProbeResult
from aftershock.slo import percentile, success_ratio, summarize

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def sample(latency: float, *, ok: bool = True, at: float = 0.0) -> ProbeResult:
    return ProbeResult(ok=ok, latency=latency, started=at)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        # Values as numpy.percentile(values, q) gives them.
        ([1, 2, 3, 4], 50, 2.5),
        ([1, 2, 3, 4], 95, 3.85),
        ([1, 2, 3, 4], 0, 1.0),
        ([1, 2, 3, 4], 100, 4.0),
        ([4, 1, 3, 2], 25, 1.75),
        ([7], 99, 7.0),
        ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 90, 0.91),
        (list(range(1, 101)), 99, 99.01),
    ],
)
def test_percentile_matches_numpy_linear(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 50) is None


@pytest.mark.parametrize("q", [-1, 100.5, float("nan")])
def test_percentile_refuses_q_outside_0_100(q: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], q)


@given(st.lists(finite, min_size=1), st.floats(0, 100), st.floats(0, 100))
def test_percentile_is_bounded_and_monotone_in_q(values: list[float], a: float, b: float) -> None:
    low, high = sorted((a, b))
    p_low, p_high = percentile(values, low), percentile(values, high)
    assert p_low is not None
    assert p_high is not None
    assert min(values) <= p_low <= p_high <= max(values)


def test_summarize_counts_ratio_and_percentiles_over_all_samples() -> None:
    samples = [sample(0.1), sample(0.2), sample(0.3), sample(1.0, ok=False)]
    summary = summarize("checkout", samples)
    assert summary.probe == "checkout"
    assert summary.count == 4
    assert summary.success_ratio == 0.75
    assert summary.p50 == pytest.approx(0.25)
    # The timed-out sample's 1 s wait is part of the latency picture.
    assert summary.p99 == pytest.approx(0.3 + 0.7 * 0.97)


def test_summarize_of_no_samples() -> None:
    summary = summarize("checkout", [])
    assert (summary.count, summary.success_ratio, summary.p50) == (0, 0.0, None)
    assert success_ratio([]) is None
