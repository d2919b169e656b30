"""What a run is given: the experiment, its collaborators, and its options."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final, Protocol

from aftershock.model.experiment import Experiment
from aftershock.model.faults import FaultStepBase
from aftershock.model.results import HealingResult
from aftershock.model.targets import TargetKind
from aftershock.ports import Clock, Event, EventSink, FaultDriver, FaultRequest, Probe, RunJournal

__all__ = ["HealingObserver", "NullSink", "RunContext", "new_seed", "step_seed"]

SEED_BITS: Final = 32
"""A chosen seed fits in 32 bits, short enough to retype from a terminal."""


def new_seed() -> int:
    """A fresh seed for a run that was given none."""
    return secrets.randbits(SEED_BITS)


def step_seed(seed: int, step: str) -> int:
    """The seed of one step: derived from the run's seed and the step's name only.

    Adding, removing or reordering other steps leaves this step's choices as
    they were.
    """
    digest = hashlib.sha256(f"{seed}\x00{step}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class NullSink:
    """An event sink that drops everything."""

    def emit(self, event: Event) -> None:
        """Drop the event."""


class HealingObserver(Protocol):
    """Reports what a healer did during the run (in-process policy or an audit log)."""

    def healing_result(self, since: float, expected: str | None) -> HealingResult:
        """Whether ``expected`` fired after ``since`` (monotonic), and how fast."""
        ...


@dataclass(kw_only=True)
class RunContext:
    """Everything one run needs; ``runtime.py`` builds it, tests build it with fakes."""

    experiment: Experiment
    run_id: str
    drivers: Mapping[TargetKind, FaultDriver]
    probes: Mapping[str, Probe]
    journal: RunJournal
    clock: Clock
    events: EventSink = field(default_factory=NullSink)
    seed: int | None = None
    """The run's seed; each step draws from ``seed_for(step)``. None: unseeded (tests)."""
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    """Set to stop the run gracefully: the current step is cut short, then rollback."""
    dry_run: bool = False
    forced: bool = False
    kill_switch: Callable[[], bool] = lambda: False
    """Polled during the method; True aborts the run (the lever is engaged)."""
    remaining_budget: Mapping[str, float] = field(default_factory=dict)
    """Budget remaining per SLO before the run (from the ledger), for the report."""
    healing: HealingObserver | None = None
    abort_poll: float = 0.1
    """How often abort conditions are evaluated, in seconds."""
    recovery_confirm: int = 3
    """Consecutive good samples that confirm recovery."""
    recovery_cap: float = 60.0
    """How long to wait for recovery when the experiment sets no recoverWithin."""
    revert_grace: float = 30.0
    """Added to a fault's duration to give its journal deadline."""

    def seed_for(self, step: str) -> int | None:
        """The seed of ``step``'s random choices (target picks)."""
        return None if self.seed is None else step_seed(self.seed, step)

    def fault_request(
        self, step: FaultStepBase, *, duration: timedelta | None = None
    ) -> FaultRequest:
        """What a driver is asked to prepare for ``step`` (its target, params and seed)."""
        return FaultRequest(
            run_id=self.run_id,
            step=step.name,
            fault=step.fault_type,
            target_name=step.target,
            target=self.experiment.spec.targets[step.target],
            params=step.params,
            duration=duration,
            seed=self.seed_for(step.name),
        )
