"""The composition root: builds drivers, probes, journals and the clock, and runs things.

Entry points (``cli/``, ``operator/``, ``scheduling/``) call only this module;
everything below receives its collaborators from here.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aftershock.clock import SystemClock
from aftershock.drivers.docker import DockerDriver
from aftershock.drivers.process import ProcessDriver
from aftershock.drivers.toxiproxy import ToxiproxyDriver
from aftershock.engine.context import HealingObserver, RunContext
from aftershock.engine.runner import Runner
from aftershock.errors import BudgetExhausted, ConfigError
from aftershock.journal.faults import FaultJournal
from aftershock.journal.ledger import Ledger
from aftershock.journal.reading import JournalProblem, outstanding
from aftershock.model.experiment import Experiment
from aftershock.model.results import RunResult
from aftershock.model.targets import ProcessTarget, TargetKind, TargetSpec
from aftershock.ports import Clock, EventSink, FaultDriver, Probe
from aftershock.probes.factory import build_probe
from aftershock.settings import Settings
from aftershock.slo.budget import gate

__all__ = [
    "RecoveryAction",
    "RunOutcome",
    "build_drivers",
    "lever_engaged",
    "new_run_id",
    "recover",
    "run_experiment",
    "set_lever",
]


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: ``20261126T203000Z-3fa2c1``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


# ---------------------------------------------------------------- the kill switch
def _lever_path(settings: Settings) -> Path:
    return settings.home / "lever"


def lever_engaged(settings: Settings) -> bool:
    """True while the kill switch is engaged (a file under ``$AFTERSHOCK_HOME``)."""
    return _lever_path(settings).exists()


def set_lever(settings: Settings, *, engaged: bool, reason: str = "") -> None:
    """Engage or release the kill switch; running experiments poll it and abort."""
    path = _lever_path(settings)
    if engaged:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{datetime.now(UTC).isoformat()} {reason}\n", encoding="utf-8")
    else:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------- live-run locks
@contextlib.contextmanager
def _run_lock(settings: Settings, run_id: str) -> Iterator[None]:
    """Held while a run is alive, so ``recover`` never reverts a live run's faults."""
    path = settings.home / "runs" / f"{run_id}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    path.unlink(missing_ok=True)


def _run_is_live(settings: Settings, run_id: str) -> bool:
    path = settings.home / "runs" / f"{run_id}.lock"
    if not path.exists():
        return False
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


# ---------------------------------------------------------------- wiring
def build_drivers(
    settings: Settings, targets: Mapping[str, TargetSpec], *, log_dir: Path | None = None
) -> dict[TargetKind, Any]:
    """One driver per target kind in use (all of them when ``targets`` is empty)."""
    kinds = {t.kind for t in targets.values()} or set(TargetKind)
    drivers: dict[TargetKind, Any] = {}
    if TargetKind.TOXIPROXY in kinds:
        drivers[TargetKind.TOXIPROXY] = ToxiproxyDriver(settings.allow)
    if TargetKind.DOCKER in kinds:
        drivers[TargetKind.DOCKER] = DockerDriver(settings.allow)
    if TargetKind.PROCESS in kinds:
        processes = {
            n: t.process for n, t in targets.items() if isinstance(t.process, ProcessTarget)
        }
        drivers[TargetKind.PROCESS] = ProcessDriver(processes, log_dir=log_dir)
    return drivers


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """A finished run and where its journal is."""

    result: RunResult
    journal: Path


def _gate(
    settings: Settings, experiment: Experiment, ledger: Ledger, now: datetime, *, force: bool
) -> dict[str, float]:
    spec = experiment.spec
    remaining = {name: ledger.remaining(name, slo.window, now) for name, slo in spec.slo.items()}
    if spec.budget is not None and not force:
        decision = gate(remaining[spec.budget.slo], spec.budget)
        if not decision.allowed:
            raise BudgetExhausted(decision.message)
    return remaining


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
    on_runner: Callable[[Runner], None] | None = None,
) -> RunOutcome:
    """Run one experiment end to end: gate, journal, drivers, probes, verdict, ledger."""
    clock = clock or SystemClock()
    run_id = run_id or new_run_id(clock.now())
    if lever_engaged(settings) and not dry_run:
        raise BudgetExhausted("the kill switch is engaged (aftershock lever release to allow runs)")
    settings.home.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(settings.home / "ledger.sqlite3")
    remaining = _gate(settings, experiment, ledger, clock.now(), force=force)
    journal = FaultJournal(settings.journal_dir, run_id)
    with _run_lock(settings, run_id):
        async with AsyncExitStack() as stack:
            if drivers is None:
                drivers = build_drivers(
                    settings, experiment.spec.targets, log_dir=settings.home / "logs" / run_id
                )
            if not dry_run:
                for driver in drivers.values():
                    await driver.start(stack)
                await _provision(drivers, experiment.spec.targets)
            if probes is None:
                probes = {name: build_probe(spec) for name, spec in experiment.spec.probes.items()}
                for probe in probes.values():
                    close = getattr(probe, "aclose", None)
                    if close is not None:
                        stack.push_async_callback(close)
            ctx = RunContext(
                experiment=experiment,
                run_id=run_id,
                drivers=drivers,
                probes=probes,
                journal=journal,
                clock=clock,
                events=events or _NullSink(),
                seed=seed,
                dry_run=dry_run,
                forced=force,
                kill_switch=lambda: lever_engaged(settings),
                remaining_budget=remaining,
                healing=healing,
            )
            runner = Runner(ctx)
            if on_runner is not None:
                on_runner(runner)
            result = await runner.run()
    if not dry_run:
        ledger.record_run(result, journal_path=str(journal.path))
    return RunOutcome(result, journal.path)


