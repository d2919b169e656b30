"""A command's process: no cyclic collection while it starts, the collector on for its work.

Each case runs in its own interpreter: the switch is process-wide.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "experiments" / "toxiproxy-latency.yaml"


def _python(code: str, tmp_path: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=tmp_path,
        env={"AFTERSHOCK_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    last: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return last


def test_the_switch(tmp_path: Path) -> None:
    seen = _python(
        """
        import gc, json
        from aftershock.cli import startup
        startup.started()  # not paused: does nothing
        untouched = gc.isenabled() and gc.get_freeze_count() == 0
        startup.starting()
        paused = not gc.isenabled()
        junk = [object() for _ in range(10_000)]
        startup.started()
        frozen = gc.get_freeze_count()
        startup.started()  # once only
        print(json.dumps({"untouched": untouched, "paused": paused, "frozen": frozen,
                          "again": gc.get_freeze_count(), "enabled": gc.isenabled()}))
        """,
        tmp_path,
    )
    assert seen["untouched"]
    assert seen["paused"]
    assert seen["frozen"] >= 10_000
    assert seen["again"] == seen["frozen"]
    assert seen["enabled"]


def test_a_collector_someone_else_turned_off_stays_theirs(tmp_path: Path) -> None:
    seen = _python(
        """
        import gc, json
        from aftershock.cli import startup
        gc.disable()
        startup.starting()
        startup.started()
        print(json.dumps({"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}))
        """,
        tmp_path,
    )
    assert seen == {"enabled": False, "frozen": 0}


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "--no-allowlist", str(EXAMPLE)],
        ["schema"],
        ["history"],
    ],
    ids=["validate", "schema", "history"],
)
def test_a_command_starts_without_a_full_collection(tmp_path: Path, argv: list[str]) -> None:
    """Before: a full collection every few dozen modules imported; now none at all.

    At exit the collector is on (the command's work was collected) and the
    heap it started with is frozen (the interpreter's last collections skip it).
    """
    seen = _python(
        f"""
        import atexit, gc, json, sys
        full = []
        gc.callbacks.append(
            lambda phase, info: phase == "start" and info["generation"] == 2 and full.append(1)
        )

        def report():  # registered before main(): runs after the command's own exit hook
            print()
            print(json.dumps({{"full": len(full), "enabled": gc.isenabled(),
                              "frozen": gc.get_freeze_count()}}))

        atexit.register(report)
        sys.argv = ["aftershock", *{argv!r}]
        from aftershock.cli.main import main
        main()
        """,
        tmp_path,
    )
    assert seen["full"] == 0
    assert seen["enabled"]
    assert seen["frozen"] > 20_000
