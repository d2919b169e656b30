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
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aftershock.drivers.toxiproxy import PROXY, ToxiproxyDriver
from aftershock.errors import ConfigError
from aftershock.journal.faults import FaultJournal, OutstandingResource, outstanding_resources
from aftershock.journal.reading import JournalProblem, Outstanding, outstanding
from aftershock.model.targets import TargetKind
from aftershock.runtime.experiments import run_is_live
from aftershock.runtime.wiring import build_drivers
from aftershock.settings import Settings

__all__ = ["RecoveryAction", "RecoveryReport", "ensure_home", "recover"]


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
    """Revert every journaled fault that has no revert record, then remove every
    journaled resource (a provisioned proxy) never released; idempotent."""
    report = RecoveryReport()
    pending = outstanding(settings.journal_dir, report.problems)
    created = outstanding_resources(settings.journal_dir)  # its problems: already reported
    drivers = drivers if drivers is not None else build_drivers(settings, {})
    journals: dict[str, FaultJournal] = {}
    apis: set[str] = set()
    async with AsyncExitStack() as stack:
        for driver in drivers.values():
            await driver.start(stack)
        for item in pending:
            if run_is_live(settings, item.run_id):
                report.skipped_live.append(item.key)
                continue
            handle = item.handle
            if handle.kind is TargetKind.TOXIPROXY and (where := ToxiproxyDriver.located(handle)):
                apis.add(where[0])
            journal = journals.setdefault(
                item.run_id, FaultJournal(settings.journal_dir, item.run_id)
            )
            driver = drivers.get(handle.kind)
            if driver is None:
                message = f"no driver for {handle.kind.value}"
                report.actions.append(_action(item, ok=False, message=message))
                continue
            try:
                await driver.revert(handle)
            except Exception as exc:  # noqa: BLE001 - every fault is tried; errors are reported
                journal.revert_failed(handle, str(exc))
                report.actions.append(_action(item, ok=False, message=str(exc)))
                continue
            journal.reverted(handle)
            report.actions.append(_action(item, ok=True, message="reverted"))
        toxiproxy = drivers.get(TargetKind.TOXIPROXY)
        for resource in created:
            if run_is_live(settings, resource.run_id):
                report.skipped_live.append(resource.key)
                continue
            if where := ToxiproxyDriver.located(resource.handle):
                apis.add(where[0])
            journal = journals.setdefault(
                resource.run_id, FaultJournal(settings.journal_dir, resource.run_id)
            )
            report.actions.append(await _release(resource, toxiproxy, journal))
        if isinstance(toxiproxy, ToxiproxyDriver):
            for api in sorted(apis | set(settings.allow.toxiproxy)):
                await _remove_leftovers(settings, toxiproxy, api, report)
    return report


def _action(item: Outstanding, *, ok: bool, message: str) -> RecoveryAction:
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


async def _release(
    resource: OutstandingResource, driver: object, journal: FaultJournal
) -> RecoveryAction:
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
    settings: Settings, driver: ToxiproxyDriver, api: str, report: RecoveryReport
) -> None:
    """Remove toxics named after runs that are no longer alive (their journal may be lost)."""
    try:
        found = await driver.leftovers(api)
    except Exception:  # noqa: BLE001 - an unreachable server has nothing we can remove
        return
    runs = {m.group(1) for _, toxic in found if (m := _RUN_IN_TOXIC.match(toxic))}
    for run in sorted(runs):
        if run_is_live(settings, run):
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
