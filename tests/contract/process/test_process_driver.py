"""ProcessDriver against real processes: a tiny HTTP server that aftershock supervises."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, suppress
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Literal

import pytest

from aftershock.drivers.process import ProcessDriver, read_stat
from aftershock.errors import DriverUnavailable, FaultInjectionFailed, TargetNotFound
from aftershock.model.actions import ACTION_TYPES
from aftershock.model.base import Spec
from aftershock.model.faults import FaultType, fault_type
from aftershock.model.params import GraceParams, NoParams, SignalParams
from aftershock.model.secrets import Secret
from aftershock.model.targets import ProcessTarget, TargetKind, TargetSpec
from aftershock.ports import ActionDriver, ActionRequest, FaultDriver, FaultRequest, Handle

Answer = Literal["ok", "refused", "timeout"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def ask(port: int, wait: float = 1.0) -> Answer:
    """One HTTP request: did it answer, was it refused, or did it hang?"""
    try:
        async with asyncio.timeout(wait):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                await writer.drain()
                status = await reader.readline()
            finally:
                writer.close()
                with suppress(OSError):
                    await writer.wait_closed()
    except TimeoutError:
        return "timeout"
    except ConnectionError:
        return "refused"
    assert status.startswith(b"HTTP/1.0 200"), status
    return "ok"


def state(pid: int) -> str | None:
    stat = read_stat(pid)
    return None if stat is None else stat.state


def gone(pid: int) -> bool:
    # An orphan re-parented to a PID 1 that does not reap stays a zombie: dead all the same.
    return state(pid) in {None, "Z", "X"}


def server(port: int, cwd: Path, **extra: object) -> ProcessTarget:
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    return ProcessTarget.model_validate(
        {"command": argv, "cwd": str(cwd), "ready": f"127.0.0.1:{port}", **extra}
    )


def fault(name: str, target: ProcessTarget, params: Spec | None = None) -> FaultRequest:
    entry = fault_type(name)
    return FaultRequest(
        run_id="run-1",
        step=name.split(".")[1],
        fault=entry,
        target_name="web",
        target=TargetSpec(process=target),
        params=params or entry.params(),
    )


def action(name: str, target: ProcessTarget, *, dry_run: bool = False) -> ActionRequest:
    return ActionRequest(
        action=name,
        target_name="web",
        target=TargetSpec(process=target),
        params=ACTION_TYPES[name].params() if name in ACTION_TYPES else NoParams(),
        dry_run=dry_run,
    )


class Web:
    """A supervised HTTP server and the pids it has had (checked gone at teardown)."""

    def __init__(self, driver: ProcessDriver, target: ProcessTarget, port: int) -> None:
        self.driver, self.target, self.port = driver, target, port
        self.pids: set[int] = set()

    @property
    def pid(self) -> int:
        pid = self.driver.pid("web")
        assert pid is not None
        self.pids.add(pid)
        return pid

    async def apply(self, name: str, params: Spec | None = None) -> Handle:
        handle = await self.driver.prepare(fault(name, self.target, params))
        self.pids.add(int(handle.undo["pid"]))
        return await self.driver.inject(handle)


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[Web]:
    port = free_port()
    target = server(port, tmp_path, env={"AFTERSHOCK_TOKEN": Secret("hunter2")})
    driver = ProcessDriver({"web": target}, log_dir=tmp_path / "logs")
    async with AsyncExitStack() as stack:
        await driver.start(stack)
        w = Web(driver, target, port)
        _ = w.pid
        yield w
        w.pids.update(p for p in [driver.pid("web")] if p is not None)
    assert driver.status("web") == "exited"
    assert all(gone(pid) for pid in w.pids), "a supervised process outlived the driver"


def test_the_driver_fits_both_ports() -> None:
    driver = ProcessDriver()
    assert isinstance(driver, FaultDriver)
    assert isinstance(driver, ActionDriver)


async def test_started_and_ready(web: Web, tmp_path: Path) -> None:
    assert await ask(web.port) == "ok"
    assert web.driver.status("web") == "running"
    assert web.driver.restarts("web") == 0
    stat = read_stat(web.pid)
    assert stat is not None
    assert stat.pgrp == web.pid  # its own process group: our signals never hit pytest
    assert os.getpgrp() != web.pid
    environ = (await asyncio.to_thread(Path(f"/proc/{web.pid}/environ").read_bytes)).split(b"\0")
    assert b"AFTERSHOCK_TOKEN=hunter2" in environ  # the secret is revealed to the process only
    assert "aftershock: start 1" in (tmp_path / "logs" / "web.log").read_text()


async def test_kill_and_revert(web: Web) -> None:
    old = web.pid
    handle = await web.apply("process.kill", SignalParams())
    assert handle.resources == (f"pid:{old}",)
    assert handle.undo["signal"] == "SIGKILL"
    assert gone(old)
    assert web.driver.status("web") == "exited"
    assert await ask(web.port) == "refused"

    await web.driver.revert(handle)
    assert await ask(web.port) == "ok"
    assert web.pid != old
    assert web.driver.restarts("web") == 1
    await web.driver.revert(handle)  # idempotent: already running
    assert web.driver.restarts("web") == 1


async def test_kill_with_sigterm(web: Web) -> None:
    handle = await web.apply("process.kill", SignalParams(signal="TERM"))
    assert handle.undo["signal"] == "SIGTERM"
    for _ in range(100):
        if web.driver.status("web") == "exited":
            break
        await asyncio.sleep(0.05)
    assert await ask(web.port) == "refused"
    await web.driver.revert(handle)
    assert await ask(web.port) == "ok"


async def test_stop_and_revert(web: Web) -> None:
    handle = await web.apply("process.stop")
    pid = int(handle.undo["pid"])
    assert handle.undo["signal"] == "SIGSTOP"
    assert state(pid) == "T"
    assert web.driver.status("web") == "stopped"
    assert await ask(web.port, wait=0.5) == "timeout"  # the kernel accepts; no one answers

    await web.driver.revert(handle)
    assert state(pid) != "T"
    assert await ask(web.port) == "ok"
    assert web.pid == pid  # the same process, resumed
    await web.driver.revert(handle)  # idempotent: already resumed


async def test_stop_is_cleaned_up_on_exit(web: Web) -> None:
    await web.apply("process.stop")
    # the fixture's teardown must still end the stopped process (SIGTERM + SIGCONT)


async def test_restart_and_revert(web: Web) -> None:
    old = web.pid
    handle = await web.apply("process.restart", GraceParams(grace=timedelta(seconds=3)))
    assert handle.resources == (f"pid:{old}",)  # stable, so the journal key stays the same
    assert handle.undo["grace"] == 3.0
    new = int(handle.undo["new_pid"])
    assert new != old
    assert web.pid == new
    assert gone(old)
    assert await ask(web.port) == "ok"
    assert web.driver.restarts("web") == 1
    await web.driver.revert(handle)
    await web.driver.revert(handle)
    assert web.pid == new


async def test_restart_kills_after_grace_when_sigterm_is_ignored(tmp_path: Path) -> None:
    port = free_port()
    script = textwrap.dedent(
        """
        import signal, sys
        from http.server import HTTPServer, SimpleHTTPRequestHandler
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        HTTPServer(("127.0.0.1", int(sys.argv[1])), SimpleHTTPRequestHandler).serve_forever()
        """
    )
    target = ProcessTarget(
        command=[sys.executable, "-c", script, str(port)],
        cwd=str(tmp_path),
        ready=f"127.0.0.1:{port}",
    )
    driver = ProcessDriver({"web": target})
    async with AsyncExitStack() as stack:
        await driver.start(stack)
        old = driver.pid("web")
        assert old is not None
        loop = asyncio.get_running_loop()
        began = loop.time()
        handle = await driver.prepare(
            fault("process.restart", target, GraceParams(grace=timedelta(milliseconds=300)))
        )
        handle = await driver.inject(handle)
        assert loop.time() - began >= 0.3
        assert gone(old)
        assert int(handle.undo["new_pid"]) == driver.pid("web") != old
        assert await ask(port) == "ok"
        new = driver.pid("web")
    assert new is not None
    assert gone(new)  # SIGTERM ignored at exit too: SIGKILL after the shutdown grace


async def test_handles_are_json_and_carry_no_secret(web: Web) -> None:
    handle = await web.driver.prepare(fault("process.stop", web.target))
    text = json.dumps(handle.to_json())
    assert "hunter2" not in text
    assert handle.undo["env_keys"] == ["AFTERSHOCK_TOKEN"]
    assert handle.undo["command"] == web.target.command
    assert handle.undo["cwd"] == web.target.cwd
    assert Handle.from_json(json.loads(text)) == handle
    assert state(web.pid) != "T"  # prepare changes nothing


async def test_revert_from_the_journal_in_a_new_driver(web: Web) -> None:
    handle = await web.apply("process.stop")
    record = json.loads(json.dumps(handle.to_json()))

    fresh = ProcessDriver()  # no targets, no supervisor state
    async with AsyncExitStack() as stack:
        await fresh.start(stack)
        await fresh.revert(Handle.from_json(record))
        assert await ask(web.port) == "ok"
        await fresh.revert(Handle.from_json(record))  # idempotent

    # a kill cannot be undone without the supervisor: success, nothing to undo
    killed = await web.apply("process.kill")
    await ProcessDriver().revert(Handle.from_json(json.loads(json.dumps(killed.to_json()))))
    assert web.driver.status("web") == "exited"
    await web.driver.revert(killed)  # the supervisor can
    assert await ask(web.port) == "ok"


_ORPHAN_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from contextlib import AsyncExitStack, suppress
    from aftershock.drivers.process import ProcessDriver
    from aftershock.model.faults import PROCESS_STOP
    from aftershock.model.params import NoParams
    from aftershock.model.targets import ProcessTarget, TargetSpec
    from aftershock.ports import FaultRequest

    async def main() -> None:
        port = sys.argv[1]
        argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", port]
        target = ProcessTarget(command=argv, ready=f"127.0.0.1:{port}", cwd=sys.argv[2])
        driver = ProcessDriver({"web": target})
        await driver.start(AsyncExitStack())
        request = FaultRequest(run_id="r", step="freeze", fault=PROCESS_STOP,
                               target_name="web", target=TargetSpec(process=target),
                               params=NoParams())
        handle = await driver.inject(await driver.prepare(request))
        print(json.dumps(handle.to_json()), flush=True)
        await asyncio.sleep(120)

    asyncio.run(main())
    """
)


