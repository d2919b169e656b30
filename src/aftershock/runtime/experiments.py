"""Experiment runs: admission, journal, drivers, probes, an in-process healer, the ledger.

``run_experiment`` is what ``aftershock run``, the scheduler and the operator
call. A run is admitted over its stores (``Admission.stores``): it holds its
target leases and its place in the run registry while it lives, so ``recover``
never reverts a live run's faults; it polls the stores' lever, writes its fault
records to the stores' shared records (the operator's API) before its journal
file, and is booked in the stores' ledger.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aftershock.clock import SystemClock
from aftershock.drivers.toxiproxy import ToxiproxyDriver
from aftershock.engine.context import HealingObserver, NullSink, RunContext, new_seed
from aftershock.engine.runner import Runner
from aftershock.journal import read_journal
from aftershock.journal.faults import FaultJournal
from aftershock.journal.ledger import noted_healer_actions
from aftershock.model.experiment import Experiment
from aftershock.model.policy import HealingPolicy
from aftershock.model.results import RunResult
from aftershock.model.targets import TargetKind, TargetSpec
from aftershock.ports import Clock, EventSink, FaultDriver, Probe
from aftershock.probes.factory import build_probe
from aftershock.runtime.admission import Admission
from aftershock.runtime.local import LocalRunRegistry
from aftershock.runtime.recorded import open_journal
from aftershock.runtime.stores import BudgetLedger, FaultRecords
from aftershock.runtime.wiring import build_drivers, merged_targets
from aftershock.settings import Settings

__all__ = ["RunOutcome", "new_run_id", "run_experiment", "run_is_live"]


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: ``20261126T203000Z-3fa2c1``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def run_is_live(settings: Settings, run_id: str) -> bool:
    """True while a run on this host holds its lock (its process is alive)."""
    return LocalRunRegistry(settings.home).live(run_id)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """A finished run and where its journal is."""

    result: RunResult
    journal: Path


async def run_experiment(
    experiment: Experiment,
    *,
    settings: Settings,
    run_id: str | None = None,
    seed: int | None = None,
    dry_run: bool = False,
    force: bool = False,
    clock: Clock | None = None,
    events: EventSink | None = None,
    drivers: Mapping[TargetKind, FaultDriver] | None = None,
    probes: Mapping[str, Probe] | None = None,
    healing: HealingObserver | None = None,
    policy: HealingPolicy | None = None,
    stop: asyncio.Event | None = None,
    admission: Admission | None = None,
) -> RunOutcome:
    """Run one experiment end to end: admission, journal, drivers, probes, verdict, ledger.

    ``admission`` (by default over ``settings``' lever and ledger) refuses the
    run with ``BudgetExhausted``, or admits it for its whole length; the run is
    booked in its ledger.

    With ``policy`` the healing policy runs in-process on the same drivers (the
    same supervised processes, the same containers), and the verdict says
    whether its playbooks fired and how fast.

    ``stop`` ends the run gracefully when set (at any time, even before the
    first fault): the current step is cut short, everything is reverted, and
    the result says interrupted. Cancelling the call reverts everything too,
    books the run as interrupted, and re-raises. With no ``seed`` one is
    chosen; it is in the journal and the result.
    """
    clock = clock or SystemClock()
    run_id = run_id or new_run_id(clock.now())
    seed = new_seed() if seed is None else seed
    admission = admission or Admission(settings)
    admitted = admission.admitted(
        experiment, run_id=run_id, now=clock.now(), force=force, dry_run=dry_run
    )
    async with admitted as remaining:
        settings.home.mkdir(parents=True, exist_ok=True)
        stores = admission.stores
        records = None if dry_run else stores.records
        journal = open_journal(settings.journal_dir, run_id, records)
        targets = dict(experiment.spec.targets)
        if policy is not None:
            targets = merged_targets(targets, policy.spec.targets)
        sink: EventSink = events or NullSink()
        # The journal closes (its queued notes written) inside the run's lock, so
        # `aftershock recover` never numbers records of a file still being written.
        with stores.runs.alive(run_id), journal:
            if records is not None:
                records.started(run_id, experiment.metadata.name, seed=seed)
            async with AsyncExitStack() as stack:
                if drivers is None:
                    log_dir = settings.home / "logs" / run_id
                    drivers = build_drivers(settings, targets, log_dir=log_dir)
                if not dry_run:
                    for driver in drivers.values():
                        await driver.start(stack)
                    await _provision(drivers, targets, journal, run_id)
                    if policy is not None and healing is None:
                        from aftershock.runtime.healerhost import HealerHost  # only with a policy

                        host = HealerHost.for_run(
                            settings, clock=clock, events=sink, journal=journal
                        )
                        await stack.enter_async_context(host)
                        healing = await host.add(policy, drivers=drivers)
                if probes is None:
                    probes = {
                        name: build_probe(spec) for name, spec in experiment.spec.probes.items()
                    }
                    for probe in probes.values():
                        stack.push_async_callback(probe.aclose)
                ctx = RunContext(
                    experiment=experiment,
                    run_id=run_id,
                    drivers=drivers,
                    probes=probes,
                    journal=journal,
                    clock=clock,
                    events=sink,
                    seed=seed,
                    dry_run=dry_run,
                    forced=force,
                    kill_switch=stores.lever.engaged,
                    remaining_budget=remaining,
                    healing=healing,
                    stop=stop or asyncio.Event(),
                )
                runner = Runner(ctx)
                try:
                    result = await runner.run()
                except asyncio.CancelledError:
                    if runner.result is not None and not dry_run:
                        _book(stores.ledger, records, runner.result, journal)
                    raise
        if not dry_run:
            _book(stores.ledger, records, result, journal)
    return RunOutcome(result, journal.path)


def _book(
    ledger: BudgetLedger, records: FaultRecords | None, result: RunResult, journal: FaultJournal
) -> None:
    """Record the run in the ledger, with the healer actions its journal noted."""
    journal.flush()
    actions = noted_healer_actions(read_journal(journal.path))
    if records is not None:
        records.finished(result)
    ledger.record_run(result, journal_path=str(journal.path), healer_actions=actions)


async def _provision(
    drivers: Mapping[TargetKind, Any],
    targets: Mapping[str, TargetSpec],
    journal: FaultJournal,
    run_id: str,
) -> None:
    toxiproxy = drivers.get(TargetKind.TOXIPROXY)
    if isinstance(toxiproxy, ToxiproxyDriver):
        for name, target in targets.items():
            if target.kind is TargetKind.TOXIPROXY:
                await toxiproxy.provision(name, target, journal=journal, run_id=run_id)
