"""The fault driver contract, for every driver against its real backend.

``FaultDriver`` (``aftershock.ports``) promises:

* ``prepare`` resolves and checks and changes nothing (a dry run is only that);
* ``inject`` is the one call that changes the world, and ``revert`` undoes it;
* ``revert`` is idempotent: a second revert, a revert of a fault that never
  landed, and a revert after the resource vanished all succeed;
* the handle is a plain JSON record, and reverting it in a fresh process (as
  ``aftershock recover`` does after a crash) works.

Each test runs for every (driver, fault) pair of ``conftest.WORLDS``; the world
is observed directly on the backend, never through the driver under test.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aftershock.ports import FaultDriver, Handle
from tests.contract.drivers.world import FaultCase, Snapshot, World, until

pytestmark = pytest.mark.timeout(120)

FRESH_REVERT = Path(__file__).with_name("fresh_revert.py")


def _through_json(handle: Handle) -> Handle:
    """The handle as the journal writes it and ``aftershock recover`` reads it back."""
    return Handle.from_json(json.loads(json.dumps(handle.to_json())))


async def _changed(world: World, before: Snapshot) -> Snapshot:
    """The world after ``inject``: it must differ from ``before`` (within a few seconds)."""
    after = await until(world.snapshot, lambda now: now != before, within=10)
    assert after != before, "inject changed nothing on the backend"
    return after


async def _assert_restored(world: World, case: FaultCase, before: Snapshot, what: str) -> None:
    """The world is back as it was: exactly, or in shape where the fault replaces things."""
    if case.identical_after_revert:
        now = await until(world.snapshot, lambda s: s == before, within=world.restore_timeout)
        assert now == before, f"{what}: the world is not as it was"
    else:
        expected = world.shape(before)
        now = await until(
            world.snapshot,
            lambda s: world.shape(s) == expected,
            within=world.restore_timeout,
        )
        assert world.shape(now) == expected, f"{what}: the world is not back in shape"


async def test_prepare_changes_nothing(world: World, case: FaultCase) -> None:
    assert isinstance(world.driver, FaultDriver)
    await world.quiet()
    before = await world.snapshot()
    handle = await world.driver.prepare(world.request(case))
    assert await world.snapshot() == before
    assert handle.fault == case.fault
    assert handle.resources, "the handle names nothing it would touch"
    # A plain JSON record: it survives the journal unchanged.
    assert _through_json(handle) == handle
    # Preparing again (a retried dry run) is just as harmless, and names the same things.
    again = await world.driver.prepare(world.request(case))
    assert again.resources == handle.resources
    assert await world.snapshot() == before


async def test_a_dry_run_changes_nothing(dry_world: World, case: FaultCase) -> None:
    # `aftershock run --dry-run` builds the drivers, never starts them, and only prepares.
    world = dry_world
    await world.quiet()
    before = await world.snapshot()
    handle = await world.driver.prepare(world.request(case))
    assert await world.snapshot() == before
    assert handle.resources, "the handle names nothing it would touch"
    # Reverting what was only prepared (nothing was injected) touches nothing either.
    await world.driver.revert(_through_json(handle))
    assert await world.snapshot() == before


async def test_revert_of_a_fault_never_injected_changes_nothing(
    world: World, case: FaultCase
) -> None:
    # A crash between the journal's intent record and inject leaves exactly this handle.
    await world.quiet()
    before = await world.snapshot()
    handle = await world.driver.prepare(world.request(case))
    await world.driver.revert(handle)
    await world.driver.revert(_through_json(handle))
    assert await world.snapshot() == before


async def test_inject_then_revert_restores_the_world_and_revert_is_idempotent(
    world: World, case: FaultCase
) -> None:
    await world.quiet()
    before = await world.snapshot()
    handle = await world.driver.inject(await world.driver.prepare(world.request(case)))
    await _changed(world, before)
    await world.driver.revert(handle)
    await _assert_restored(world, case, before, "after revert")
    await world.quiet()
    settled = await world.snapshot()
    await world.driver.revert(handle)
    await world.driver.revert(_through_json(handle))
    # Already undone: the second and third reverts change nothing at all.
    assert await world.snapshot() == settled


async def test_revert_succeeds_when_the_resource_vanished(world: World, case: FaultCase) -> None:
    handle = await world.driver.inject(await world.driver.prepare(world.request(case)))
    await world.vanish(handle)
    await world.driver.revert(handle)
    await world.driver.revert(_through_json(handle))


async def test_revert_from_the_journaled_handle_in_a_fresh_process(
    world: World, case: FaultCase, tmp_path: Path
) -> None:
    await world.quiet()
    before = await world.snapshot()
    handle = await world.driver.inject(await world.driver.prepare(world.request(case)))
    await _changed(world, before)
    config, record = tmp_path / "driver.json", tmp_path / "handle.json"
    config.write_text(json.dumps(world.fresh_config()), encoding="utf-8")
    record.write_text(json.dumps(handle.to_json()), encoding="utf-8")
    env = {**os.environ, **world.fresh_env()}
    argv = [sys.executable, str(FRESH_REVERT), str(config), str(record)]
    done = await asyncio.to_thread(
        subprocess.run, argv, env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert done.returncode == 0, f"the fresh process's revert failed: {done.stderr[-2000:]}"
    if case.fresh_revert_restores:
        await _assert_restored(world, case, before, "after the fresh process's revert")
    # The supervising process reverts too (the run's own rollback): still fine, and
    # now the world is back in every case.
    await world.driver.revert(handle)
    await _assert_restored(world, case, before, "after the revert in this process")
