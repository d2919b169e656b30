"""``aftershock recover``: revert every journaled fault that has no revert record."""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from aftershock.drivers.toxiproxy import ToxiproxyDriver
from aftershock.errors import ConfigError
from aftershock.journal.faults import FaultJournal
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
            if run_is_live(settings, item.run_id):
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
