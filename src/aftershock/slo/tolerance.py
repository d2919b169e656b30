"""Tolerances: do a probe's samples over a window meet what a check expects?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aftershock.model.probes import Tolerance
from aftershock.model.results import CheckResult
from aftershock.model.units import Threshold
from aftershock.ports import ProbeResult
from aftershock.slo.body import body_matches, describe_match
from aftershock.slo.stats import percentile, success_ratio

__all__ = ["evaluate", "sample_is_good"]

_UPPER_BOUNDS: Final = frozenset({"<", "<="})


def _seconds(value: float) -> str:
    return f"{value:.4g}s"


def _latency_threshold(threshold: Threshold) -> str:
    # The threshold's own text may be "< 200ms"; a message that states both
    # sides in seconds reads as one comparison ("p95 0.412s is not < 0.2s").
    return f"{threshold.op} {threshold.value:g}s"


def _status_text(status: int | None) -> str:
    return "none" if status is None else str(status)


def evaluate(
    tolerance: Tolerance, samples: Sequence[ProbeResult], *, phase: str, probe: str
) -> CheckResult:
    """Check ``samples`` against every part of ``tolerance``; list each failure readably.

    Latency percentiles are over all samples (a timeout is a long wait, not a
    missing one). ``status`` and ``body`` must hold for every sample; a sample
    without a status or body fails them. No samples at all is a failure.
    """
    latencies = [s.latency for s in samples]
    p50, p95, p99 = (percentile(latencies, q) for q in (50, 95, 99))
    ratio = success_ratio(samples)
    failures: list[str] = []
    if not samples:
        failures.append("no samples")
    else:
        if tolerance.success_ratio is not None and not tolerance.success_ratio.holds(ratio or 0.0):
            failures.append(f"success ratio {ratio:.4g} is not {tolerance.success_ratio}")
        for name, threshold, observed in (
            ("p50", tolerance.p50, p50),
            ("p95", tolerance.p95, p95),
            ("p99", tolerance.p99, p99),
        ):
            if threshold is not None and observed is not None and not threshold.holds(observed):
                failures.append(
                    f"{name} {_seconds(observed)} is not {_latency_threshold(threshold)}"
                )
        if tolerance.status is not None:
            allowed = set(tolerance.status)
            outside = [s.status for s in samples if s.status not in allowed]
            if outside:
                seen = ", ".join(_status_text(x) for x in sorted(set(outside), key=_sort_key))
                wanted = ", ".join(str(code) for code in sorted(allowed))
                failures.append(
                    f"status: {len(outside)} of {len(samples)} samples not in"
                    f" {{{wanted}}} (saw {seen})"
                )
        if tolerance.body is not None:
            body = tolerance.body
            misses = sum(1 for s in samples if not body_matches(body, s.body))
            if misses:
                failures.append(
                    f"body: {misses} of {len(samples)} samples do not match {describe_match(body)}"
                )
    return CheckResult(
        phase=phase,
        probe=probe,
        ok=not failures,
        samples=len(samples),
        success_ratio=ratio,
        p50=p50,
        p95=p95,
        p99=p99,
        failures=failures,
    )


def _sort_key(status: int | None) -> int:
    return -1 if status is None else status


def sample_is_good(tolerance: Tolerance, sample: ProbeResult) -> bool:
    """Whether one sample, on its own, looks like the tolerance holds.

    Used to spot recovery sample by sample: the sample passed, its latency is
    within every upper latency bound (so the strictest one), its status is in
    the set and its body matches. Lower bounds on percentiles (``p50: "> 1ms"``)
    say nothing about a single sample and are ignored here.
    """
    if not sample.ok:
        return False
    for threshold in (tolerance.p50, tolerance.p95, tolerance.p99):
        if (
            threshold is not None
            and threshold.op in _UPPER_BOUNDS
            and not threshold.holds(sample.latency)
        ):
            return False
    if tolerance.status is not None and sample.status not in tolerance.status:
        return False
    return tolerance.body is None or body_matches(tolerance.body, sample.body)
