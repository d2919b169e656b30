"""Shared builders for the scheduler tests: experiments, settings, and fake run callables."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

from aftershock.clock import ManualClock
from aftershock.model.experiment import Experiment
from aftershock.model.results import RunStatus
from aftershock.scheduling import ChaosScheduler
from aftershock.settings import Settings

DAY = 86400.0
WEEK = 7 * DAY


def experiment(
    schedule: dict[str, Any], *, name: str = "weekly", budget: dict[str, Any] | None = None
) -> Experiment:
    spec: dict[str, Any] = {
        "schedule": schedule,
        "targets": {"db": {"toxiproxy": {"api": "http://127.0.0.1:8474", "proxy": "pg"}}},
        "probes": {"web": {"http": {"url": "http://127.0.0.1:8080/"}, "every": "1s"}},
        "slo": {"avail": {"probe": "web", "objective": "99%", "window": "7d"}},
        "method": [
            {
                "name": "slow",
                "fault": "toxiproxy.latency",
                "target": "db",
                "with": {"latency": "300ms"},
                "for": "10s",
            }
        ],
    }
    if budget is not None:
        spec["budget"] = budget
    return Experiment.model_validate(
        {
            "apiVersion": "aftershock.dev/v1alpha1",
            "kind": "Experiment",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


class FakeRun:
    """A run callable that takes ``duration`` seconds of the manual clock.

    On cancellation it "rolls back" for ``rollback`` seconds first, as the real
    run does through ``Runner.interrupt()``.
    """

    def __init__(
        self,
        clock: ManualClock,
        *,
        duration: float = 0.0,
        rollback: float = 0.0,
        status: RunStatus = RunStatus.PASSED,
    ) -> None:
        self.clock = clock
        self.duration = duration
        self.rollback = rollback
        self.status = status
        self.starts: list[tuple[str, datetime]] = []
        self.log: list[tuple[str, str, datetime]] = []
        self.active = 0
        self.max_active = 0
        self.cancelled = 0

    async def __call__(self, key: str, _experiment: Experiment) -> RunStatus:
        now = self.clock.now()
        self.starts.append((key, now))
        self.log.append(("start", key, now))
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.duration:
                await self.clock.sleep(self.duration)
        except asyncio.CancelledError:
            self.cancelled += 1
            if self.rollback:
                await self.clock.sleep(self.rollback)
            raise
        finally:
            self.active -= 1
            self.log.append(("end", key, self.clock.now()))
        return self.status

    @property
    def times(self) -> list[datetime]:
        return [at for _, at in self.starts]


def scheduler(
    tmp_path: Path,
    clock: ManualClock,
    run: FakeRun,
    *,
    recheck_every: float = DAY,
    **kwargs: Any,
) -> ChaosScheduler:
    return ChaosScheduler(
        settings=settings(tmp_path),
        run=run,
        clock=clock,
        store_path=tmp_path / "schedule.sqlite3",
        recheck_every=recheck_every,
        **kwargs,
    )
