"""CommandProbeAdapter against real processes."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aftershock.model.probes import CommandProbe
from aftershock.model.secrets import Secret
from aftershock.ports import Probe
from aftershock.probes import CommandProbeAdapter
from aftershock.probes.command import OUTPUT_LIMIT

pytestmark = pytest.mark.timeout(30)

MARGIN = 1.0  # process start-up on a loaded machine


def py(code: str, **fields: Any) -> CommandProbe:
    return CommandProbe.model_validate({"command": [sys.executable, "-c", code], **fields})


def gone(pid: int) -> bool:
    """The process no longer runs (absent, or a zombie awaiting its new parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in {"Z", "X"}


def reaped(pid: int) -> bool:
    """No trace of the process is left, not even a zombie."""
    return not Path(f"/proc/{pid}").exists()


async def wait_gone(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        await asyncio.sleep(0.02)
    return gone(pid)


async def test_exit_zero_is_ok() -> None:
    probe = CommandProbeAdapter(py("pass"))
    assert isinstance(probe, Probe)
    result = await probe.check()
    assert result.ok
    assert result.status == 0
    assert result.detail == ""
    assert result.latency > 0


async def test_exit_code_mismatch_quotes_stderr() -> None:
    code = "import sys; sys.stderr.write('database   unreachable\\n'); sys.exit(3)"
    result = await CommandProbeAdapter(py(code)).check()
    assert not result.ok
    assert result.status == 3
    assert result.detail == "exit code 3, expected 0: database unreachable"


async def test_expected_nonzero_exit_code() -> None:
    result = await CommandProbeAdapter(py("raise SystemExit(2)", exitCode=2)).check()
    assert result.ok
    assert result.status == 2


async def test_stdout_regex() -> None:
    code = "print('replication lag: 3s')"
    assert (await CommandProbeAdapter(py(code, stdout=r"lag: \d+s")).check()).ok
    result = await CommandProbeAdapter(py(code, stdout=r"lag: 0s")).check()
    assert not result.ok
    assert result.status == 0
    assert result.detail == "stdout (20 bytes) does not match /lag: 0s/: replication lag: 3s"


async def test_output_is_bounded_and_drained() -> None:
    # Far more than a pipe buffer: the child only exits if we keep reading.
    code = "import sys; sys.stdout.write('a' * 5_000_000 + 'TAIL')"
    result = await CommandProbeAdapter(py(code, stdout="^a+$")).check()
    assert result.ok
    result = await CommandProbeAdapter(py(code, stdout="TAIL")).check()
    assert not result.ok
    assert result.detail.startswith(f"stdout ({OUTPUT_LIMIT} bytes)")


async def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # A wrapper and its child: both must die, or the child would keep the pipes open.
    code = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    result = await CommandProbeAdapter(py(code, timeout="1s")).check()
    elapsed = time.monotonic() - started
    assert not result.ok
    assert result.status is None
    assert result.detail == "timed out after 1s; process killed"
    assert elapsed < 1.0 + MARGIN
    wrapper, child = map(int, pids.read_text().split())
    assert reaped(wrapper)  # killed and reaped by the probe
    assert await wait_gone(child)  # its child died with the process group


async def test_missing_command() -> None:
    result = await CommandProbeAdapter(CommandProbe(command=["no-such-command-xyz", "-v"])).check()
    assert not result.ok
    assert result.status is None
    assert result.detail == "command not found: no-such-command-xyz"


async def test_missing_working_directory(tmp_path: Path) -> None:
    cwd = str(tmp_path / "absent")
    result = await CommandProbeAdapter(py("pass", cwd=cwd)).check()
    assert not result.ok
    assert result.detail == f"working directory not found: {cwd}"


async def test_nul_byte_in_argv() -> None:
    result = await CommandProbeAdapter(CommandProbe(command=["ec\x00ho"])).check()
    assert not result.ok
    assert result.detail == "command could not start: ec\x00ho: embedded null byte"


async def test_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    result = await CommandProbeAdapter(CommandProbe(command=[str(script)])).check()
    assert not result.ok
    assert result.detail == f"command not executable: {script}"


async def test_cwd_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERSHOCK_INHERITED", "from-parent")
    code = (
        "import os; print(os.getcwd(), os.environ['AFTERSHOCK_INHERITED'], "
        "os.environ['TOKEN'], os.environ['PLAIN'])"
    )
    probe = py(
        code,
        cwd=str(tmp_path),
        env={"TOKEN": Secret("s3cr3t-token"), "PLAIN": "p"},
        stdout=f"^{tmp_path} from-parent s3cr3t-token p$",
    )
    result = await CommandProbeAdapter(probe).check()
    assert result.ok, result.detail
    assert os.environ.get("TOKEN") != "s3cr3t-token"  # our own environment is untouched


async def test_secrets_never_reach_the_detail() -> None:
    code = "import os, sys; print('token is', os.environ['TOKEN'], file=sys.stderr); sys.exit(1)"
    probe = py(code, env={"TOKEN": Secret("s3cr3t-token")})
    result = await CommandProbeAdapter(probe).check()
    assert not result.ok
    assert result.detail == "exit code 1, expected 0: token is ***"
    code = "import os; print('token is', os.environ['TOKEN'])"
    probe = py(code, env={"TOKEN": Secret("s3cr3t-token")}, stdout="healthy")
    result = await CommandProbeAdapter(probe).check()
    assert not result.ok
    assert result.detail == "stdout (22 bytes) does not match /healthy/: token is ***"


async def test_killed_by_signal() -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    result = await CommandProbeAdapter(py(code)).check()
    assert not result.ok
    assert result.status == -15
    assert result.detail == "killed by signal 15, expected 0"


async def test_cancelled_check_leaves_no_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    task = asyncio.create_task(CommandProbeAdapter(py(code, timeout="30s")).check())
    for _ in range(300):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reaped(int(pid_file.read_text()))
