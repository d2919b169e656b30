"""``aftershock recover``: revert every journaled fault that has no revert record.

It also removes what a crashed run created for itself and never released (a
proxy provisioned on an external Toxiproxy): exactly the proxy the journal
says aftershock created, and nothing else. A proxy that existed before the run
has no record; one created under the same name by someone else since is told
apart by ``aftershock.drivers.toxiproxy.ownership.created_by_us`` and left alone.
Journals written before those records existed have none, and read as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from aftershock.drivers.toxiproxy import PROXY, ToxiproxyDriver
from aftershock.errors import ConfigError
from aftershock.journal.faults import FaultJournal
from aftershock.journal.reading import JournalProblem, outstanding
from aftershock.journal.resources import outstanding_resources
from aftershock.model.targets import TargetKind
from aftershock.ports import Handle
from aftershock.runtime.local import LocalRunRegistry
from aftershock.runtime.stores import RunRegistry
from aftershock.runtime.wiring import build_drivers
from aftershock.settings import Settings

__all__ = [
    "Leftover",
    "RecoveryAction",
    "RecoveryReport",
    "RevertLog",
    "ensure_home",
    "recover",
    "undo_leftovers",
]


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


class RevertLog(Protocol):
    """Where recovery records what it did about a run's faults and resources."""

    def reverted(self, handle: Handle) -> object:
        """The fault is undone."""

    def revert_failed(self, handle: Handle, error: str) -> object:
        """Undoing failed; it stays outstanding."""

    def resource_released(self, handle: Handle, outcome: str) -> object:
        """The resource is gone (or was never there, or is not ours)."""

    def resource_release_failed(self, handle: Handle, error: str) -> object:
        """Removing it failed; it stays outstanding."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Leftover:
    """A fault (or a created resource) a run may have left behind."""

    run_id: str
    key: str
    handle: Handle
    created: bool = True
    """For a resource: whether its creation was confirmed (see ``OutstandingResource``)."""


async def recover(
    settings: Settings,
    *,
    drivers: Mapping[TargetKind, Any] | None = None,
    runs: RunRegistry | None = None,
) -> RecoveryReport:
    """Revert every journaled fault that has no revert record, then remove every
    journaled resource (a provisioned proxy) never released; idempotent.

    Runs that ``runs`` (by default this host's registry) says are alive are
    left alone.
    """
    report = RecoveryReport()
    pending = outstanding(settings.journal_dir, report.problems)
    created = outstanding_resources(settings.journal_dir)  # its problems: already reported
    journals: dict[str, FaultJournal] = {}

    def journal_of(run_id: str) -> FaultJournal:
        return journals.setdefault(run_id, FaultJournal(settings.journal_dir, run_id))

    faults = [Leftover(run_id=i.run_id, key=i.key, handle=i.handle) for i in pending]
    resources = [
        Leftover(run_id=r.run_id, key=r.key, handle=r.handle, created=r.created) for r in created
    ]
    await undo_leftovers(
        settings,
        faults,
        resources,
        drivers=drivers,
        log_of=journal_of,
        live=(runs or LocalRunRegistry(settings.home)).live,
        report=report,
    )
    return report


async def undo_leftovers(
    settings: Settings,
    faults: Sequence[Leftover],
    resources: Sequence[Leftover],
    *,
    drivers: Mapping[TargetKind, Any] | None,
    log_of: Callable[[str], RevertLog],
    live: Callable[[str], bool],
    report: RecoveryReport,
) -> None:
    """Revert ``faults`` and remove ``resources`` of runs not ``live``; record each outcome.

    Then remove, on every Toxiproxy server seen (and every allowed one), the
    toxics named after runs that are not alive (their records may be lost).
    """
    drivers = drivers if drivers is not None else build_drivers(settings, {})
    apis: set[str] = set()
    async with AsyncExitStack() as stack:
        for driver in drivers.values():
            await driver.start(stack)
        for item in faults:
            if live(item.run_id):
                report.skipped_live.append(item.key)
                continue
            handle = item.handle
            if handle.kind is TargetKind.TOXIPROXY and (where := ToxiproxyDriver.located(handle)):
                apis.add(where[0])
            log = log_of(item.run_id)
            driver = drivers.get(handle.kind)
            if driver is None:
                message = f"no driver for {handle.kind.value}"
                report.actions.append(_action(item, ok=False, message=message))
                continue
            try:
                await driver.revert(handle)
            except Exception as exc:  # noqa: BLE001 - every fault is tried; errors are reported
                log.revert_failed(handle, str(exc))
                report.actions.append(_action(item, ok=False, message=str(exc)))
                continue
            log.reverted(handle)
            report.actions.append(_action(item, ok=True, message="reverted"))
        toxiproxy = drivers.get(TargetKind.TOXIPROXY)
        for resource in resources:
            if live(resource.run_id):
                report.skipped_live.append(resource.key)
                continue
            if where := ToxiproxyDriver.located(resource.handle):
                apis.add(where[0])
            report.actions.append(await _release(resource, toxiproxy, log_of(resource.run_id)))
        if isinstance(toxiproxy, ToxiproxyDriver):
            for api in sorted(apis | set(settings.allow.toxiproxy)):
                await _remove_leftovers(live, toxiproxy, api, report)


def _action(item: Leftover, *, ok: bool, message: str) -> RecoveryAction:
    handle = item.handle
    return RecoveryAction(
        run_id=item.run_id,
        key=item.key,
        fault=handle.fault,
        target=handle.target,
        ok=ok,
        message=message,
    )


_RELEASED = {
    "deleted": "proxy {proxy!r} that the run created deleted",
    "absent": "proxy {proxy!r} not there (never created, or already gone)",
    "not ours": "proxy {proxy!r} left alone: it is not the one the run created",
}


async def _release(resource: Leftover, driver: object, journal: RevertLog) -> RecoveryAction:
    """Remove one resource a run created; journal the outcome either way."""
    handle = resource.handle
    action = partial(
        RecoveryAction,
        run_id=resource.run_id,
        key=resource.key,
        fault=handle.fault,
        target=handle.target,
    )
    if handle.fault != PROXY or not isinstance(driver, ToxiproxyDriver):
        return action(ok=False, message=f"no driver removes {handle.fault} resources")
    try:
        outcome = await driver.remove_created_proxy(handle, confirmed=resource.created)
    except Exception as exc:  # noqa: BLE001 - every resource is tried; errors are reported
        journal.resource_release_failed(handle, str(exc))
        return action(ok=False, message=str(exc))
    journal.resource_released(handle, outcome)
    template = _RELEASED.get(outcome, "proxy {proxy!r}: {outcome}")
    where = ToxiproxyDriver.located(handle)
    proxy = None if where is None else where[1]
    return action(ok=True, message=template.format(proxy=proxy, outcome=outcome))


_RUN_IN_TOXIC = re.compile(r"^aftershock-(\d{8}T\d{6}Z-[0-9a-f]{6})-")


async def _remove_leftovers(
    live: Callable[[str], bool], driver: ToxiproxyDriver, api: str, report: RecoveryReport
) -> None:
    """Remove toxics named after runs that are no longer alive (their journal may be lost)."""
    try:
        found = await driver.leftovers(api)
    except Exception:  # noqa: BLE001 - an unreachable server has nothing we can remove
        return
    runs = {m.group(1) for _, toxic in found if (m := _RUN_IN_TOXIC.match(toxic))}
    for run in sorted(runs):
        if live(run):
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