async def test_sigcont_reaches_a_stopped_orphan_after_aftershock_died(tmp_path: Path) -> None:
    port = free_port()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _ORPHAN_SCRIPT,
        str(port),
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
    )
    orphan: Handle | None = None
    try:
        async with asyncio.timeout(30):
            line = await child.stdout.readline() if child.stdout else b""
        orphan = Handle.from_json(json.loads(line))
    finally:
        child.kill()  # the "aftershock" that supervised the server dies without cleanup
        await child.communicate()
    pid, starttime = int(orphan.undo["pid"]), int(orphan.undo["starttime"])
    try:
        assert state(pid) == "T"
        assert await ask(port, wait=0.5) == "timeout"
        await ProcessDriver().revert(orphan)
        assert await ask(port) == "ok"
    finally:
        stat = read_stat(pid)
        if stat is not None and stat.starttime == starttime:
            os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            if gone(pid):
                break
            await asyncio.sleep(0.05)
    assert gone(pid)


async def test_a_reused_pid_is_never_signalled(web: Web) -> None:
    handle = await web.driver.prepare(fault("process.stop", web.target))
    wrong = handle.with_undo(starttime=int(handle.undo["starttime"]) + 1)
    with pytest.raises(FaultInjectionFailed, match="gone"):
        await web.driver.inject(wrong)
    assert state(web.pid) != "T"

    applied = await web.driver.inject(handle)
    await web.driver.revert(applied.with_undo(starttime=int(handle.undo["starttime"]) + 1))
    assert state(web.pid) == "T"  # the "other" process was left alone
    await web.driver.revert(applied)
    assert await ask(web.port) == "ok"


