"""Pure helpers about the method's timeline and about recovery, in seconds."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aftershock.model.faults import FaultStepBase
from aftershock.ports import ProbeResult

__all__ = ["fault_end", "method_end", "recovered_since"]


def method_end(steps: Sequence[FaultStepBase]) -> float:
    """When the method ends, from its start: the latest ``at + for`` (or ``at``) of all steps."""
    return max(
        (s.at + s.for_).total_seconds() if s.for_ is not None else s.at.total_seconds()
        for s in steps
    )


def fault_end(step: FaultStepBase, end_of_method: float) -> float:
    """When a step's fault is reverted, from the method's start."""
    if step.for_ is not None:
        return (step.at + step.for_).total_seconds()
    return max(end_of_method, step.at.total_seconds())


def recovered_since(
    samples: Sequence[ProbeResult], good: Callable[[ProbeResult], bool], *, confirm: int
) -> float | None:
    """The start of the final run of good samples, if it is at least ``confirm`` long.

    ``samples`` are the samples taken after the last fault ended, oldest first.
    A run that is still too short (or a bad newest sample) means "not yet".
    """
    start = len(samples)
    while start > 0 and good(samples[start - 1]):
        start -= 1
    if len(samples) - start < confirm:
        return None
    return samples[start].started