async def _provision(drivers: Mapping[TargetKind, Any], targets: Mapping[str, TargetSpec]) -> None:
    toxiproxy = drivers.get(TargetKind.TOXIPROXY)
    if isinstance(toxiproxy, ToxiproxyDriver):
        for name, target in targets.items():
            if target.kind is TargetKind.TOXIPROXY:
                await toxiproxy.provision(name, target)


class _NullSink:
    def emit(self, event: object) -> None:
        """Drop the event."""


# ---------------------------------------------------------------- recovery
@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryAction:
    """What ``recover`` did about one fault."""

    run_id: str
    key: str
    fault: str
    target: str
    ok: bool
    message: str


@dataclass(slots=True)
class RecoveryReport:
    """Everything ``recover`` did, skipped and found."""

    actions: list[RecoveryAction] = field(default_factory=list)
    skipped_live: list[str] = field(default_factory=list)
    problems: list[JournalProblem] = field(default_factory=list)


async def recover(
    settings: Settings, *, drivers: Mapping[TargetKind, Any] | None = None
) -> RecoveryReport:
    """Revert every journaled fault that has no revert record; idempotent."""
    report = RecoveryReport()
    pending = outstanding(settings.journal_dir, report.problems)
    drivers = drivers if drivers is not None else build_drivers(settings, {})
    journals: dict[str, FaultJournal] = {}
    apis: set[str] = set()
    async with AsyncExitStack() as stack:
        for driver in drivers.values():
            await driver.start(stack)
        for item in pending:
            if _run_is_live(settings, item.run_id):
                report.skipped_live.append(item.key)
                continue
            handle = item.handle
            if handle.kind is TargetKind.TOXIPROXY and handle.undo.get("api"):
                apis.add(str(handle.undo["api"]))
            journal = journals.setdefault(
                item.run_id, FaultJournal(settings.journal_dir, item.run_id)
            )
            driver = drivers.get(handle.kind)
            if driver is None:
                message = f"no driver for {handle.kind.value}"
                report.actions.append(
                    RecoveryAction(
                        run_id=item.run_id,
                        key=item.key,
                        fault=handle.fault,
                        target=handle.target,
                        ok=False,
                        message=message,
                    )
                )
                continue
            try:
                await driver.revert(handle)
            except Exception as exc:  # noqa: BLE001 - every fault is tried; errors are reported
                journal.revert_failed(handle, str(exc))
                report.actions.append(
                    RecoveryAction(
                        run_id=item.run_id,
                        key=item.key,
                        fault=handle.fault,
                        target=handle.target,
                        ok=False,
                        message=str(exc),
                    )
                )
                continue
            journal.reverted(handle)
            report.actions.append(
                RecoveryAction(
                    run_id=item.run_id,
                    key=item.key,
                    fault=handle.fault,
                    target=handle.target,
                    ok=True,
                    message="reverted",
                )
            )
        toxiproxy = drivers.get(TargetKind.TOXIPROXY)
        if isinstance(toxiproxy, ToxiproxyDriver):
            for api in sorted(apis | set(settings.allow.toxiproxy)):
                await _remove_leftovers(settings, toxiproxy, api, report)
    return report


_RUN_IN_TOXIC = re.compile(r"^aftershock-(\d{8}T\d{6}Z-[0-9a-f]{6})-")


async def _remove_leftovers(
    settings: Settings, driver: ToxiproxyDriver, api: str, report: RecoveryReport
) -> None:
    """Remove toxics named after runs that are no longer alive (their journal may be lost)."""
    try:
        found = await driver.leftovers(api)
    except Exception:  # noqa: BLE001 - an unreachable server has nothing we can remove
        return
    runs = {m.group(1) for _, toxic in found if (m := _RUN_IN_TOXIC.match(toxic))}
    for run in sorted(runs):
        if _run_is_live(settings, run):
            continue
        for proxy, toxic in await driver.remove_leftovers(api, run_id=run):
            report.actions.append(
                RecoveryAction(
                    run_id=run,
                    key=f"{proxy}/{toxic}",
                    fault="toxiproxy",
                    target=proxy,
                    ok=True,
                    message="leftover toxic removed by name",
                )
            )


def ensure_home(settings: Settings) -> None:
    """Create ``$AFTERSHOCK_HOME`` or raise ``ConfigError``."""
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"cannot create AFTERSHOCK_HOME {settings.home}: {exc.strerror or exc}"
        raise ConfigError(msg) from exc