async def test_actions(web: Web) -> None:
    first = web.pid
    driver, target = web.driver, web.target
    assert await driver.act(action("process.start", target)) == [f"pid:{first}"]

    await web.apply("process.stop")
    assert await driver.act(action("process.resume", target, dry_run=True)) == [f"pid:{first}"]
    assert driver.status("web") == "stopped"
    assert await driver.act(action("process.resume", target)) == [f"pid:{first}"]
    assert driver.status("web") == "running"
    assert await driver.act(action("process.resume", target)) == [f"pid:{first}"]

    assert await driver.act(action("process.restart", target, dry_run=True)) == [f"pid:{first}"]
    assert web.pid == first
    (restarted,) = await driver.act(action("process.restart", target))
    assert restarted == f"pid:{web.pid}" != f"pid:{first}"
    assert driver.restarts("web") == 1

    await web.apply("process.kill")
    assert await driver.act(action("process.start", target, dry_run=True)) == ["process:web"]
    assert driver.status("web") == "exited"
    with pytest.raises(TargetNotFound, match="nothing to resume"):
        await driver.act(action("process.resume", target))
    (started,) = await driver.act(action("process.start", target))
    assert started == f"pid:{web.pid}"
    assert driver.status("web") == "running"
    assert driver.restarts("web") == 2
    assert await ask(web.port) == "ok"
    with pytest.raises(FaultInjectionFailed, match="unknown action"):
        await driver.act(action("process.explode", target))


