"""One admission step: ``run``, the scheduler and the operator refuse alike, through ``Admission``.

Each entry point is driven for real (``run_experiment``, ``ChaosScheduler`` on a
manual clock, ``OperatorState.run_scheduled`` over a recording stand-in for the
Kubernetes API), so a caller that checked the lever or the budget its own way,
or did not go through the admission it was given, fails here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aftershock.clock import ManualClock
from aftershock.errors import BudgetExhausted, TargetLeased
from aftershock.journal.ledger import Ledger
from aftershock.model.experiment import Experiment
from aftershock.model.results import BudgetResult, RunResult, RunStatus
from aftershock.model.targets import TargetKind
from aftershock.runtime import (
    KILL_SWITCH_ENGAGED,
    Admission,
    TargetClaim,
    claims_of,
    local_stores,
    run_experiment,
    set_lever,
)
from aftershock.runtime.local import LocalTargetLeases
from aftershock.runtime.stores import EXPERIMENT_TARGET
from aftershock.settings import Settings
from aftershock.testing import FakeDriver, FakeProbe
from tests.unit.runtime.helpers import operator
from tests.unit.scheduling.helpers import DAY, FakeRun, experiment, scheduler, settings

BUDGET = {"slo": "avail", "maxSpend": "5%"}


class Leases:
    """This host's ``TargetLeases``, recording the claims taken through it."""

    def __init__(self, home: Settings) -> None:
        self.local = LocalTargetLeases(home.home)
        self.claims: list[tuple[str, list[str]]] = []
        self.holding = 0

    @contextlib.asynccontextmanager
    async def hold(self, claims: Sequence[TargetClaim]) -> AsyncIterator[None]:
        async with self.local.hold(claims):
            self.claims += [(c.run_id, [c.target]) for c in claims]
            self.holding += 1
            try:
                yield
            finally:
                self.holding -= 1

    async def held(self) -> list[TargetClaim]:
        return await self.local.held()


def with_leases(home: Settings, leases: Leases) -> Admission:
    stores = local_stores(home)
    return Admission(home, stores=dataclasses.replace(stores, leases=leases))


def spend(home_settings: Settings, clock: ManualClock, share: float) -> None:
    """Book a run that spent ``share`` of ``avail``'s budget yesterday."""
    yesterday = clock.now() - timedelta(days=1)
    Ledger(home_settings.home / "ledger.sqlite3").record_run(
        RunResult(
            run_id="expensive",
            experiment="weekly",
            status=RunStatus.FAILED,
            started_at=yesterday,
            finished_at=yesterday + timedelta(minutes=5),
            budgets=[
                BudgetResult(
                    slo="avail",
                    objective=0.99,
                    window_seconds=7 * DAY,
                    spent=share,
                    burn_rate=40.0,
                    baseline_bad_ratio=0.0,
                )
            ],
        )
    )


async def refusals(tmp_path: Path, exp: Experiment, clock: ManualClock) -> tuple[str, str, str]:
    """Why ``run``, the scheduler and the operator each refuse ``exp`` now."""
    home = settings(tmp_path)
    with pytest.raises(BudgetExhausted) as refused:
        await run_experiment(exp, settings=home, clock=clock)
    run = FakeRun(clock)
    sched = scheduler(tmp_path, clock, run)
    sched.upsert("gated", exp)
    await sched.start()
    await clock.advance(DAY)
    await sched.stop()
    assert run.starts == []
    (fire,) = sched.history("gated")
    state, kube = operator(home)
    state.admission = Admission(home)  # this host's stores, so the three read the same lever
    answer = await state.run_scheduled("chaos/gated", exp)
    assert answer == f"refused: {refused.value}"
    assert kube.statuses[-1]["phase"] == "Aborted"
    return str(refused.value), fire.detail, kube.statuses[-1]["reason"]


async def test_the_kill_switch_refuses_with_one_message_everywhere(tmp_path: Path) -> None:
    set_lever(settings(tmp_path), engaged=True)
    run, scheduled, operated = await refusals(
        tmp_path, experiment({"cron": "0 3 * * *"}), ManualClock()
    )
    assert run == scheduled == operated == KILL_SWITCH_ENGAGED


