"""A run's verdict as its report shows it: the journaled one, or one synthesized.

``read_verdict`` validates the ``run.finished`` result and sets it aside (as a
problem) when it does not validate or holds a number or time the renderers
cannot use. A run without a usable verdict (it crashed, or its verdict was
damaged) gets one from ``synthesize_verdict``: status *interrupted*, the faults
as the journal recorded them, and per-probe figures from the samples.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aftershock.model.results import FaultRecord, ProbeSummary, RunResult, RunStatus
from aftershock.reporting.collector import FaultTrail, RunCollector
from aftershock.reporting.fields import text
from aftershock.reporting.view import LIMIT, Sample

__all__ = ["CRASHED_REASON", "fault_records", "read_verdict", "synthesize_verdict"]

CRASHED_REASON = "journal ends without a verdict (crash?)"
"""The reason of a synthesized verdict when the journal has no ``run.finished``."""


def _percentiles(values: list[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    if len(values) == 1:
        return values[0], values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def _summaries(samples: Mapping[str, tuple[Sample, ...]]) -> list[ProbeSummary]:
    """Per-probe figures for a run without a verdict; percentiles of successful samples."""
    found: list[ProbeSummary] = []
    for probe, items in samples.items():
        if not items:
            continue
        ok = [s.latency for s in items if s.ok and s.latency is not None]
        p50, p95, p99 = _percentiles(ok)
        ratio = sum(s.ok for s in items) / len(items)
        found.append(
            ProbeSummary(
                probe=probe, count=len(items), success_ratio=ratio, p50=p50, p95=p95, p99=p99
            )
        )
    return found


def fault_records(collected: RunCollector) -> dict[str, FaultRecord]:
    """The journal's faults grouped by step, as the verdict would have listed them."""
    steps: dict[str, list[FaultTrail]] = {}
    for item in collected.faults.values():
        steps.setdefault(item.step, []).append(item)
    found: dict[str, FaultRecord] = {}
    for step, items in steps.items():
        injected = [i.applied or i.intent for i in items]
        reverted = [i.reverted for i in items]
        errors = [i.error for i in items if i.error]
        found[step] = FaultRecord(
            step=step,
            fault=items[0].fault,
            target=items[0].target,
            resources=[r for i in items for r in i.resources],
            injected_at=min(injected),
            reverted_at=None if None in reverted else max(r for r in reverted if r),
            error="; ".join(errors) or None,
        )
    return found


def _insane(value: Any) -> str | None:
    """Why a validated verdict cannot be shown (a number or time renderers cannot use)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not (math.isfinite(item) and abs(item) <= LIMIT):
            return f"the number {item!r} is not finite or beyond {LIMIT:g}"
        if isinstance(item, datetime):
            if item.tzinfo is None:
                return f"the time {item.isoformat()} has no time zone"
            try:
                item.astimezone(UTC)
            except OverflowError:
                return f"the time {item.isoformat()} is out of range in UTC"
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None


def read_verdict(collected: RunCollector) -> RunResult | None:
    """The journaled verdict; ``None`` (and a problem listed) when it is missing or unusable."""
    if collected.finished is None:
        return None
    try:
        result = RunResult.model_validate(collected.finished)
    except (ValueError, RecursionError) as exc:  # pydantic's ValidationError is a ValueError
        detail = " ".join(str(exc).split())[:500]
        collected.problems.append(f"{collected.path}: run.finished result unreadable: {detail}")
        return None
    # Validation is lax ("NaN", "inf" and naive times pass); the renderers need better.
    if (why := _insane(result.model_dump())) is not None:
        collected.problems.append(f"{collected.path}: run.finished result unreadable: {why}")
        return None
    return result


def synthesize_verdict(
    collected: RunCollector, samples: Mapping[str, tuple[Sample, ...]]
) -> RunResult:
    """An *interrupted* verdict from what the journal holds, for a run without a usable one."""
    s = collected.started
    seed = s.get("seed")
    assert collected.start is not None
    reason = CRASHED_REASON if collected.finished is None else "journal's verdict is unreadable"
    return RunResult(
        run_id=collected.run_id,
        experiment=text(s.get("experiment")) or "(unknown experiment)",
        status=RunStatus.INTERRUPTED,
        reason=reason,
        started_at=collected.start,
        forced=s.get("forced") is True,
        dry_run=s.get("dry_run") is True,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        faults=list(fault_records(collected).values()),
        probes=_summaries(samples),
        recovery_seconds=collected.recovery.seconds if collected.recovery else None,
        aborted_by=collected.abort.reason if collected.abort else None,
    )
