"""Cancelling a run's task at seeded random moments in every phase reverts every fault.

Real parts: a standalone ``aftershock proxy`` server (Toxiproxy API), a
supervised ``python3 -m http.server`` behind it, and ``runtime.run_experiment``
in this process with the system clock. Each case waits for a phase of the run
(steady state before, each fault in effect, an abort, recovery, steady state
after), waits a random moment more, and cancels the task, as a lost lease or a
shutdown does. When the run says it is finished (its ``run.finished`` event,
before its drivers stop), the world is looked at: no toxic on the proxy, the
server neither frozen nor dead. Then the journal must be complete: every
intent has its ``fault.reverted`` and the run ends ``interrupted``.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from aftershock.journal.reading import outstanding
from aftershock.loading import load_text
from aftershock.model.experiment import Experiment
from aftershock.ports import Event
from aftershock.runtime import run_experiment
from aftershock.settings import Settings
from tests.support.docker import free_port, wait_for

pytestmark = [pytest.mark.slow]

SEED = 20261204
CASES = 50

EXPERIMENT = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: cancel-me}}
spec:
  targets:
    db: {{toxiproxy: {{api: "http://127.0.0.1:{api}", proxy: web}}}}
    web:
      process:
        command: [{python}, -m, http.server, "{upstream}", --bind, 127.0.0.1]
        ready: 127.0.0.1:{upstream}
  probes:
    web: {{http: {{url: "http://127.0.0.1:{listen}/", timeout: 150ms}}, every: 100ms}}
  steadyState:
    - {{probe: web, over: 400ms, expect: {{successRatio: ">= 0.5"}}}}
  method:
    - {{name: slow, fault: toxiproxy.latency, target: db, with: {{latency: 20ms}}, for: {slow}}}
    - {{name: freeze, fault: process.stop, target: web, at: 300ms, for: {freeze}}}
{abort}  expect: {{recoverWithin: 3s}}
"""

ABORT = '  abort:\n    - {probe: web, over: 300ms, expect: {successRatio: "== 0"}}\n'


@dataclass(frozen=True)
class Flow:
    """A variant of the experiment: its method timing and the moments a case may pick."""

    slow: str
    freeze: str
    abort: str
    phases: tuple[str, ...]


FLOWS = {
    "complete": Flow(
        "700ms",
        "300ms",
        "",
        ("steady-before", "fault:slow", "fault:freeze", "recovery", "steady-after"),
    ),
    "aborted": Flow("5s", "5s", ABORT, ("steady-before", "fault:slow", "fault:freeze", "abort")),
}
# How long after its moment a case may cancel: within the phase, which for an
# abort is only the few milliseconds of its rollback.
LATEST = {"recovery": 0.12, "abort": 0.004}


@dataclass
class Watch:
    """An event sink that marks the moments a case waits for, and checks the world at the end."""

    base: str
    upstream: int
    seen: dict[str, asyncio.Event] = field(default_factory=dict)
    world_at_finish: list[tuple[list[object], list[str]]] = field(default_factory=list)

    def moment(self, name: str) -> asyncio.Event:
        return self.seen.setdefault(name, asyncio.Event())

    def emit(self, event: Event) -> None:
        if event.kind == "phase":
            self.moment(str(event.fields["phase"])).set()
        elif event.kind == "fault.injected":
            self.moment(f"fault:{event.fields['step']}").set()
        elif event.kind == "abort":
            self.moment("abort").set()
        elif event.kind == "run.finished":
            # Before the drivers stop: the run's own rollback must have done it all.
            toxics = httpx.get(f"{self.base}/proxies/web/toxics", timeout=5).json()
            self.world_at_finish.append((toxics, _server_states(self.upstream)))


def _server_states(port: int) -> list[str]:
    """The states (/proc stat) of the http.server processes listening on ``port``."""
    states = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if b"http.server" in argv and str(port).encode() in argv:
            states.append(stat.rsplit(")", 1)[1].split()[0])
    return states


