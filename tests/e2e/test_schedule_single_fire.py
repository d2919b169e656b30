"""Two schedule daemons in two OS processes on one ``$AFTERSHOCK_HOME``: each fire runs once.

Cron is minute-granular, so each process runs ``scheduling.run_schedule`` on a
clock that is fast and shared: ``SPEED`` simulated seconds per real second since
one start instant, the same in both processes; a minutely job then fires every
fraction of a second, and both daemons wake for it at the same moment. Each run
appends one line to a file (``O_APPEND``); the store's history, the lines and the
schedule log must agree on one run per fire. Halfway, the experiment file is
rewritten (same cron, another jitter) and both daemons reload it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from aftershock.scheduling.store import ScheduleStore

pytestmark = pytest.mark.slow

SPEED = 300.0
"""Simulated seconds per real second: a minutely fire every 0.2 s."""
RACE = 6.0
"""Real seconds both daemons run side by side (about 30 fires of the minutely job)."""

EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: {name}}}
spec:
  schedule: {{cron: "{cron}", jitter: {jitter}}}
  targets:
    db: {{toxiproxy: {{api: http://127.0.0.1:8474, proxy: pg}}}}
  method:
    - {{name: slow, fault: toxiproxy.latency, target: db, with: {{latency: 300ms}}, for: 10s}}
"""

WORKER = """
import asyncio, os, signal, sys, time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aftershock.scheduling import run_schedule
from aftershock.settings import load_settings

directory, runs, t0, speed = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
EPOCH = datetime(2026, 1, 5, tzinfo=UTC)


class SharedFastClock:
    def monotonic(self):
        return (time.time() - t0) * speed

    def now(self):
        return EPOCH + timedelta(seconds=self.monotonic())

    async def sleep(self, seconds):
        await asyncio.sleep(max(0.0, seconds) / speed)


async def run(key, _experiment):
    fd = os.open(runs, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{os.getpid()} {key}\\n".encode())
    finally:
        os.close(fd)


async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await run_schedule(
        directory,
        settings=load_settings(),
        stop=stop,
        clock=SharedFastClock(),
        reload_every=0.2 * speed,
        run=run,
        echo=lambda line: print(line, flush=True),
        misfire_grace=timedelta(hours=1),
    )


asyncio.run(main())
"""


def write_experiments(directory: Path, jitter: str) -> None:
    (directory / "minutely.yaml").write_text(
        EXPERIMENT.format(name="minutely", cron="* * * * *", jitter=jitter)
    )
    (directory / "jittered.yaml").write_text(
        EXPERIMENT.format(name="jittered", cron="*/2 * * * *", jitter="90s")
    )


def log_records(home: Path) -> list[dict[str, object]]:
    path = home / "schedule" / "log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.timeout(60)
def test_two_daemons_in_two_processes_run_each_fire_once(tmp_path: Path) -> None:
    exps, home, runs = tmp_path / "experiments", tmp_path / "home", tmp_path / "runs.txt"
    exps.mkdir()
    write_experiments(exps, jitter="0s")
    env = {**os.environ, "AFTERSHOCK_HOME": str(home)}
    t0 = time.time()
    outputs = [tmp_path / f"daemon-{n}.txt" for n in range(2)]
    children: list[subprocess.Popen[bytes]] = []
    try:
        for output in outputs:
            with output.open("wb") as out:
                children.append(
                    subprocess.Popen(
                        [sys.executable, "-c", WORKER, str(exps), str(runs), str(t0), str(SPEED)],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + 30
        while sum(r["event"] == "schedule.started" for r in log_records(home)) < 2:
            assert time.monotonic() < deadline, "the daemons did not start"
            assert all(c.poll() is None for c in children), [o.read_text() for o in outputs]
            time.sleep(0.05)
        time.sleep(RACE / 2)
        write_experiments(exps, jitter="20s")  # both reload: same cron, so the anchor stays
        time.sleep(RACE / 2)
        for child in children:
            child.send_signal(signal.SIGTERM)
        codes = [child.wait(timeout=20) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    printed = [o.read_text() for o in outputs]
    assert codes == [0, 0], printed
    assert not any("Traceback" in text for text in printed), printed

    store = ScheduleStore(home / "schedule" / "jobs.sqlite3")
    lines = Counter(line.split()[1] for line in runs.read_text().splitlines())
    records = log_records(home)
    total = 0
    for key in ("minutely", "jittered"):
        history = store.history(key)
        fire_times = [f.fire_time for f in history]
        assert len(set(fire_times)) == len(fire_times), f"{key}: a fire recorded twice"
        assert fire_times == sorted(fire_times)
        ran = [f for f in history if f.decision == "run"]
        done = [f for f in ran if f.status == "done"]
        assert len(ran) - len(done) <= 1  # at most the last one, cut short by the stop
        assert lines[key] == len(done), f"{key}: {lines[key]} runs for {len(done)} fires"
        fired = [r for r in records if r["event"] == "schedule.fire" and r["key"] == key]
        assert len(fired) == len(history)
        total += len(history)
    assert total >= 20
    assert len(store.history("minutely")) >= 15
    taken = [r for r in records if r["event"] == "schedule.taken"]
    assert taken, "the two daemons never raced for a fire"
    assert sum(
        text.count("not run here: another scheduler on the same store dealt with")
        for text in printed
    ) == len(taken)
