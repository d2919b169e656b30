"""Weekly trends: ledger runs laid out as periods x experiments (UTC weeks, grouping, bad figures)."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from aftershock.journal.ledger import Ledger, LedgerAction, LedgerFault, LedgerRun, LedgerSpend
from aftershock.model.results import (
    BudgetResult,
    FaultRecord,
    HealingResult,
    RunResult,
    RunStatus,
)
from aftershock.reporting.trends import (
    MAX_PERIODS,
    UNRECORDED,
    Period,
    compute_trends,
    iso_week,
    load_trends,
    monday_of,
)

# A Wednesday in ISO week 2026-W10 (Mon 2 Mar .. Sun 8 Mar).
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
DAY = 86400.0


def run(
    run_id: str,
    at: datetime,
    *,
    experiment: str = "checkout",
    status: RunStatus = RunStatus.PASSED,
    recovery: object = None,
    spend: tuple[tuple[str, object], ...] = (),
    window: float = 28 * DAY,
    faults: tuple[str, ...] | None = (),
    actions: tuple[tuple[str, str | None], ...] | None = (),
    fired: bool = False,
    dry_run: bool = False,
    recover_within: float | None = None,
) -> LedgerRun:
    """A run as the ledger reads it back (figures may be anything a damaged file holds)."""
    end = at + timedelta(minutes=2)
    return LedgerRun(
        run_id=run_id,
        experiment=experiment,
        namespace=None,
        started_at=at,
        finished_at=end,
        status=status,
        forced=False,
        dry_run=dry_run,
        recovery_seconds=recovery,  # type: ignore[arg-type]
        journal_path=None,
        spend=tuple(
            LedgerSpend(
                run_id=run_id,
                slo=slo,
                objective=0.999,
                window_seconds=window,
                spent=spent,  # type: ignore[arg-type]
                burn_rate=1.0,
                recorded_at=end,
            )
            for slo, spent in spend
        ),
        recover_within=recover_within,
        healing=HealingResult(fired=fired, playbook="restart" if fired else None),
        faults=None
        if faults is None
        else tuple(
            LedgerFault(step=f"s{i}", fault=f, target="t", injected_at=at)
            for i, f in enumerate(faults)
        ),
        healer_actions=None
        if actions is None
        else tuple(LedgerAction(playbook="restart", action=a, outcome=o) for a, o in actions),
    )


def test_weeks_are_iso_weeks_in_utc() -> None:
    late_sunday = datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)  # W09
    # 01:00 on Monday in UTC+2 is still Sunday 23:00 in UTC: W09.
    plus_two = datetime(2026, 3, 2, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    # 20:00 on Sunday in UTC-5 is already Monday 01:00 in UTC: W10.
    minus_five = datetime(2026, 3, 1, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert monday_of(late_sunday) == date(2026, 2, 23)
    assert monday_of(plus_two) == date(2026, 2, 23)
    assert monday_of(minus_five) == date(2026, 3, 2)
    assert monday_of(MONDAY) == date(2026, 3, 2)
    trends = compute_trends(
        [
            run("sun", late_sunday),
            run("plus2", plus_two),
            run("mon", MONDAY),
            run("minus5", minus_five),
        ],
        now=NOW,
        weeks=4,
    )
    assert trends.periods == (Period(date(2026, 2, 23)), Period(date(2026, 3, 2)))
    assert [p.label for p in trends.periods] == ["2026-W09", "2026-W10"]
    assert [trends.cell(i, "checkout").runs for i in range(2)] == [2, 2]


def test_the_iso_year_turns_with_the_week_not_the_calendar() -> None:
    assert iso_week(date(2025, 12, 29)) == "2026-W01"
    assert iso_week(date(2027, 1, 3)) == "2026-W53"
    trends = compute_trends(
        [run("dec", datetime(2025, 12, 31, tzinfo=UTC))],
        now=datetime(2026, 1, 2, tzinfo=UTC),
        weeks=1,
    )
    assert [p.label for p in trends.periods] == ["2026-W01"]


def test_empty_weeks_stay_on_the_axis() -> None:
    trends = compute_trends(
        [
            run("a", MONDAY - timedelta(weeks=3)),
            run("b", MONDAY - timedelta(weeks=3), experiment="api", status=RunStatus.FAILED),
            run("c", MONDAY + timedelta(hours=1)),
        ],
        now=NOW,
        weeks=8,
    )
    # From the first week with a run (not 8 weeks back) to the current week, none skipped.
    assert [p.start for p in trends.periods] == [
        date(2026, 2, 9),
        date(2026, 2, 16),
        date(2026, 2, 23),
        date(2026, 3, 2),
    ]
    assert trends.experiments == ("api", "checkout")
    assert [trends.period_total(i).runs for i in range(4)] == [2, 0, 0, 1]
    assert trends.cell(1, "checkout").runs == 0
    assert trends.cell(0, "api").verdict(RunStatus.FAILED) == 1
    assert trends.total.runs == 3


def test_weeks_back_dry_runs_and_the_future_are_left_out() -> None:
    trends = compute_trends(
        [
            run("old", MONDAY - timedelta(weeks=2)),
            run("dry", MONDAY, dry_run=True),
            run("future", NOW + timedelta(hours=1)),
            run("now", NOW - timedelta(hours=1)),
        ],
        now=NOW,
        weeks=2,
    )
    assert [p.label for p in trends.periods] == ["2026-W10"]
    assert trends.total.runs == 1


def test_no_runs_means_no_periods() -> None:
    trends = compute_trends([], now=NOW, weeks=8)
    assert trends.periods == ()
    assert trends.total.runs == 0
    with pytest.raises(ValueError, match="at least 1"):
        compute_trends([], now=NOW, weeks=0)


def test_one_week_of_data() -> None:
    trends = compute_trends(
        [run("one", MONDAY, recovery=12.0, spend=(("avail", 0.01),), faults=("docker.kill",))],
        now=NOW,
        weeks=52,
    )
    assert trends.periods == (Period(date(2026, 3, 2)),)
    cell = trends.cell(0, "checkout")
    assert (cell.runs, cell.recovery_median, cell.mttr("docker"), cell.spend) == (
        1,
        12.0,
        12.0,
        {"avail": 0.01},
    )


def test_a_year_of_weekly_runs_is_weekly() -> None:
    runs = [run(f"r{w}", MONDAY - timedelta(weeks=w) + timedelta(hours=3)) for w in range(52)]
    trends = compute_trends(runs, now=NOW, weeks=52)
    assert len(trends.periods) == 52
    assert all(p.weeks == 1 for p in trends.periods)
    assert trends.periods[-1].start == date(2026, 3, 2)
    assert [trends.period_total(i).runs for i in range(52)] == [1] * 52


def test_more_weeks_than_bars_are_grouped_ending_with_this_week() -> None:
    runs = [run(f"r{w}", MONDAY - timedelta(weeks=w) + timedelta(hours=3)) for w in range(130)]
    trends = compute_trends(runs, now=NOW, weeks=200)
    assert len(trends.periods) <= MAX_PERIODS
    weeks = trends.periods[0].weeks
    assert weeks == 3
    assert trends.periods[-1].end == date(2026, 3, 9)  # the last bar ends with this week
    assert trends.periods[0].start <= date(2026, 3, 2) - timedelta(weeks=129)
    assert trends.total.runs == 130
    for a, b in zip(trends.periods, trends.periods[1:], strict=False):
        assert a.end == b.start
    assert trends.periods[-1].label == "2026-W08 to 2026-W10"


def test_recovery_and_mttr_per_fault_family() -> None:
    trends = compute_trends(
        [
            run("a", MONDAY, recovery=10.0, faults=("docker.kill", "toxiproxy.latency")),
            run("b", MONDAY, recovery=30.0, faults=("docker.pause",)),
            run("c", MONDAY, recovery=None, faults=("k8s.deletePod",)),
            run("old", MONDAY, recovery=5.0, faults=None),  # recorded before faults were kept
            run("none", MONDAY, recovery=7.0, faults=()),  # nothing injected: no family
        ],
        now=NOW,
        weeks=1,
    )
    cell = trends.cell(0, "checkout")
    assert trends.families == ("docker", "k8s", "toxiproxy", UNRECORDED)
    assert cell.family_runs == {"docker": 2, "toxiproxy": 1, "k8s": 1, UNRECORDED: 1}
    assert cell.mttr("docker") == 20.0
    assert cell.mttr("toxiproxy") == 10.0
    assert cell.mttr("k8s") is None
    assert cell.mttr(UNRECORDED) == 5.0
    assert cell.recovery_median == 8.5
    assert cell.recovery_max == 30.0


def test_a_fault_that_was_never_injected_has_no_family() -> None:
    never = LedgerFault(step="s", fault="docker.kill", target="t", injected_at=None, error="boom")
    failed = dataclasses.replace(run("r", MONDAY, recovery=3.0), faults=(never,))
    trends = compute_trends([failed], now=NOW, weeks=1)
    assert trends.families == ()
    assert trends.total.recoveries == (3.0,)


def test_healer_actions_by_outcome_and_unitemised_runs() -> None:
    trends = compute_trends(
        [
            run("a", MONDAY, fired=True, actions=(("docker.restart", "ok"), ("wait", None))),
            run("b", MONDAY, fired=True, actions=None),  # actions not recorded one by one
            run("c", MONDAY, actions=()),
        ],
        now=NOW,
        weeks=1,
    )
    cell = trends.cell(0, "checkout")
    assert cell.actions == {"ok": 1, "unknown": 1}
    assert cell.action_names == {"restart: docker.restart": 1, "restart: wait": 1}
    assert (cell.healer_fired, cell.unitemised) == (2, 1)
    assert trends.outcomes == ("ok", "unknown")


def test_budget_per_slo_and_its_rolling_window() -> None:
    week = timedelta(weeks=1)
    runs = [
        # Before the weeks shown: counts in the rolling window, not in a cell.
        run("before", MONDAY - 3 * week, spend=(("avail", 0.10),), window=14 * DAY),
        run("w8", MONDAY - 2 * week, spend=(("avail", 0.02), ("latency", 0.5)), window=14 * DAY),
        run("w9", MONDAY - week, spend=(("avail", 0.03),), window=14 * DAY),
        run("w10", MONDAY, spend=(("avail", 0.04),), window=14 * DAY, experiment="api"),
    ]
    trends = compute_trends(runs, now=NOW, weeks=3)
    assert [p.label for p in trends.periods] == ["2026-W08", "2026-W09", "2026-W10"]
    assert [s.name for s in trends.slos] == ["avail", "latency"]
    avail = trends.slos[0]
    assert avail.window_seconds == 14 * DAY
    assert avail.objective == 0.999
    assert trends.cell(0, "checkout").spend == {"avail": 0.02, "latency": 0.5}
    assert trends.cell(2, "api").spend == {"avail": 0.04}
    # Windows ending at each period's end (the last one at NOW): 14 days back.
    assert avail.rolling == pytest.approx((0.12, 0.05, 0.07))


def test_figures_that_are_not_finite_are_left_out_and_counted() -> None:
    trends = compute_trends(
        [
            run("inf", MONDAY, recovery=math.inf, spend=(("avail", math.inf),)),
            run("nan", MONDAY, recovery=math.nan, spend=(("avail", math.nan),)),
            run("neg", MONDAY, recovery=-1.0, spend=(("avail", -0.5),)),
            run("text", MONDAY, recovery="12", spend=(("avail", "0.1"),)),
            run("huge", MONDAY, recovery=1e300, spend=(("avail", 1e300),)),
            run("ok", MONDAY, recovery=4.0, spend=(("avail", 0.01),), faults=("process.kill",)),
        ],
        now=NOW,
        weeks=1,
    )
    cell = trends.cell(0, "checkout")
    assert cell.runs == 6
    assert cell.recoveries == (4.0,)
    assert cell.spend == {"avail": 0.01}
    assert trends.skipped == 10
    assert trends.slos[0].rolling == (0.01,)
    assert cell.mttr("process") == 4.0


def test_load_trends_reads_the_ledger_with_each_slo_window_behind(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    budget = BudgetResult(
        slo="avail",
        objective=0.99,
        window_seconds=28 * DAY,
        spent=0.25,
        burn_rate=2.0,
        baseline_bad_ratio=0.0,
    )

    def record(run_id: str, at: datetime, **extra: object) -> None:
        result = RunResult(
            run_id=run_id,
            experiment="checkout",
            status=RunStatus.PASSED,
            started_at=at,
            finished_at=at + timedelta(minutes=1),
            budgets=[budget],
            **extra,  # type: ignore[arg-type]
        )
        ledger.record_run(result, healer_actions=[LedgerAction(playbook="p", action="a")])

    record("three-weeks-ago", MONDAY - timedelta(weeks=3))
    fault = FaultRecord(step="s", fault="toxiproxy.latency", target="db", injected_at=MONDAY)
    record("this-week", MONDAY, faults=[fault], recovery_seconds=2.5)
    trends = load_trends(ledger, now=NOW, weeks=1)
    assert [p.label for p in trends.periods] == ["2026-W10"]
    assert trends.total.runs == 1
    assert trends.total.actions == {"unknown": 1}
    assert trends.total.mttr("toxiproxy") == 2.5
    # The run three weeks back is inside the 28-day window, so the gate would count it.
    assert trends.slos[0].rolling == (pytest.approx(0.5),)
    assert ledger.remaining("avail", timedelta(days=28), NOW) == pytest.approx(0.5)
