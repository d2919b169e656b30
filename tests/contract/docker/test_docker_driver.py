"""The Docker driver against a real daemon: every fault, revert, selection, actions, errors.

Each fault is observed on the container itself (state, restart count, start time)
and from the outside (the container's httpd on 127.0.0.1 stops and starts
answering), then reverted twice: the second revert must be a no-op.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import docker
import docker.types
import pytest
import stamina
from docker.models.containers import Container
from structlog.testing import capture_logs

from aftershock.drivers.docker import DockerDriver
from aftershock.errors import DriverUnavailable, FaultInjectionFailed, RevertFailed, TargetNotFound
from aftershock.model.actions import ACTION_TYPES
from aftershock.model.base import Spec
from aftershock.model.faults import fault_type
from aftershock.model.params import GraceParams, NoParams, SignalParams
from aftershock.model.targets import DockerTarget, TargetSpec
from aftershock.ports import ActionDriver, ActionRequest, FaultDriver, FaultRequest, Handle
from aftershock.settings import Allowlist
from tests.support.docker import ContainerFactory, free_port, http_ok, wait_for

pytestmark = pytest.mark.docker

ALLOW_TESTS = Allowlist(containers=(r"^ast-",))


@pytest.fixture
async def driver() -> AsyncIterator[DockerDriver]:
    drv = DockerDriver(ALLOW_TESTS)
    try:
        yield drv
    finally:
        await drv.aclose()


def _target(host: str, **selector: Any) -> TargetSpec:
    return TargetSpec(docker=DockerTarget(host=host, **selector))


def _request(
    host: str, fault: str, params: Spec | None = None, *, seed: int | None = 7, **selector: Any
) -> FaultRequest:
    entry = fault_type(fault)
    return FaultRequest(
        run_id="run-1",
        step="step-1",
        fault=entry,
        target_name="api",
        target=_target(host, **selector),
        params=params or entry.params(),
        seed=seed,
    )


def _state(container: Container) -> dict[str, Any]:
    container.reload()
    state: dict[str, Any] = container.attrs["State"]
    return state


def _eventually(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    assert wait_for(check, timeout=timeout), f"timed out waiting until {what}"


def _require_host_pids(container: Container) -> None:
    """docker.crash signals from the host: skip (fail in CI) where daemon pids are not ours."""
    pid = _state(container)["Pid"]
    try:
        visible = str(container.id) in Path(f"/proc/{pid}/cgroup").read_text(encoding="utf-8")
    except OSError:
        visible = False
    if not visible:
        reason = "the Docker daemon's PID namespace is not this one (remote or VM daemon)"
        if os.environ.get("AFTERSHOCK_REQUIRE_DOCKER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def _restart_count(container: Container) -> int:
    container.reload()
    return int(container.attrs["RestartCount"])


async def _fault_cycle(driver: DockerDriver, request: FaultRequest, container: Container) -> Handle:
    """prepare + inject, checking the handle names exactly this container."""
    handle = await driver.prepare(request)
    assert handle.resources == (container.id,)
    assert handle.undo["host"] == request.target.docker.host  # type: ignore[union-attr]
    assert handle.undo["names"] == [container.name]
    return await driver.inject(handle)


async def _revert_twice(driver: DockerDriver, handle: Handle, port: int) -> None:
    await driver.revert(handle)
    await asyncio.to_thread(_eventually, lambda: http_ok(port), "HTTP answers again")
    await driver.revert(handle)  # idempotent: already undone is success


def test_driver_satisfies_the_ports() -> None:
    drv = DockerDriver(ALLOW_TESTS)
    assert isinstance(drv, FaultDriver)
    assert isinstance(drv, ActionDriver)


async def test_kill_is_a_manual_stop_then_revert_restarts(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    port = free_port()
    web = container_factory("web", port=port, restart="always")
    request = _request(docker_host, "docker.kill", SignalParams(signal="SIGKILL"), names=[web.name])
    handle = await _fault_cycle(driver, request, web)
    assert handle.undo["signal"] == "SIGKILL"
    assert handle.undo["applied"] == [web.id]

    _eventually(lambda: _state(web)["Status"] == "exited", "the container exited")
    assert not http_ok(port)
    # The restart policy must not bring it back: Docker took the kill as a manual stop.
    await asyncio.sleep(1.5)
    assert _state(web)["Status"] == "exited"
    assert _restart_count(web) == 0

    await _revert_twice(driver, handle, port)
    assert _state(web)["Running"]


async def test_crash_fires_the_restart_policy(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    port = free_port()
    web = container_factory("web", port=port, restart="always")
    _require_host_pids(web)
    before = _restart_count(web)
    request = _request(docker_host, "docker.crash", SignalParams(), names=[web.name])
    handle = await _fault_cycle(driver, request, web)

    _eventually(lambda: _restart_count(web) > before, "the daemon restarted it")
    _eventually(lambda: http_ok(port), "HTTP answers after the automatic restart")
    await _revert_twice(driver, handle, port)
    assert _state(web)["Running"]


async def test_crash_without_restart_policy_stays_down_until_reverted(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    port = free_port()
    web = container_factory("web", port=port)
    _require_host_pids(web)
    request = _request(docker_host, "docker.crash", SignalParams(signal="KILL"), names=[web.name])
    handle = await _fault_cycle(driver, request, web)

    _eventually(lambda: _state(web)["Status"] == "exited", "the container exited")
    assert _state(web)["ExitCode"] == 137  # 128 + SIGKILL: killed from outside
    assert not http_ok(port)
    await _revert_twice(driver, handle, port)


async def test_stop_then_revert(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    port = free_port()
    web = container_factory("web", port=port)
    params = GraceParams(grace=timedelta(seconds=1))
    handle = await _fault_cycle(
        driver, _request(docker_host, "docker.stop", params, names=[web.name]), web
    )
    assert handle.undo["grace"] == 1

    assert _state(web)["Status"] == "exited"  # stop returns once the container is down
    assert not http_ok(port)
    await _revert_twice(driver, handle, port)


async def test_pause_then_revert(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    port = free_port()
    web = container_factory("web", port=port)
    handle = await _fault_cycle(
        driver, _request(docker_host, "docker.pause", names=[web.name]), web
    )

    assert _state(web)["Status"] == "paused"
    assert not http_ok(port, timeout=0.5)  # frozen: the connection hangs
    await _revert_twice(driver, handle, port)
    assert _state(web)["Status"] == "running"


async def test_restart_changes_the_start_time(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    port = free_port()
    web = container_factory("web", port=port)
    started = _state(web)["StartedAt"]
    params = GraceParams(grace=timedelta(seconds=1))
    handle = await _fault_cycle(
        driver, _request(docker_host, "docker.restart", params, names=[web.name]), web
    )

    assert _state(web)["StartedAt"] != started
    _eventually(lambda: http_ok(port), "HTTP answers after the restart")
    await _revert_twice(driver, handle, port)


async def test_revert_from_the_journal_record_in_a_new_driver(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    port = free_port()
    web = container_factory("web", port=port)
    handle = await _fault_cycle(driver, _request(docker_host, "docker.kill", names=[web.name]), web)
    _eventually(lambda: not http_ok(port), "HTTP stops answering")

    record = json.loads(json.dumps(handle.to_json()))
    fresh = DockerDriver(Allowlist())  # another process: no settings, no experiment
    try:
        await fresh.revert_from_journal(Handle.from_json(record))
        _eventually(lambda: http_ok(port), "HTTP answers again")
    finally:
        await fresh.aclose()


async def test_revert_of_a_removed_container_is_success(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    box = container_factory("box")
    handle = await _fault_cycle(
        driver, _request(docker_host, "docker.pause", names=[box.name]), box
    )
    box.remove(force=True)
    await driver.revert(handle)
    await driver.revert(handle)


async def test_same_seed_picks_the_same_container(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    for i in range(4):
        container_factory(f"n{i}", labels={"app": "seeded"})
    pattern = f"^{container_factory.prefix}-"
    picks = []
    for _ in range(2):
        handle = await driver.prepare(
            _request(docker_host, "docker.kill", seed=1234, pattern=pattern, pick=1)
        )
        picks.append(handle.resources)
    assert picks[0] == picks[1]
    assert len(picks[0]) == 1


async def test_percent_pick_of_four_takes_two(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    boxes = [container_factory(f"n{i}", labels={"app": "half"}) for i in range(4)]
    handle = await driver.prepare(
        _request(
            docker_host,
            "docker.pause",
            pattern=f"^{container_factory.prefix}-",
            labels={"app": "half"},
            pick="50%",
        )
    )
    assert len(handle.resources) == 2
    assert set(handle.resources) <= {b.id for b in boxes}
    # prepare changes nothing
    assert all(_state(b)["Status"] == "running" for b in boxes)


async def test_allowlist_refuses_containers_outside_it(
    docker_host: str, container_factory: ContainerFactory
) -> None:
    inside = container_factory("in", labels={"team": "shop", "tier": "web"})
    outside = container_factory("out", labels={"team": "shop", "tier": "db"})
    drv = DockerDriver(Allowlist(labels=({"tier": "web"},)))
    try:
        with capture_logs() as logs:
            handle = await drv.prepare(
                _request(
                    docker_host,
                    "docker.kill",
                    labels={"team": "shop", "aftershock.test": container_factory.prefix},
                )
            )
    finally:
        await drv.aclose()
    assert handle.resources == (inside.id,)
    assert handle.undo["refused"] == [outside.name]
    refusals = [e for e in logs if e["event"] == "docker.refused"]
    assert refusals
    assert refusals[0]["log_level"] == "warning"
    assert refusals[0]["target"] == "api"
    assert refusals[0]["containers"] == [outside.name]


async def test_own_container_is_never_picked(
    docker_host: str, container_factory: ContainerFactory
) -> None:
    own = container_factory("self")
    other = container_factory("other")
    drv = DockerDriver(ALLOW_TESTS, self_id=str(own.id)[:12])
    try:
        pattern = f"^{container_factory.prefix}-"
        for seed in range(8):
            handle = await drv.prepare(
                _request(docker_host, "docker.kill", seed=seed, pattern=pattern, pick=1)
            )
            assert handle.resources == (other.id,)
        assert handle.undo["own"] == [own.name]
        with pytest.raises(TargetNotFound, match="own container"):
            await drv.prepare(_request(docker_host, "docker.kill", names=[own.name]))
    finally:
        await drv.aclose()


@pytest.mark.parametrize("dead", ["unix:///tmp/nonexistent.sock", "tcp://127.0.0.1:1"])
async def test_unreachable_daemon_is_driver_unavailable(driver: DockerDriver, dead: str) -> None:
    with stamina.set_testing(True, attempts=2), pytest.raises(DriverUnavailable) as info:
        await driver.prepare(_request(dead, "docker.kill", names=["api"]))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("api: ")
    assert dead in message
    assert isinstance(info.value.__cause__, docker.errors.DockerException)


async def test_missing_container_is_target_not_found(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    ghost = f"{container_factory.prefix}-ghost"
    with pytest.raises(TargetNotFound, match=ghost):
        await driver.prepare(_request(docker_host, "docker.kill", names=[ghost]))


async def test_fault_on_a_stopped_container_is_target_not_found(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    box = container_factory("box")
    box.kill()
    _eventually(lambda: _state(box)["Status"] == "exited", "the container exited")
    with pytest.raises(TargetNotFound, match="not running"):
        await driver.prepare(_request(docker_host, "docker.pause", names=[box.name]))


def _default_params(action: str) -> Spec:
    entry = ACTION_TYPES.get(action)
    return NoParams() if entry is None else entry.params()


def _action(
    host: str,
    action: str,
    params: Spec | None = None,
    *,
    dry_run: bool = False,
    **selector: Any,
) -> ActionRequest:
    return ActionRequest(
        action=action,
        target_name="api",
        target=_target(host, **selector),
        params=params or _default_params(action),
        dry_run=dry_run,
    )


async def test_action_start(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    port = free_port()
    web = container_factory("web", port=port)
    web.stop(timeout=1)
    assert await driver.act(_action(docker_host, "docker.start", names=[web.name])) == [web.name]
    assert _state(web)["Running"]
    _eventually(lambda: http_ok(port), "HTTP answers")
    # Already running: nothing to do, and no error.
    assert await driver.act(_action(docker_host, "docker.start", names=[web.name])) == []


async def test_action_restart(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    port = free_port()
    web = container_factory("web", port=port)
    started = _state(web)["StartedAt"]
    # httpd as pid 1 ignores SIGTERM: a short grace keeps the test fast.
    quick = GraceParams(grace=timedelta(seconds=1))
    assert await driver.act(_action(docker_host, "docker.restart", quick, names=[web.name])) == [
        web.name
    ]
    assert _state(web)["StartedAt"] != started
    _eventually(lambda: http_ok(port), "HTTP answers")


async def test_action_unpause(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    port = free_port()
    web = container_factory("web", port=port)
    web.pause()
    assert await driver.act(_action(docker_host, "docker.unpause", names=[web.name])) == [web.name]
    assert _state(web)["Status"] == "running"
    _eventually(lambda: http_ok(port), "HTTP answers")


async def test_action_dry_run_acts_on_nothing(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    boxes = [container_factory(f"n{i}") for i in range(2)]
    for box in boxes:
        box.stop(timeout=0)
    pattern = f"^{container_factory.prefix}-"
    names = await driver.act(_action(docker_host, "docker.start", dry_run=True, pattern=pattern))
    assert sorted(names) == sorted(str(b.name) for b in boxes)
    assert all(_state(b)["Status"] == "exited" for b in boxes)


async def test_daemon_refusing_the_fault_is_fault_injection_failed(
    driver: DockerDriver, docker_host: str, container_factory: ContainerFactory
) -> None:
    box = container_factory("box")
    handle = await driver.prepare(_request(docker_host, "docker.kill", names=[box.name]))
    # A journal record from elsewhere may carry what this daemon does not accept.
    with pytest.raises(FaultInjectionFailed, match="api: Docker daemon") as info:
        await driver.inject(handle.with_undo(signal="SIGNOPE"))
    assert isinstance(info.value.__cause__, docker.errors.APIError)
    assert _state(box)["Running"]


async def test_revert_that_cannot_start_the_container_is_revert_failed(
    driver: DockerDriver,
    docker_host: str,
    container_factory: ContainerFactory,
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    mount = docker.types.Mount(target="/data", source=str(data), type="bind")
    box = container_factory("box", mounts=[mount])
    params = GraceParams(grace=timedelta(seconds=0))
    handle = await _fault_cycle(
        driver, _request(docker_host, "docker.stop", params, names=[box.name]), box
    )
    data.rmdir()  # a bind mount whose source is gone: the daemon refuses to start it
    with pytest.raises(RevertFailed, match="api: could not restore") as info:
        await driver.revert(handle)
    assert "\n" not in str(info.value)
    data.mkdir()
    await driver.revert(handle)  # the journal keeps it; a later revert succeeds
    assert _state(box)["Running"]
