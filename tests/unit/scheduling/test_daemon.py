"""The schedule daemon over a real directory, on a manual clock with a fake run; and
cancelling a real run (``runtime.run_experiment``) rolls its faults back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aftershock.clock import ManualClock
from aftershock.journal.ledger import Ledger
from aftershock.model.results import RunStatus
from aftershock.model.targets import TargetKind
from aftershock.runtime import run_experiment, set_lever
from aftershock.scheduling import SCHEDULE_LOG, run_schedule
from aftershock.testing import FakeDriver, FakeProbe
from tests.unit.scheduling.helpers import FakeRun, experiment, settings

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)

EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: {name}}}
spec:
  schedule: {{cron: "{cron}"{extra}}}
  targets:
    db: {{toxiproxy: {{api: http://127.0.0.1:8474, proxy: pg}}}}
  method:
    - {{name: slow, fault: toxiproxy.latency, target: db, with: {{latency: 300ms}}, for: 10s}}
"""


def write(path: Path, name: str = "minutely", cron: str = "* * * * *", extra: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(EXPERIMENT.format(name=name, cron=cron, extra=extra))


@dataclass
class Daemon:
    clock: ManualClock
    run: FakeRun
    home: Path
    lines: list[str] = field(default_factory=list)

    def log(self) -> list[dict[str, Any]]:
        path = self.home / SCHEDULE_LOG
        return [json.loads(line) for line in path.read_text().splitlines()]

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.log() if r["event"] == kind]


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    clock = ManualClock()
    d = Daemon(clock, FakeRun(clock), settings(tmp_path).home)
    d.home.mkdir(parents=True)
    (tmp_path / "exps").mkdir()
    write(tmp_path / "exps" / "team-a" / "minutely.yaml")
    (tmp_path / "exps" / "broken.yaml").write_text("kind: Experiment\nspec: [\n")
    write(tmp_path / "exps" / "adhoc.yaml", name="adhoc")
    adhoc = tmp_path / "exps" / "adhoc.yaml"
    adhoc.write_text("\n".join(x for x in adhoc.read_text().splitlines() if "schedule" not in x))
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_schedule(
            tmp_path / "exps",
            settings=settings(tmp_path),
            stop=stop,
            clock=clock,
            reload_every=2.0,
            run=d.run,
            echo=d.lines.append,
        )
    )
    await clock.advance(0)
    yield d
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def test_loads_scheduled_experiments_and_reports_bad_files(daemon: Daemon) -> None:
    assert any(line.startswith("scheduled minutely (") for line in daemon.lines)
    assert any(
        "next run 2026-01-05 00:01:00 UTC (2026-01-05T00:01:00+00:00)" in line
        for line in daemon.lines
    )
    assert not any("adhoc" in line for line in daemon.lines)  # no schedule: not a job
    assert any(line.startswith("problem: ") and "broken.yaml" in line for line in daemon.lines)
    await daemon.clock.advance(61)
    assert [key for key, _ in daemon.run.starts] == ["minutely"]
    (loaded,) = daemon.events("schedule.loaded")
    assert (loaded["key"], loaded["cron"]) == ("minutely", "* * * * *")
    (fire,) = daemon.events("schedule.fire")
    assert (fire["key"], fire["decision"]) == ("minutely", "run")
    (done,) = daemon.events("schedule.finished")
    assert done["status"] == "passed"
    assert daemon.events("schedule.problem")


async def test_reloads_changed_files_and_unschedules_deleted_ones(
    daemon: Daemon, tmp_path: Path
) -> None:
    path = tmp_path / "exps" / "team-a" / "minutely.yaml"
    write(path, extra=", suspend: true")
    await daemon.clock.advance(2.5)
    assert len(daemon.events("schedule.loaded")) == 2
    await daemon.clock.advance(60)
    assert daemon.run.starts == []
    assert daemon.events("schedule.fire")[-1]["reason"] == "suspended"

    write(tmp_path / "exps" / "hourly.yaml", name="hourly", cron="0 * * * *")
    path.unlink()
    await daemon.clock.advance(2.5)
    assert "unscheduled minutely" in daemon.lines
    (removed,) = daemon.events("schedule.removed")
    assert removed["key"] == "minutely"
    assert removed["at"].startswith("2026-01-05T00:01:0")  # simulated time of the reload
    await daemon.clock.advance(3600)
    assert [key for key, _ in daemon.run.starts] == ["hourly"]


async def test_a_file_that_breaks_keeps_its_last_valid_version(
    daemon: Daemon, tmp_path: Path
) -> None:
    path = tmp_path / "exps" / "team-a" / "minutely.yaml"
    path.write_text(path.read_text().replace("method:", "mehtod:"))
    await daemon.clock.advance(2.5)
    assert any("minutely.yaml" in line and "mehtod" in line for line in daemon.lines)
    assert "unscheduled minutely" not in daemon.lines
    await daemon.clock.advance(60)
    assert [key for key, _ in daemon.run.starts] == ["minutely"]


async def test_the_kill_switch_is_honoured(daemon: Daemon, tmp_path: Path) -> None:
    set_lever(settings(tmp_path), engaged=True)
    await daemon.clock.advance(61)
    assert daemon.run.starts == []
    assert daemon.events("schedule.fire")[-1]["reason"] == "kill-switch"
    assert any("kill-switch" in line for line in daemon.lines)


async def test_a_duplicate_name_is_reported_once(daemon: Daemon, tmp_path: Path) -> None:
    write(tmp_path / "exps" / "team-b" / "copy.yaml")
    await daemon.clock.advance(2.5)
    assert any("also in" in line and "copy.yaml" in line for line in daemon.lines)


async def test_cancelling_a_real_run_rolls_its_faults_back(tmp_path: Path) -> None:
    clock = ManualClock()
    driver = FakeDriver(TargetKind.TOXIPROXY)
    probe = FakeProbe(lambda _t: True, clock)
    exp = experiment({"cron": "* * * * *"})
    task = asyncio.create_task(
        run_experiment(
            exp,
            settings=settings(tmp_path),
            clock=clock,
            drivers={TargetKind.TOXIPROXY: driver},
            probes={"web": probe},
        )
    )
    for _ in range(100):
        await clock.advance(0.1)
        if driver.applied:
            break
    assert driver.applied
    task.cancel()
    for _ in range(100):
        await clock.advance(0.1)
        if task.done():
            break
    with pytest.raises(asyncio.CancelledError):
        await task
    assert driver.applied == {}
    assert [op for op, _ in driver.calls].count("revert") == 1
    (recorded,) = Ledger(settings(tmp_path).home / "ledger.sqlite3").runs()
    assert recorded.status is RunStatus.INTERRUPTED
