"""Weekly trends of chaos runs: the ledger's runs laid out as periods x experiments.

Rule: pure arithmetic on ``LedgerRun`` records (``load_trends`` only reads the
ledger). Weeks are ISO weeks in UTC, Monday 00:00 to Monday 00:00. A history
longer than ``MAX_PERIODS`` weeks is grouped into periods of several weeks, so
a plot never holds more bars than it can label. Dry runs and runs started after
``now`` are left out, as in ``aftershock history``.

Every figure here is finite, non-negative and within ``LIMIT``: a value from the
ledger that is not (NaN, an infinity, a negative duration, a hand-edited text)
is left out and counted in ``Trends.skipped``, so renderers never scale garbage.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from aftershock.journal.ledger import Ledger, LedgerRun
from aftershock.model.results import RunStatus
from aftershock.reporting.view import LIMIT

__all__ = [
    "MAX_PERIODS",
    "UNKNOWN_OUTCOME",
    "UNRECORDED",
    "Cell",
    "Period",
    "SloTrend",
    "Trends",
    "compute_trends",
    "iso_week",
    "load_trends",
    "monday_of",
]

MAX_PERIODS: Final = 60
"""At most this many periods (bars per plot); a longer history is grouped into longer periods."""
UNRECORDED: Final = "unrecorded"
"""The fault family of runs recorded before the ledger kept their faults."""
UNKNOWN_OUTCOME: Final = "unknown"
"""The outcome of a healer action recorded without one."""
_LOOKBACK_CAP: Final = timedelta(days=400)  # the longest SLO window the rolling spend looks back


def monday_of(moment: datetime) -> date:
    """The Monday (UTC) of the ISO week ``moment`` falls in; naive times are taken as UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    day = aware.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def _at(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _value(raw: object) -> float | None:
    """A usable figure, or None: finite, 0 <= value <= LIMIT, a real number."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw) if 0 <= raw <= LIMIT else None  # also false for NaN


@dataclass(frozen=True, slots=True)
class Period:
    """One bar of a plot: ``weeks`` ISO weeks from the Monday ``start`` (UTC)."""

    start: date
    weeks: int = 1

    @property
    def end(self) -> date:
        """The Monday after the period (exclusive)."""
        return self.start + timedelta(weeks=self.weeks)

    @property
    def label(self) -> str:
        """``2026-W10``, or ``2026-W10 to 2026-W13`` for a multi-week period."""
        first = iso_week(self.start)
        return first if self.weeks == 1 else f"{first} to {iso_week(self.end - timedelta(1))}"


def iso_week(day: date) -> str:
    """The ISO week ``day`` falls in, e.g. ``2026-W10``."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    """What one experiment's runs (or several experiments') did in one period."""

    runs: int = 0
    verdicts: Mapping[RunStatus, int] = field(default_factory=dict)
    forced: int = 0
    spend: Mapping[str, float] = field(default_factory=dict)
    """Budget spent per SLO, as a share of that SLO's whole-window budget."""
    recoveries: tuple[float, ...] = ()
    """Recovery time (seconds) of each run that measured one."""
    family_runs: Mapping[str, int] = field(default_factory=dict)
    """Runs that injected a fault of each family."""
    family_recoveries: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    """Recovery times of the runs that injected each family (a run counts for each it injected)."""
    actions: Mapping[str, int] = field(default_factory=dict)
    """Healer actions by outcome (``ok``, ``failed``, ...), where runs itemised them."""
    action_names: Mapping[str, int] = field(default_factory=dict)
    """Healer actions by ``playbook: action``."""
    healer_fired: int = 0
    """Runs in which the healer acted."""
    unitemised: int = 0
    """Runs whose healer actions were not recorded one by one."""

    def verdict(self, status: RunStatus) -> int:
        """Runs that ended with ``status``."""
        return self.verdicts.get(status, 0)

    @property
    def recovery_median(self) -> float | None:
        """Median recovery time, or None."""
        return statistics.median(self.recoveries) if self.recoveries else None

    @property
    def recovery_max(self) -> float | None:
        """Longest recovery time, or None."""
        return max(self.recoveries, default=None)

    def mttr(self, family: str) -> float | None:
        """Mean time to recovery of the runs that injected ``family``, or None."""
        found = self.family_recoveries.get(family, ())
        return math.fsum(found) / len(found) if found else None

    @staticmethod
    def merge(cells: Iterable[Cell]) -> Cell:
        """All of ``cells`` as one."""
        cells = list(cells)

        def add(name: str) -> dict[str, int]:
            total: Counter[str] = Counter()
            for c in cells:
                total.update(getattr(c, name))
            return dict(total)

        spend: dict[str, float] = {}
        for c in cells:
            for slo, spent in c.spend.items():
                spend[slo] = spend.get(slo, 0.0) + spent
        families: dict[str, tuple[float, ...]] = {}
        for c in cells:
            for family, values in c.family_recoveries.items():
                families[family] = families.get(family, ()) + values
        verdicts: Counter[RunStatus] = Counter()
        for c in cells:
            verdicts.update(c.verdicts)
        return Cell(
            runs=sum(c.runs for c in cells),
            verdicts=dict(verdicts),
            forced=sum(c.forced for c in cells),
            spend=spend,
            recoveries=tuple(v for c in cells for v in c.recoveries),
            family_runs=add("family_runs"),
            family_recoveries=families,
            actions=add("actions"),
            action_names=add("action_names"),
            healer_fired=sum(c.healer_fired for c in cells),
            unitemised=sum(c.unitemised for c in cells),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SloTrend:
    """One SLO's budget over the periods."""

    name: str
    window_seconds: float
    """The SLO's window (its latest recorded one); its whole budget is the allowance."""
    objective: float | None
    rolling: tuple[float, ...]
    """Per period: budget spent over the window that ends with the period (or at ``now``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Trends:
    """Periods x experiments, the SLOs' budgets and what had to be left out."""

    now: datetime
    weeks: int
    """How many weeks back were asked for."""
    periods: tuple[Period, ...] = ()
    """Oldest first; none when no run was recorded in those weeks."""
    experiments: tuple[str, ...] = ()
    cells: Mapping[tuple[int, str], Cell] = field(default_factory=dict)
    """By (period index, experiment); a missing key means no runs."""
    slos: tuple[SloTrend, ...] = ()
    families: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    limits: Mapping[str, float] = field(default_factory=dict)
    """Each experiment's latest ``expect.recoverWithin`` (seconds), where it has one."""
    skipped: int = 0
    """Figures left out because they were not finite, negative or beyond ``LIMIT``."""

    def cell(self, period: int, experiment: str) -> Cell:
        """One experiment in one period (empty if it did not run)."""
        return self.cells.get((period, experiment), _EMPTY)

    def period_total(self, period: int) -> Cell:
        """Every experiment in one period."""
        return Cell.merge(self.cell(period, e) for e in self.experiments)

    def experiment_total(self, experiment: str) -> Cell:
        """One experiment over every period."""
        return Cell.merge(self.cell(i, experiment) for i in range(len(self.periods)))

    @property
    def total(self) -> Cell:
        """Everything."""
        return Cell.merge(self.cells.values())


_EMPTY: Final = Cell()


class _Acc:
    """A cell being filled, run by run."""

    def __init__(self) -> None:
        self.runs = self.forced = self.fired = self.unitemised = 0
        self.verdicts: Counter[RunStatus] = Counter()
        self.spend: dict[str, float] = {}
        self.recoveries: list[float] = []
        self.family_runs: Counter[str] = Counter()
        self.family_recoveries: dict[str, list[float]] = {}
        self.actions: Counter[str] = Counter()
        self.action_names: Counter[str] = Counter()

    def cell(self) -> Cell:
        return Cell(
            runs=self.runs,
            verdicts=dict(self.verdicts),
            forced=self.forced,
            spend=dict(self.spend),
            recoveries=tuple(self.recoveries),
            family_runs=dict(self.family_runs),
            family_recoveries={k: tuple(v) for k, v in self.family_recoveries.items()},
            actions=dict(self.actions),
            action_names=dict(self.action_names),
            healer_fired=self.fired,
            unitemised=self.unitemised,
        )


class _Builder:
    """Adds runs to their cells, counting what had to be left out."""

    def __init__(self) -> None:
        self.skipped = 0
        self.cells: dict[tuple[int, str], _Acc] = {}
        self.limits: dict[str, float] = {}

    def figure(self, raw: object) -> float | None:
        value = _value(raw)
        if value is None and raw is not None:
            self.skipped += 1
        return value

    def add(self, index: int, run: LedgerRun) -> None:
        acc = self.cells.setdefault((index, run.experiment), _Acc())
        acc.runs += 1
        acc.verdicts[run.status] += 1
        acc.forced += run.forced
        for s in run.spend:
            if (spent := self.figure(s.spent)) is not None:
                acc.spend[s.slo] = acc.spend.get(s.slo, 0.0) + spent
        recovery = self.figure(run.recovery_seconds)
        if (limit := self.figure(run.recover_within)) is not None:
            self.limits[run.experiment] = limit  # runs come oldest first: the latest stays
        if recovery is not None:
            acc.recoveries.append(recovery)
        if run.faults is None:
            families = {UNRECORDED}
        else:
            families = {f.family for f in run.faults if f.injected_at is not None}
        for family in sorted(families):
            acc.family_runs[family] += 1
            if recovery is not None:
                acc.family_recoveries.setdefault(family, []).append(recovery)
        acc.fired += bool(run.healing and run.healing.fired)
        if run.healer_actions is None:
            acc.unitemised += 1
        for action in run.healer_actions or ():
            acc.actions[action.outcome or UNKNOWN_OUTCOME] += 1
            acc.action_names[f"{action.playbook}: {action.action}"] += 1


def _periods(first: date, last: date, weeks_per_period: int) -> tuple[Period, ...]:
    """Periods ending with the week of ``last`` and reaching back to cover ``first``."""
    count = math.ceil(((last - first).days // 7 + 1) / weeks_per_period)
    start = last - timedelta(weeks=count * weeks_per_period - 1)
    return tuple(
        Period(start + timedelta(weeks=i * weeks_per_period), weeks_per_period)
        for i in range(count)
    )


def _slo_trends(
    runs: Sequence[LedgerRun], periods: Sequence[Period], now: datetime, names: Iterable[str]
) -> tuple[SloTrend, ...]:
    """Each SLO's spend over its rolling window at the end of each period, as the gate counts it."""
    spends: dict[str, list[tuple[datetime, float]]] = {}
    latest: dict[str, tuple[datetime, float, float | None]] = {}
    for run in runs:
        for s in run.spend:
            spent, window = _value(s.spent), _value(s.window_seconds)
            if s.recorded_at > now or spent is None:
                continue
            spends.setdefault(s.slo, []).append((s.recorded_at, spent))
            if window and (s.slo not in latest or latest[s.slo][0] <= s.recorded_at):
                latest[s.slo] = (s.recorded_at, window, _value(s.objective))
    trends = []
    for name in sorted(n for n in names if n in latest):
        _, window, objective = latest[name]
        span = timedelta(seconds=min(window, _LOOKBACK_CAP.total_seconds()))
        ends = [min(_at(period.end), now) for period in periods]
        rolling = tuple(math.fsum(v for at, v in spends[name] if e - span <= at <= e) for e in ends)
        trends.append(
            SloTrend(name=name, window_seconds=window, objective=objective, rolling=rolling)
        )
    return tuple(trends)


def compute_trends(
    runs: Iterable[LedgerRun], *, now: datetime, weeks: int, max_periods: int = MAX_PERIODS
) -> Trends:
    """The last ``weeks`` ISO weeks up to ``now``, from the first week with a run.

    ``runs`` may reach further back than the weeks shown: their spend counts in
    the rolling window of an SLO (as the budget gate counts it), not in a cell.
    """
    if weeks < 1 or max_periods < 1:
        msg = f"weeks and max_periods must be at least 1, got {weeks} and {max_periods}"
        raise ValueError(msg)
    now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    this_week = monday_of(now)
    earliest = this_week - timedelta(weeks=weeks - 1)
    every = [r for r in runs if not r.dry_run and r.started_at <= now]
    shown = [r for r in every if monday_of(r.started_at) >= earliest]
    if not shown:
        return Trends(now=now, weeks=weeks)
    first = min(monday_of(r.started_at) for r in shown)
    span = (this_week - first).days // 7 + 1
    periods = _periods(first, this_week, math.ceil(span / max_periods))
    builder = _Builder()
    for run in sorted(shown, key=lambda r: r.started_at):
        index = (monday_of(run.started_at) - periods[0].start).days // (7 * periods[0].weeks)
        builder.add(index, run)
    cells = {key: acc.cell() for key, acc in builder.cells.items()}
    slos = _slo_trends(every, periods, now, {slo for c in cells.values() for slo in c.spend})
    return Trends(
        now=now,
        weeks=weeks,
        periods=periods,
        experiments=tuple(sorted({e for _, e in cells})),
        cells=cells,
        slos=slos,
        families=tuple(sorted({f for c in cells.values() for f in c.family_runs})),
        outcomes=tuple(sorted({o for c in cells.values() for o in c.actions})),
        limits=builder.limits,
        skipped=builder.skipped,
    )


def load_trends(ledger: Ledger, *, now: datetime, weeks: int) -> Trends:
    """``compute_trends`` of the ledger's runs, with enough before them for each SLO's window."""
    now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    since = _at(monday_of(now) - timedelta(weeks=max(weeks, 1) - 1))
    runs = ledger.runs(since=since)
    windows = [_value(s.window_seconds) or 0.0 for r in runs for s in r.spend]
    if lookback := min(max(windows, default=0.0), _LOOKBACK_CAP.total_seconds()):
        runs = ledger.runs(since=since - timedelta(seconds=lookback))
    return compute_trends(runs, now=now, weeks=weeks)
