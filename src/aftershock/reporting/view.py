"""What a run report shows: ``RunView`` and the frozen records it is made of.

The records (``Sample``, ``Phase``, ``FaultWindow``, ``AbortMark``,
``RecoveryMark``, ``HealingEvent``, ``SloInfo``, ``FaultRow``) and ``RunView``
are what every renderer reads; ``aftershock.reporting.replay`` builds them from
a run file.

Every number in a view is finite and within ``LIMIT``: a note holding NaN or an
infinity anywhere (the writer never produces one; ``1e999`` parses as infinity)
is skipped, and so is one whose times or figures are beyond ``LIMIT``, so the
renderers never divide, round or scale garbage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aftershock.model.results import FaultRecord, RunResult

__all__ = [
    "LIMIT",
    "AbortMark",
    "FaultRow",
    "FaultWindow",
    "HealingEvent",
    "Phase",
    "RecoveryMark",
    "RunView",
    "Sample",
    "SloInfo",
]

LIMIT: Final = 1e12
"""The largest magnitude a number in a view may have (seconds: about 31,700 years)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One probe sample; ``t`` is seconds since the run started, ``latency`` in seconds."""

    t: float
    ok: bool
    latency: float | None
    status: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class Phase:
    """The run entered ``name`` at ``t`` seconds."""

    name: str
    t: float


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """When a method step's fault was in effect; ``end_t`` None: until the journal ends."""

    step: str
    fault: str
    target: str
    start_t: float
    end_t: float | None


@dataclass(frozen=True, slots=True)
class AbortMark:
    """Why and when the runner aborted the method."""

    reason: str
    t: float | None


@dataclass(frozen=True, slots=True)
class RecoveryMark:
    """When health came back and how long it took after the faults ended."""

    t: float | None
    seconds: float | None


@dataclass(frozen=True, slots=True)
class HealingEvent:
    """One action the healer took during the run."""

    playbook: str
    action: str
    t: float | None
    outcome: str


@dataclass(frozen=True, slots=True)
class SloInfo:
    """An SLO as declared in ``run.started``: its probe, objective and latency threshold."""

    name: str
    probe: str
    objective: float | None
    latency_seconds: float | None
    window_seconds: float | None


@dataclass(frozen=True, slots=True)
class FaultRow:
    """A fault of the verdict, and whether the journal says it is still applied."""

    record: FaultRecord
    still_applied: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RunView:
    """Everything a report shows about one run, read from its journal."""

    journal: Path
    result: RunResult
    """The runner's verdict, or one synthesized as *interrupted* when the journal lacks it."""
    finished: bool
    description: str
    duration: float | None
    """Seconds from the start to the verdict (or to the last record of a crashed run)."""
    slos: Mapping[str, SloInfo]
    samples: Mapping[str, tuple[Sample, ...]]
    """Per probe, in time order; every probe of ``run.started`` has an entry."""
    phases: tuple[Phase, ...]
    windows: tuple[FaultWindow, ...]
    faults: tuple[FaultRow, ...]
    abort: AbortMark | None
    recovery: RecoveryMark | None
    healing: tuple[HealingEvent, ...]
    problems: tuple[str, ...]
    """Unreadable lines and records the report had to skip or guess around."""

    @property
    def span(self) -> float:
        """Seconds the timeline covers: the run, every sample and every mark in it."""
        ends = [self.duration or 0.0, 1.0]
        ends += [s[-1].t for s in self.samples.values() if s]
        ends += [p.t for p in self.phases]
        ends += [w.end_t if w.end_t is not None else w.start_t for w in self.windows]
        ends += [m.t for m in (self.abort, self.recovery) if m is not None and m.t is not None]
        ends += [h.t for h in self.healing if h.t is not None]
        return max(ends)