async def test_a_missing_command_is_a_one_line_error_naming_the_target(tmp_path: Path) -> None:
    target = ProcessTarget(command=["/nonexistent/aftershock-no-such-program", "--flag"])
    driver = ProcessDriver({"ghost": target}, log_dir=tmp_path)
    async with AsyncExitStack() as stack:
        with pytest.raises(FaultInjectionFailed) as caught:
            await driver.start(stack)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("ghost: cannot start /nonexistent/aftershock-no-such-program")
    assert "No such file or directory" in message
    assert caught.value.target == "ghost"


async def test_a_process_that_dies_before_ready_shows_its_log(tmp_path: Path) -> None:
    port = free_port()
    script = "import sys; print('boom: config missing', flush=True); sys.exit(3)"
    target = ProcessTarget(command=[sys.executable, "-c", script], ready=f"127.0.0.1:{port}")
    driver = ProcessDriver({"crashy": target}, log_dir=tmp_path)
    async with AsyncExitStack() as stack:
        with pytest.raises(FaultInjectionFailed) as caught:
            await driver.start(stack)
    message = str(caught.value)
    assert "\n" not in message
    assert "crashy: exited with code 3" in message
    assert "boom: config missing" in message


async def test_a_process_that_never_listens_is_unavailable(tmp_path: Path) -> None:
    port = free_port()
    target = ProcessTarget(
        command=[sys.executable, "-c", "import time; time.sleep(60)"], ready=f"127.0.0.1:{port}"
    )
    driver = ProcessDriver({"mute": target}, ready_timeout=0.5)
    async with AsyncExitStack() as stack:
        with pytest.raises(DriverUnavailable, match=r"^mute: 127\.0\.0\.1:\d+ refused") as caught:
            await driver.start(stack)
        assert "\n" not in str(caught.value)
        assert driver.status("mute") == "exited"  # the half-started process was ended


async def test_unknown_targets_and_faults(tmp_path: Path) -> None:
    driver = ProcessDriver()
    with pytest.raises(TargetNotFound):
        await driver.ensure_started("nobody")
    assert driver.status("nobody") == "exited"
    assert driver.pid("nobody") is None
    target = server(free_port(), tmp_path)
    melt = FaultType("process.melt", TargetKind.PROCESS, NoParams, "not in the catalog")
    request = replace(fault("process.kill", target), fault=melt, params=NoParams())
    with pytest.raises(FaultInjectionFailed, match="unknown fault"):
        await driver.prepare(request)


async def test_ensure_started_is_idempotent_and_concurrency_safe(tmp_path: Path) -> None:
    port = free_port()
    driver = ProcessDriver()
    target = server(port, tmp_path)
    async with AsyncExitStack() as stack:
        await driver.start(stack)
        pids = await asyncio.gather(*(driver.ensure_started("web", target) for _ in range(4)))
        assert len(set(pids)) == 1
        assert driver.restarts("web") == 0
        assert driver.pid("web") == pids[0]
    assert gone(pids[0])


async def test_prepare_starts_nothing_and_inject_starts_what_it_acts_on(tmp_path: Path) -> None:
    # A dry run prepares without starting the drivers: nothing may be left running.
    port = free_port()
    target = server(port, tmp_path)
    driver = ProcessDriver({"web": target})
    handle = await driver.prepare(fault("process.stop", target))
    assert handle.resources == ("process:web",)
    assert driver.status("web") == "exited"
    assert await ask(port) == "refused"
    async with AsyncExitStack() as stack:
        stack.push_async_callback(driver.aclose)
        stopped = await driver.inject(handle)
        pid = int(stopped.undo["pid"])
        assert stopped.resources == (f"pid:{pid}",)
        assert driver.status("web") == "stopped"
        await driver.revert(stopped)
        assert await ask(port) == "ok"
    assert gone(pid)