async def test_the_budget_gate_refuses_with_one_message_everywhere(tmp_path: Path) -> None:
    # The operator runs on the system clock: the manual one starts at the same moment.
    clock = ManualClock(epoch=datetime.now(UTC))
    spend(settings(tmp_path), clock, 0.97)
    exp = experiment({"cron": "0 3 * * *"}, budget=BUDGET)
    run, scheduled, operated = await refusals(tmp_path, exp, clock)
    assert run == "budget of SLO 'avail' has 3% left; this run may spend 5%"
    assert scheduled == f"budget gate refused: {run}"
    assert operated == run


def test_check_reports_the_budget_left_and_what_force_and_dry_run_skip(tmp_path: Path) -> None:
    clock = ManualClock()
    home = settings(tmp_path)
    spend(home, clock, 0.97)
    admission = Admission(home)
    exp = experiment({"cron": "0 3 * * *"}, budget=BUDGET)
    found = admission.check(exp, clock.now())
    assert found.remaining == {"avail": pytest.approx(0.03)}
    assert found.budget is not None
    assert not found.budget.allowed
    assert admission.check(exp, clock.now(), force=True).refusal is None
    set_lever(home, engaged=True)
    assert admission.check(exp, clock.now(), force=True).refusal == KILL_SWITCH_ENGAGED
    # A dry run touches nothing, so the lever does not stop it; the budget gate still does.
    assert admission.check(exp, clock.now(), dry_run=True).refusal == found.refusal


async def test_the_scheduler_asks_the_admission_it_is_given(tmp_path: Path) -> None:
    clock = ManualClock()
    elsewhere = Settings(home=tmp_path / "elsewhere")
    set_lever(elsewhere, engaged=True)
    run = FakeRun(clock)
    sched = scheduler(tmp_path, clock, run, admission=Admission(elsewhere))
    sched.upsert("hourly", experiment({"cron": "0 * * * *"}))
    await sched.start()
    await clock.advance(3600)
    await sched.stop()
    assert run.starts == []
    assert [f.reason for f in sched.history("hourly")] == ["kill-switch"]


async def test_a_run_holds_its_target_leases_until_it_is_booked(tmp_path: Path) -> None:
    clock = ManualClock()
    leases = Leases(settings(tmp_path))
    stop = asyncio.Event()
    stop.set()  # ends the run at once: admission and booking are what is tested
    outcome = await run_experiment(
        experiment({"cron": "0 3 * * *"}),
        settings=settings(tmp_path),
        clock=clock,
        run_id="r1",
        drivers={TargetKind.TOXIPROXY: FakeDriver(TargetKind.TOXIPROXY)},
        probes={"web": FakeProbe(lambda _t: True, clock)},
        stop=stop,
        admission=with_leases(settings(tmp_path), leases),
    )
    assert outcome.result.run_id == "r1"
    assert leases.claims == [("r1", [EXPERIMENT_TARGET]), ("r1", ["db"])]
    assert leases.holding == 0
    assert await leases.held() == []


async def test_a_refused_lease_refuses_the_run_and_the_operators_run(tmp_path: Path) -> None:
    home = settings(tmp_path)
    exp = experiment({"cron": "0 3 * * *"})
    other = claims_of(exp, "other-run")[1:]  # its targets, not the experiment itself
    why = "target 'db' is leased by run other-run"
    async with LocalTargetLeases(home.home).hold(other):
        with pytest.raises(TargetLeased, match=why) as refused:
            await run_experiment(exp, settings=home)
        assert refused.value.holder == "other-run"
        state, kube = operator(home)
        state.admission = Admission(home)
        answer = await state.run_scheduled("chaos/exp", exp)
        assert answer.startswith(f"refused: {why}")
        assert kube.events[-1][:2] == ("Warning", "Refused")
        assert why in kube.events[-1][2]
    assert not (home.journal_dir).exists() or not any(home.journal_dir.iterdir())


async def test_one_experiment_never_runs_twice_at_once_even_sharing_targets(
    tmp_path: Path,
) -> None:
    home = settings(tmp_path)
    exp = experiment({"cron": "0 3 * * *"})
    shared = exp.model_copy(update={"spec": exp.spec.model_copy(update={"share_targets": True})})
    async with LocalTargetLeases(home.home).hold(claims_of(shared, "first-run")):
        with pytest.raises(TargetLeased, match="already running as run first-run") as refused:
            await run_experiment(shared, settings=home)
        assert refused.value.holder == "first-run"
