"""Percentiles and per-probe summaries of samples."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from aftershock.model.results import ProbeSummary
from aftershock.ports import ProbeResult

__all__ = ["percentile", "success_ratio", "summarize"]


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) of ``values``; ``None`` when there are none.

    Linear interpolation between the two nearest ranks, as numpy's default
    (``method="linear"``): rank ``(n - 1) * q / 100``.
    """
    if not 0.0 <= q <= 100.0 or math.isnan(q):
        msg = f"percentile q must be between 0 and 100, got {q!r}"
        raise ValueError(msg)
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    # a + (b - a) * t, not a * (1 - t) + b * t: exact when a == b and monotone in t.
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def success_ratio(samples: Sequence[ProbeResult]) -> float | None:
    """The share of samples that passed; ``None`` when there are none."""
    if not samples:
        return None
    return sum(1 for s in samples if s.ok) / len(samples)


def summarize(name: str, samples: Sequence[ProbeResult]) -> ProbeSummary:
    """Count, success ratio and latency percentiles (seconds) of one probe's samples.

    Latencies of failed samples count too: a request that timed out after 1 s
    was a 1 s wait for whoever made it. No samples gives a success ratio of 0.
    """
    latencies = [s.latency for s in samples]
    return ProbeSummary(
        probe=name,
        count=len(samples),
        success_ratio=success_ratio(samples) or 0.0,
        p50=percentile(latencies, 50),
        p95=percentile(latencies, 95),
        p99=percentile(latencies, 99),
    )