@pytest.fixture(scope="module")
def proxy_api() -> Iterator[str]:
    api = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aftershock", "proxy", "--listen", f"127.0.0.1:{api}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{api}"
    try:
        assert wait_for(lambda: _answers(base), timeout=15), "aftershock proxy did not start"
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/version", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _experiment(base: str, flow: str, listen: int, upstream: int) -> Experiment:
    shape = FLOWS[flow]
    text = EXPERIMENT.format(
        api=base.rsplit(":", 1)[1],
        python=json.dumps(sys.executable),
        upstream=upstream,
        listen=listen,
        slow=shape.slow,
        freeze=shape.freeze,
        abort=shape.abort,
    )
    docs, problems = load_text(text, f"{flow}.yaml")
    assert problems == []
    document = docs[0].document
    assert isinstance(document, Experiment)
    return document


def _journal(home: Path) -> list[dict[str, object]]:
    (path,) = (home / "journal").glob("*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def _case(base: str, home: Path, flow: str, phase: str, delay: float) -> bool:
    """One run cancelled ``delay`` seconds after ``phase``; True if the cancel cut it short."""
    listen, upstream = free_port(), free_port()
    api = httpx.AsyncClient(base_url=base, timeout=5)
    proxy = {"name": "web", "listen": f"127.0.0.1:{listen}", "upstream": f"127.0.0.1:{upstream}"}
    (await api.post("/proxies", json=proxy)).raise_for_status()
    watch = Watch(base, upstream)
    task = asyncio.create_task(
        run_experiment(
            _experiment(base, flow, listen, upstream),
            settings=Settings(home=home),
            seed=SEED,
            events=watch,
        )
    )
    try:
        await asyncio.wait_for(watch.moment(phase).wait(), timeout=20)
        await asyncio.sleep(delay)
        cut = not watch.moment("done").is_set()  # the run has not reached its verdict yet
        task.cancel()
        try:
            await asyncio.wait_for(task, timeout=30)
            cancelled = False
        except asyncio.CancelledError:
            cancelled = True
        assert cancelled or not cut, (flow, phase, delay)
    finally:
        if not task.done():
            task.cancel()
        await api.delete("/proxies/web")
        await api.aclose()
    # At the run's end, before its drivers stopped: nothing left applied.
    ((toxics, states),) = watch.world_at_finish
    assert toxics == [], (flow, phase, delay)
    assert states and "T" not in states, (flow, phase, delay, states)
    # The journal tells the same story.
    records = _journal(home)
    intents = [str(r["key"]) for r in records if r["event"] == "fault.intent"]
    reverted = [str(r["key"]) for r in records if r["event"] == "fault.reverted"]
    assert sorted(intents) == sorted(reverted), (flow, phase, delay)
    assert outstanding(home / "journal") == []
    finished = [r for r in records if r["event"] == "run.finished"]
    assert len(finished) == 1
    status = finished[0]["result"]["status"]  # type: ignore[index]
    if cut:
        assert status == "interrupted", (flow, phase, delay, status)
    return cut


async def test_cancelled_at_random_moments_in_every_phase(proxy_api: str, tmp_path: Path) -> None:
    rnd = random.Random(SEED)
    cut = 0
    covered: set[tuple[str, str]] = set()
    for number in range(CASES):
        flow = "complete" if number % 2 == 0 else "aborted"
        phase = rnd.choice(FLOWS[flow].phases)
        delay = rnd.uniform(0.0, LATEST.get(phase, 0.25))
        if await _case(proxy_api, tmp_path / f"case-{number}", flow, phase, delay):
            cut += 1
            covered.add((flow, phase))
    # The seeded moments must really cut runs short in every phase of both flows.
    expected = {(flow, phase) for flow, shape in FLOWS.items() for phase in shape.phases}
    assert covered == expected, sorted(expected - covered)
    assert cut >= CASES * 0.8
