"""Benchmark of the healer: how many HTTP endpoints one healer process watches at
``every: 1s`` on one core, and how fast it detects an endpoint going down.

Run on demand: ``.venv/bin/python bench/bench_healer.py [--steps 1000,3000]
[--overload auto] [--server nginx|python]``.

First, **side by side with Prometheus blackbox_exporter** (Debian's
``prometheus-blackbox-exporter``, ``nginx-light`` and ``wrk``; the bench
installs nothing and says which packages are missing): one nginx on 127.0.0.1
serves ``/ep/<i>``; blackbox_exporter (``GOMAXPROCS=1``, pinned to the healer's
core) is driven through its ``/probe`` endpoint by wrk, each request one probe
of one of the same N endpoints, and its CPU is read from ``/proc``; the healer
(a fresh process, the same core) watches the same N endpoints at ``every: 1s``
through ``build_probe`` (the fast engine for plain http). Both print probes per
CPU-second, and the ratio (target: aftershock >= 1.5x blackbox). The healer's
figure is also its *unloaded capacity*, the samples a second one core can serve.

Then steps (the endpoint counts of ``--steps``, and an **overload** step with
``--overload`` endpoints, by default 1.3x the capacity just measured, rounded
up to thousands), each with two sides on 127.0.0.1:

* the **endpoint server**, pinned to its own core when there is one (with the
  processes ``taskset`` starts there, so an nginx's workers are pinned from
  their fork): N endpoints as N paths on **one port** (``/ep/<i>``, HTTP/1.1
  keep-alive), served by **nginx** (one worker, ``--server-workers``) when it
  is installed, else (or with ``--server python``) by this file's asyncio
  server alone (``serve``). Endpoints go down on cue: at ``go`` the bench hands
  this file's server (with nginx: on a port of its own) a schedule
  (endpoint -> offset) and from ``go + offset`` on (``time.monotonic``, which
  is system-wide on Linux) that endpoint answers 503 (with nginx: the server
  makes the file ``down/<i>`` then, and nginx answers 503 while it exists).
  ``/hook`` counts the healer's webhook calls. The server's CPU (nginx's
  workers and this file's server) is read from ``/proc`` over each step's
  measurement.
* the **healer** (this file with ``step``, a fresh process per step, pinned to
  one core; the server gets the other one when there is one): the real
  ``aftershock.healer.Healer`` with one real ``HttpProbeAdapter`` per endpoint
  (``aftershock.probes.factory.build_probe``, each with its own keep-alive
  client, as ``aftershock heal`` builds them) on ``SystemClock``. The policy is
  built programmatically: one watch per endpoint (``every: 1s``, ``timeout:
  500ms``, ``unhealthyAfter: 3``, ``healthyAfter: 2``) and one playbook per
  watch whose step is an ``http.call`` to the server's ``/hook`` (with
  ``--no-action`` the playbooks wait 1 h, so nothing is ever called; with
  ``--shared-client`` all probes share one httpx client, to compare). As in
  ``aftershock heal``, the heap is frozen once every watch has sampled
  (``settle_heap``).

Per step, after a warm-up (99 % of the watches have answered twice; measured
anyway after 40 s, and the table says so), K = min(N/2, 250) endpoints go down
at random moments over 8 s. Measured:

* **on time**: a sample is on time when it started at most 100 ms after its
  tick (the sampler's own schedule: previous tick + 1 s, re-anchored after an
  overrun as the sampler does) and it answered within its 500 ms timeout with
  the endpoint's real state (200 while up, 503 once down).
* **detection**: when the watch turned unhealthy minus when its endpoint went
  down; **overhead** = detection - unhealthyAfter x every (3 s). An endpoint
  that goes down at a random phase of its 1 s period is ideally detected
  2-3 s later, so the ideal overhead is between -1 s and 0; p99 is the worst
  phase plus what the healer adds. Target: 1,000 endpoints with >= 99 % of
  samples on time and p99 overhead <= 100 ms.
* **stop**: how long the graceful ``Healer.stop()`` takes afterwards (capped;
  the step's process is then dropped, so a slow stop does not stall the bench).
* **overload** (every step, meant for the overload step: more endpoints than
  one core serves): samples served per second against ``min(N, unloaded
  capacity)`` (target: >= 90 %) and per CPU-second of the healer (the core is
  shared with whatever else runs on the machine: served per CPU-second against
  the unloaded probes per CPU-second says whether the healer itself lost
  efficiency); the healer's samples share one ``SampleGate`` as in
  ``aftershock heal``; its lag (``aftershock_probe_lag_seconds``) p50/p99, what
  ``/readyz`` says, whether ``/healthz`` of the step's own ``HealthServer``
  answered while loaded (polled from the bench process every 0.5 s), the
  healer's and the server's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aftershock.clock import SystemClock
from aftershock.drivers.standalone import http_call
from aftershock.healer import Healer, settle_heap
from aftershock.model.policy import HealingPolicy
from aftershock.observability.health import HealthServer, Readiness
from aftershock.observability.metrics import HealerMetrics
from aftershock.ports import Event, Probe, ProbeResult
from aftershock.probes.factory import HttpEngine, build_probe
from aftershock.sampling import SampleGate

EVERY = 1.0
TIMEOUT = 0.5
UNHEALTHY_AFTER = 3
LATE = 0.100  # a sample starting more than this after its tick is late
SPREAD = 8.0  # seconds over which the K endpoints go down
TAIL = UNHEALTHY_AFTER * EVERY + 2.5  # after the last one, until it must have been seen
WARMUP_CAP = 40.0  # measure anyway after this long, and say so
STOP_CAP = 5.0  # how long Healer.stop() may take before the step's process is dropped
TARGET_ENDPOINTS = 1000
TARGET_OVERHEAD = 0.100
TARGET_RATIO = 1.5
TARGET_SERVED = 0.90
RATE_SECONDS = 10.0  # how long each side of the side-by-side comparison is measured
TOOLS = {
    "nginx": "nginx-light",
    "prometheus-blackbox-exporter": "prometheus-blackbox-exporter",
    "wrk": "wrk",
}


# ---------------------------------------------------------------- endpoint server


class DownMarks:
    """Makes the file ``<dir>/<i>`` when endpoint ``i`` goes down (nginx answers 503 for it)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._handles: list[asyncio.TimerHandle] = []

    def schedule(self, offsets: dict[int, float]) -> None:
        """Forget the last schedule; endpoint ``i`` goes down ``offsets[i]`` seconds from now."""
        for handle in self._handles:
            handle.cancel()
        for old in self.directory.iterdir():
            old.unlink()
        loop = asyncio.get_running_loop()
        self._handles = [loop.call_later(v, self._mark, i) for i, v in offsets.items()]

    def _mark(self, i: int) -> None:
        (self.directory / str(i)).touch()


def serve(port: int, down_dir: str | None = None) -> None:
    """The endpoint server: ``/ep/<i>`` (200, or 503 once down), ``/go``, ``/hook``.

    With ``down_dir`` (nginx serves the endpoints) an endpoint going down is
    also the file ``down_dir/<i>`` appearing at its moment: nginx answers 503
    while it exists.
    """
    down_at: dict[int, float] = {}
    hooks = 0
    marks = DownMarks(Path(down_dir)) if down_dir else None

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal hooks
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request, _, headers = head.partition(b"\r\n")
                _, path, _ = request.split(b" ", 2)
                length = 0
                for line in headers.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length) if length else b""
                status, answer = b"200 OK", b"ok"
                if path.startswith(b"/ep/"):
                    at = down_at.get(int(path[4:]))
                    if at is not None and time.monotonic() >= at:
                        status, answer = b"503 Service Unavailable", b"down"
                elif path == b"/go":  # body: {"i": offset}; answers the base time
                    base = time.monotonic()
                    offsets = {int(k): float(v) for k, v in json.loads(body).items()}
                    down_at.clear()
                    down_at.update({i: base + v for i, v in offsets.items()})
                    if marks is not None:
                        marks.schedule(offsets)
                    answer = json.dumps({"base": base}).encode()
                elif path == b"/hook":
                    hooks += 1
                elif path == b"/hooks":
                    answer = str(hooks).encode()
                writer.write(
                    b"HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                    % (status, len(answer), answer)
                )
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def _start_server(port: int, cpu: int | None, down_dir: str | None = None) -> subprocess.Popen[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "serve", "--port", str(port)]
    argv += ["--down-dir", down_dir] if down_dir else []
    server = subprocess.Popen(_taskset(argv, cpu), stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    if server.stdout.readline().strip() != "ready":
        raise RuntimeError("the endpoint server did not start")
    return server


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------- the healer side


@dataclass
class Samples:
    """(call time, latency, ok, status) of one watch's samples."""

    calls: list[tuple[float, float, bool, int | None]] = field(default_factory=list)
    oks: int = 0


class Timed:
    """A probe that notes when each check was called and what it got (a thin wrapper)."""

    def __init__(self, probe: Any, into: Samples) -> None:
        self.probe = probe
        self.into = into

    async def check(self) -> ProbeResult:
        called = time.monotonic()
        result: ProbeResult = await self.probe.check()
        self.into.calls.append((called, time.monotonic() - called, result.ok, result.status))
        self.into.oks += result.ok
        return result

    async def aclose(self) -> None:
        await self.probe.aclose()


class Sink:
    """Counts events and keeps when each watch turned unhealthy."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.unhealthy: dict[str, list[float]] = {}

    def emit(self, event: Event) -> None:
        self.kinds[event.kind] += 1
        if event.kind == "watch.transition" and event.fields.get("to") == "unhealthy":
            self.unhealthy.setdefault(str(event.fields.get("probe")), []).append(time.monotonic())

    def detected(self, name: str, down_at: float) -> float | None:
        """When the watch turned unhealthy after ``down_at``, if it did."""
        return next((t for t in self.unhealthy.get(name, []) if t >= down_at), None)


def policy(n: int, port: int, *, act: bool, control: int = 0) -> HealingPolicy:
    """One watch and one playbook per endpoint (``/hook`` on ``control``, else ``port``)."""
    base = f"http://127.0.0.1:{port}"
    hook = f"http://127.0.0.1:{control or port}/hook"
    watch = {
        f"ep{i}": {
            "http": {"url": f"{base}/ep/{i}", "timeout": f"{TIMEOUT * 1000:g}ms"},
            "every": f"{EVERY:g}s",
            "unhealthyAfter": UNHEALTHY_AFTER,
            "healthyAfter": 2,
        }
        for i in range(n)
    }
    playbooks = [
        {
            "name": f"hook-{i}",
            "when": {"unhealthy": f"ep{i}", "for": "0s" if act else "1h"},
            "steps": [{"action": "http.call", "with": {"url": hook}, "timeout": "2s"}],
            "limits": {"maxAttempts": 1, "cooldown": "10m"},
        }
        for i in range(n)
    ]
    return HealingPolicy.model_validate(
        {
            "apiVersion": "aftershock.dev/v1alpha1",
            "kind": "HealingPolicy",
            "metadata": {"name": f"bench-{n}"},
            "spec": {
                "watch": watch,
                "playbooks": playbooks,
                "disruptionBudget": {"max": 10_000, "per": "1h"},
            },
        }
    )


@dataclass
class StepResult:
    """The figures of one step."""

    n: int
    warmup: float | None
    """Seconds until 99 % of the watches had answered twice; None: not within the cap."""
    samples: int
    on_time: float
    lateness_p50: float
    lateness_p99: float
    latency_p99: float
    down: int
    detected: int
    detection_p50: float
    detection_p99: float
    overhead_p50: float
    overhead_p99: float
    cpu: float
    hooks: int
    stop: float | None
    """Seconds ``Healer.stop()`` took; None: longer than the cap."""
    served: float = 0.0
    """Samples completed per second while measuring."""
    lag_p50: float = float("nan")
    lag_p99: float = float("nan")
    lag_p95: float = float("nan")
    readyz: str = ""
    """What the step's /readyz said at the end of the measurement."""
    healthz: str = ""
    """How /healthz answered while loaded (filled in by the bench process)."""
    server_cpu: float = float("nan")
    """The endpoint server's CPU (all its processes, in cores) while measuring."""
    server: str = ""
    """Which server served the endpoints (filled in by the bench process)."""
    settled: bool = False
    """Whether ``settle_heap`` had frozen the heap by the end of the measurement."""

    @property
    def served_per_cpu(self) -> float:
        """Samples served per CPU-second of the healer while measuring."""
        return self.served / self.cpu if self.cpu else 0.0


def _say(text: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _on_time(
    calls: list[tuple[float, float, bool, int | None]],
    since: float,
    until: float,
    down: float | None,
) -> tuple[int, int, list[float], list[float]]:
    """(samples counted, on time, start lateness, latencies) started in [since, until)."""
    counted = good = 0
    late: list[float] = []
    latencies: list[float] = []
    due = calls[0][0]
    for k, (called, latency, ok, status) in enumerate(calls):
        if k:
            previous_end = calls[k - 1][0] + calls[k - 1][1]
            due = max(due + EVERY, previous_end)  # the sampler re-anchors after an overrun
            tick = due
        else:
            tick = called
        if not since <= called < until:
            continue
        lateness = called - tick
        expected = 503 if down is not None and called >= down else 200
        answered = latency <= TIMEOUT and (ok if expected == 200 else status == 503)
        counted += 1
        late.append(lateness)
        latencies.append(latency)
        good += lateness <= LATE and answered
    return counted, good, late, latencies


async def _go(port: int, schedule: dict[int, float]) -> float:
    import httpx

    async with httpx.AsyncClient(trust_env=False) as client:
        answer = await client.post(f"http://127.0.0.1:{port}/go", content=json.dumps(schedule))
        base: float = answer.json()["base"]
        return base


async def _hooks(port: int) -> int:
    import httpx

    async with httpx.AsyncClient(trust_env=False) as client:
        return int((await client.get(f"http://127.0.0.1:{port}/hooks")).text)


async def run_step(  # noqa: PLR0915 - one measured step, read top to bottom
    n: int,
    port: int,
    seed: int,
    *,
    act: bool,
    shared: bool,
    health_port: int = 0,
    control: int = 0,
    server_pids: tuple[int, ...] = (),
) -> StepResult:
    """Watch ``n`` endpoints; take K of them down on cue; measure (runs in its own process).

    ``control`` is the port of ``/go`` and ``/hook`` when nginx serves the
    endpoints on ``port``; ``server_pids`` are the server's processes, whose
    CPU is measured over the same window.
    """
    import httpx

    rng = random.Random(seed * 100_003 + n)
    recorded = {f"ep{i}": Samples() for i in range(n)}
    probes: dict[str, Probe] = {}
    the_policy = policy(n, port, act=act, control=control)
    control = control or port
    client = (
        httpx.AsyncClient(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            trust_env=False,
        )
        if shared
        else None
    )
    engine = HttpEngine.HTTPX if shared else HttpEngine.AUTO
    for name, spec in the_policy.spec.watch.items():
        adapter = build_probe(spec, client=client, clock=SystemClock(), engine=engine)
        probes[name] = Timed(adapter, recorded[name])
    sink = Sink()
    metrics = HealerMetrics()
    lags: list[float] = []

    def on_lag(seconds: float) -> None:
        lags.append(seconds)
        metrics.observe_lag(seconds)

    # As aftershock heal has it: one gate for the host's samplers, /healthz and /readyz.
    gate = SampleGate(clock=SystemClock(), on_lag=on_lag)
    healer = Healer(
        the_policy,
        probes=probes,
        actions={},
        clock=SystemClock(),
        events=sink,
        standalone={"http.call": http_call},
        stagger=True,
        gate=gate,
    )

    def ready() -> Readiness:
        reason = gate.overload()
        return Readiness(ready=reason is None, reason=reason or "")

    health = HealthServer(status=lambda: {"watches": n}, ready=ready, metrics=metrics.render)
    if health_port:
        await health.start("127.0.0.1", health_port)
    started = time.monotonic()
    healer.start()
    # As HealerHost has it for aftershock heal: the heap is frozen once every watch sampled.
    settling = asyncio.create_task(settle_heap([healer], SystemClock()))
    # warm-up: 99 % of the watches have answered twice (their clients are connected)
    warmup: float | None = None
    while time.monotonic() - started < WARMUP_CAP:
        if sum(s.oks >= 2 for s in recorded.values()) >= 0.99 * n:
            warmup = time.monotonic() - started
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    chosen = rng.sample(range(n), min(n // 2, 250))
    schedule = {i: rng.uniform(0.0, SPREAD) for i in chosen}
    base = await _go(control, schedule)
    _say(f"{n}: warm-up {time.monotonic() - started:.1f}s, measuring")
    cpu_from, wall_from = time.process_time(), time.monotonic()
    server_from = sum(_cpu_seconds(pid) for pid in server_pids)
    done_from = sum(len(s.calls) for s in recorded.values())
    lags.clear()
    await asyncio.sleep(SPREAD + TAIL)
    until = time.monotonic()
    cpu = (time.process_time() - cpu_from) / (until - wall_from)
    server_cpu = (sum(_cpu_seconds(pid) for pid in server_pids) - server_from) / (until - wall_from)
    served = (sum(len(s.calls) for s in recorded.values()) - done_from) / (until - wall_from)
    readiness = ready()
    readyz = "ready" if readiness.ready else readiness.reason
    recent = gate.lag_p95()
    if readiness.ready and recent is not None:
        readyz += f" (p95 lag of the last {recent[2]} samples: {recent[1]:.2f} periods)"
    settled = settling.done()
    settling.cancel()
    hooks = await _hooks(control)
    # Graceful stop, timed (capped: the caller throws this process away afterwards).
    stopping = time.monotonic()
    stop: float | None = None
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(healer.stop()), STOP_CAP)
        stop = time.monotonic() - stopping
    _say(f"{n}: measured {until - wall_from:.1f}s; healer.stop() " + _secs(stop, STOP_CAP))
    if health_port:
        await health.close()

    down_at = {f"ep{i}": base + offset for i, offset in schedule.items()}
    counted = good = 0
    late: list[float] = []
    latencies: list[float] = []
    for name, samples in recorded.items():
        c, g, lt, lat = _on_time(samples.calls, base, until, down_at.get(name))
        counted, good = counted + c, good + g
        late += lt
        latencies += lat
    seen = {name: sink.detected(name, at) for name, at in down_at.items()}
    detections = [t - down_at[name] for name, t in seen.items() if t is not None]
    overheads = [d - UNHEALTHY_AFTER * EVERY for d in detections]
    return StepResult(
        n=n,
        warmup=warmup,
        samples=counted,
        on_time=good / counted if counted else 0.0,
        lateness_p50=_pct(late, 50),
        lateness_p99=_pct(late, 99),
        latency_p99=_pct(latencies, 99),
        down=len(down_at),
        detected=len(detections),
        detection_p50=_pct(detections, 50),
        detection_p99=_pct(detections, 99),
        overhead_p50=_pct(overheads, 50),
        overhead_p99=_pct(overheads, 99),
        cpu=cpu,
        hooks=hooks,
        stop=stop,
        served=served,
        lag_p50=_pct(lags, 50),
        lag_p99=_pct(lags, 99),
        lag_p95=_pct(lags, 95),
        readyz=readyz,
        server_cpu=server_cpu if server_pids else float("nan"),
        settled=settled,
    )


def _secs(value: float | None, cap: float) -> str:
    return f">{cap:g}s" if value is None else f"{value:.1f}s"


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value * 1000:.0f}ms"


def _table(results: list[StepResult]) -> str:
    head = (
        f"{'endpoints':>9} {'warm-up':>7} {'samples':>7} {'on time':>7} "
        f"{'late p50':>8} {'late p99':>8} {'probe p99':>9} {'down':>4} {'seen':>4} "
        f"{'det p50':>7} {'det p99':>7} {'ovh p50':>7} {'ovh p99':>7} "
        f"{'cpu':>4} {'hooks':>5} {'stop':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.n:>9} {_secs(r.warmup, WARMUP_CAP):>7} {r.samples:>7} {r.on_time:>7.1%} "
            f"{_ms(r.lateness_p50):>8} {_ms(r.lateness_p99):>8} {_ms(r.latency_p99):>9} "
            f"{r.down:>4} {r.detected:>4} "
            f"{_ms(r.detection_p50):>7} {_ms(r.detection_p99):>7} "
            f"{_ms(r.overhead_p50):>7} {_ms(r.overhead_p99):>7} "
            f"{r.cpu:>4.0%} {r.hooks:>5} {_secs(r.stop, STOP_CAP):>6}"
        )
    return "\n".join(lines)


class HealthPoller:
    """Asks a step's /healthz every 0.5 s from the bench process; counts answers."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/healthz"
        self.answers: list[float] = []
        self.failures = 0
        self.starting = 0  # failures before the first answer: the step's server not yet up
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while not self._stop.wait(0.5):
            asked = time.monotonic()
            try:
                with opener.open(self.url, timeout=2) as answer:
                    answer.read()
                self.answers.append(time.monotonic() - asked)
            except OSError:
                if self.answers:
                    self.failures += 1
                else:
                    self.starting += 1

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        # Failures before the step's server first answered (start-up) are counted apart.
        if not self.answers:
            return f"no answer ({self.starting} tries)"
        return (
            f"{len(self.answers)}/{len(self.answers) + self.failures} answered "
            f"once listening ({self.starting} before), p99 {_ms(_pct(self.answers, 99))}"
        )


class EndpointServer:
    """A step's endpoint server, pinned to ``cpu``: nginx, or this file's Python server.

    With nginx (``workers`` worker processes) the Python server still takes
    ``/go`` and ``/hook`` on its own port and makes the ``down/<i>`` files
    nginx answers 503 for.
    """

    def __init__(self, kind: str, cpu: int | None, workers: int = 1) -> None:
        self.kind, self.cpu, self.workers = kind, cpu, workers
        self.port = self.control = 0
        self.pids: tuple[int, ...] = ()
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> EndpointServer:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _start(self) -> None:
        self.port = _free_port()
        if self.kind == "python":
            server = _start_server(self.port, self.cpu)
            self._stack.callback(_stop, server)
            self.pids = (server.pid,)
            return
        tmp = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="aftershock-bench-"))
        Path(tmp).chmod(0o755)  # nginx's workers (an unprivileged user) look into down/
        (Path(tmp) / "down").mkdir()
        conf = Path(tmp) / "nginx.conf"
        ep = EP_FLIPPING.format(dir=tmp)
        conf.write_text(NGINX_CONF.format(dir=tmp, port=self.port, workers=self.workers, ep=ep))
        nginx = _pinned(["nginx", "-c", str(conf), "-p", tmp], self.cpu)
        self._stack.callback(_stop, nginx)
        _wait_listening(self.port, "nginx")
        self.control = _free_port()
        control = _start_server(self.control, self.cpu, down_dir=str(Path(tmp) / "down"))
        self._stack.callback(_stop, control)
        self.pids = (*_children(nginx.pid), control.pid)

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def describe(self) -> str:
        if self.kind == "python":
            return "one asyncio process, N paths on one port"
        return f"nginx, {self.workers} worker{'s' if self.workers > 1 else ''}"


def _step_process(n: int, server: EndpointServer, args: argparse.Namespace, cpu: int) -> StepResult:
    """Run one step in a fresh process pinned to ``cpu``; return its figures."""
    health_port = _free_port()
    argv = [sys.executable, str(Path(__file__).resolve()), "step", "--n", str(n)]
    argv += ["--port", str(server.port), "--seed", str(args.seed)]
    argv += ["--health-port", str(health_port), "--control", str(server.control)]
    argv += ["--server-pids", ",".join(map(str, server.pids))]
    argv += ["--no-action"] * args.no_action + ["--shared-client"] * args.shared_client
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    os.sched_setaffinity(child.pid, {cpu})
    try:
        with HealthPoller(health_port) as poller:
            out, _ = child.communicate(timeout=WARMUP_CAP + SPREAD + TAIL + STOP_CAP + 60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"step {n} printed no result (exit {child.returncode})")
    result = StepResult(**json.loads(lines[-1]))
    result.healthz = poller.summary()
    result.server = server.describe()
    return result


# ------------------------------------------------------ side by side with blackbox_exporter

NGINX_CONF = """worker_processes {workers};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 16384; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    {ep}
  }}
}}
"""

EP_PLAIN = 'location /ep/ { default_type text/plain; return 200 "ok"; }'
EP_FLIPPING = """location ~ ^/ep/(?<ep>[0-9]+)$ {{
      default_type text/plain;
      if (-f {dir}/down/$ep) {{ return 503 "down"; }}
      return 200 "ok";
    }}"""
"""The step's endpoints: 503 while the file ``down/<i>`` exists (the control server makes it)."""

BLACKBOX_CONF = """modules:
  http_2xx:
    prober: http
    timeout: 500ms
    http:
      preferred_ip_protocol: ip4
"""

WRK_SCRIPT = """local n, nginx, i = {n}, {port}, 0
request = function()
  i = (i + 1) % n
  return wrk.format("GET", "/probe?module=http_2xx&target=" ..
    "http%3A%2F%2F127.0.0.1%3A" .. nginx .. "%2Fep%2F" .. i)
end
"""


@dataclass
class Rates:
    """Probes per CPU-second of both, side by side against the same nginx."""

    n: int
    blackbox_probes: int
    blackbox_cpu: float
    blackbox_success: bool
    aftershock_probes: int
    aftershock_cpu: float
    aftershock_ok: float

    @property
    def blackbox(self) -> float:
        return self.blackbox_probes / self.blackbox_cpu if self.blackbox_cpu else 0.0

    @property
    def aftershock(self) -> float:
        return self.aftershock_probes / self.aftershock_cpu if self.aftershock_cpu else 0.0


def missing_tools() -> list[str]:
    """The Debian packages whose programs the side-by-side comparison needs and lacks."""
    return sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_listening(port: int, what: str) -> None:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port}")


def _taskset(argv: list[str], cpu: int | None) -> list[str]:
    """``argv`` pinned to ``cpu`` from its start (so processes it forks at once are pinned too)."""
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


def _pinned(argv: list[str], cpu: int | None, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        _taskset(argv, cpu), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs
    )


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def _stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def side_by_side(n: int, healer_cpu: int, server_cpu: int | None) -> Rates:
    """nginx serving N endpoints; blackbox_exporter via wrk, then the healer, on the same core."""
    with tempfile.TemporaryDirectory(prefix="aftershock-bench-") as tmp:
        nginx_port, blackbox_port = _free_port(), _free_port()
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=tmp, port=nginx_port, workers=1, ep=EP_PLAIN))
        nginx = _pinned(["nginx", "-c", str(conf), "-p", tmp], server_cpu)
        try:
            _wait_listening(nginx_port, "nginx")
            (Path(tmp) / "blackbox.yml").write_text(BLACKBOX_CONF)
            blackbox = _pinned(
                [
                    "prometheus-blackbox-exporter",
                    f"--config.file={tmp}/blackbox.yml",
                    f"--web.listen-address=127.0.0.1:{blackbox_port}",
                ],
                healer_cpu,
                env={**os.environ, "GOMAXPROCS": "1"},
            )
            try:
                _wait_listening(blackbox_port, "blackbox_exporter")
                probes, cpu, success = _drive_blackbox(
                    tmp,
                    n,
                    nginx_port=nginx_port,
                    port=blackbox_port,
                    pid=blackbox.pid,
                    cpu=server_cpu,
                )
            finally:
                _stop(blackbox)
            _say(f"blackbox_exporter: {probes} probes in {cpu:.2f} CPU-s")
            ours = _rate_process(n, nginx_port, healer_cpu)
            _say(f"aftershock: {ours['probes']} probes in {ours['cpu']:.2f} CPU-s")
        finally:
            _stop(nginx)
    return Rates(n, probes, cpu, success, ours["probes"], ours["cpu"], ours["ok"])


def _drive_blackbox(
    tmp: str, n: int, *, nginx_port: int, port: int, pid: int, cpu: int | None
) -> tuple[int, float, bool]:
    """(probes, CPU-seconds of blackbox_exporter, a probe succeeded) under wrk's load."""
    target = f"http%3A%2F%2F127.0.0.1%3A{nginx_port}%2Fep%2F0"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/probe?module=http_2xx&target={target}") as answer:
        success = b"probe_success 1" in answer.read()
    script = Path(tmp) / "probe.lua"
    script.write_text(WRK_SCRIPT.format(n=n, port=nginx_port))
    argv = ["wrk", "-t1", "-c64", f"-d{RATE_SECONDS:g}s", "-s", str(script)]
    argv.append(f"http://127.0.0.1:{port}")
    cpu_from = _cpu_seconds(pid)
    wrk = subprocess.run(
        ["taskset", "-c", str(cpu if cpu is not None else 0), *argv],
        capture_output=True,
        text=True,
        check=True,
    )
    spent = _cpu_seconds(pid) - cpu_from
    done = next(int(line.split()[0]) for line in wrk.stdout.splitlines() if "requests in" in line)
    return done, spent, success


def _rate_process(n: int, port: int, cpu: int) -> dict[str, Any]:
    argv = [sys.executable, str(Path(__file__).resolve()), "rate", "--n", str(n)]
    argv += ["--port", str(port)]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    os.sched_setaffinity(child.pid, {cpu})
    out, _ = child.communicate(timeout=WARMUP_CAP + RATE_SECONDS + 60)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"the rate step printed no result (exit {child.returncode})")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


async def run_rate(n: int, port: int) -> dict[str, Any]:
    """The healer watching ``n`` nginx endpoints at 1 s, as aftershock heal builds it."""
    recorded = {f"ep{i}": Samples() for i in range(n)}
    the_policy = policy(n, port, act=False)
    probes: dict[str, Probe] = {
        name: Timed(build_probe(spec, clock=SystemClock()), recorded[name])
        for name, spec in the_policy.spec.watch.items()
    }
    healer = Healer(
        the_policy,
        probes=probes,
        actions={},
        clock=SystemClock(),
        events=Sink(),
        stagger=True,
        gate=SampleGate(clock=SystemClock()),
    )
    healer.start()
    settling = asyncio.create_task(settle_heap([healer], SystemClock()))
    started = time.monotonic()
    while time.monotonic() - started < WARMUP_CAP:
        if sum(s.oks >= 2 for s in recorded.values()) >= 0.99 * n:
            break
        await asyncio.sleep(0.1)
    before = sum(len(s.calls) for s in recorded.values())
    oks_before = sum(s.oks for s in recorded.values())
    cpu_from = time.process_time()
    await asyncio.sleep(RATE_SECONDS)
    cpu = time.process_time() - cpu_from
    settling.cancel()
    done = sum(len(s.calls) for s in recorded.values()) - before
    oks = sum(s.oks for s in recorded.values()) - oks_before
    return {"probes": done, "cpu": cpu, "ok": oks / done if done else 0.0}


def _print_rates(rates: Rates) -> None:
    ratio = rates.aftershock / rates.blackbox if rates.blackbox else float("nan")
    print(
        f"side by side, {rates.n} endpoints on one nginx, one core each: "
        f"blackbox_exporter {rates.blackbox:,.0f} probes/CPU-s "
        f"({rates.blackbox_probes} probes via wrk, {rates.blackbox_cpu:.2f} CPU-s, "
        f"probe_success {'1' if rates.blackbox_success else '0'}); "
        f"aftershock {rates.aftershock:,.0f} probes/CPU-s "
        f"({rates.aftershock_probes} samples at every 1s, {rates.aftershock_cpu:.2f} CPU-s, "
        f"{rates.aftershock_ok:.1%} ok); ratio {ratio:.2f}x -> "
        f"{'MET' if ratio >= TARGET_RATIO else 'NOT MET'} (target >= {TARGET_RATIO:g}x)",
        flush=True,
    )


def _print_overload(results: list[StepResult], rates: Rates | None) -> None:
    capacity = rates.aftershock if rates is not None else None
    for r in results:
        overloaded = capacity is not None and r.n / EVERY > capacity
        line = (
            f"{r.n} endpoints{' (more than the unloaded capacity)' if overloaded else ''}: "
            f"served {r.served:,.0f} samples/s ({r.served_per_cpu:,.0f} per healer CPU-s), "
            f"lag (aftershock_probe_lag_seconds) p50 {_ms(r.lag_p50)} p95 {_ms(r.lag_p95)} "
            f"p99 {_ms(r.lag_p99)}, "
            f"/readyz: {r.readyz}; /healthz: {r.healthz}; healer cpu {r.cpu:.0%}"
            f"{'' if r.settled else ' (heap not yet frozen)'}, "
            f"server ({r.server}) cpu {_share(r.server_cpu)}"
        )
        if capacity:
            want = min(r.n / EVERY, capacity)
            share = r.served / want
            verdict = "MET" if share >= TARGET_SERVED else "NOT MET"
            line += (
                f"; served {share:.0%} of min(demand {r.n / EVERY:,.0f}/s, unloaded capacity "
                f"{capacity:,.0f}/s) -> {verdict} (target >= {TARGET_SERVED:.0%})"
            )
        print(line)


def _share(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0%}"


def _overload_step(spec: str, steps: list[int], rates: Rates | None) -> int | None:
    """The endpoint count of the overload step: ``auto`` is 1.3x the capacity, in thousands."""
    if spec == "auto":
        if rates is None or not rates.aftershock:
            return None
        n = math.ceil(1.3 * rates.aftershock * EVERY / 1000) * 1000
    else:
        n = int(spec)
    return n if n and n not in steps else None


def main() -> None:  # noqa: PLR0915 - the bench's whole run, in order
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "mode", nargs="?", default="bench", choices=["bench", "serve", "step", "rate"]
    )
    parser.add_argument("--port", type=int, default=0, help="serve, step: the server's port")
    parser.add_argument("--n", type=int, default=0, help="step: how many endpoints")
    parser.add_argument("--steps", default="1000,3000", help="endpoint counts")
    parser.add_argument(
        "--overload",
        default="auto",
        help="one more step with this many endpoints (auto: 1.3x the measured capacity; 0: none)",
    )
    parser.add_argument(
        "--rate-endpoints", type=int, default=1000, help="endpoints of the side-by-side run"
    )
    parser.add_argument("--health-port", type=int, default=0, help="step: /healthz port")
    parser.add_argument("--control", type=int, default=0, help="step: /go and /hook port")
    parser.add_argument("--server-pids", default="", help="step: the server's processes")
    parser.add_argument("--down-dir", help="serve: make down/<i> files for nginx")
    parser.add_argument(
        "--server",
        choices=["nginx", "python"],
        help="what serves the steps' endpoints (default: nginx when installed)",
    )
    parser.add_argument(
        "--server-workers", type=int, default=1, help="nginx worker processes of the steps"
    )
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument(
        "--no-action", action="store_true", help="playbooks never fire (watching only)"
    )
    parser.add_argument(
        "--shared-client",
        action="store_true",
        help="all probes share one httpx client (aftershock heal gives each its own)",
    )
    args = parser.parse_args()
    if args.mode == "serve":
        serve(args.port, args.down_dir)
        return
    if args.mode == "rate":
        print(json.dumps(asyncio.run(run_rate(args.n, args.port))), flush=True)
        os._exit(0)
    if args.mode == "step":
        result = asyncio.run(
            run_step(
                args.n,
                args.port,
                args.seed,
                act=not args.no_action,
                shared=args.shared_client,
                health_port=args.health_port,
                control=args.control,
                server_pids=tuple(int(pid) for pid in args.server_pids.split(",") if pid),
            )
        )
        print(json.dumps(asdict(result)), flush=True)
        os._exit(0)  # leave the healer's leftovers (a stop past its cap) behind
    steps = [int(s) for s in args.steps.split(",") if s]
    cores = sorted(os.sched_getaffinity(0))
    healer_cpu, server_cpu = cores[0], (cores[1] if len(cores) > 1 else None)
    kind = args.server or ("nginx" if shutil.which("nginx") else "python")
    described = EndpointServer(kind, server_cpu, args.server_workers).describe()
    load = os.getloadavg()
    print(
        f"healer benchmark: every {EVERY:g}s, timeout {TIMEOUT * 1000:g}ms, "
        f"unhealthyAfter {UNHEALTHY_AFTER}; the healer (one process per step) pinned to "
        f"CPU {healer_cpu}, the endpoint server ({described}) "
        f"to CPU {server_cpu if server_cpu is not None else 'any'}; "
        f"playbooks {'call /hook' if not args.no_action else 'never fire'}; "
        f"{'one shared HTTP client' if args.shared_client else 'one HTTP client per probe'}; "
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    missing = missing_tools()
    rates: Rates | None = None
    if missing:
        print(
            "side by side with blackbox_exporter: skipped, missing programs; install them with "
            f"`apt-get install -y {' '.join(missing)}`",
            flush=True,
        )
    else:
        rates = side_by_side(args.rate_endpoints, healer_cpu, server_cpu)
        _print_rates(rates)
    extra = _overload_step(args.overload, steps, rates)
    steps += [extra] if extra else []
    results = []
    for n in steps:
        t0 = time.monotonic()
        with EndpointServer(kind, server_cpu, args.server_workers) as server:
            results.append(_step_process(n, server, args, healer_cpu))
        _say(f"{n} endpoints: step took {time.monotonic() - t0:.0f}s")
    print()
    print(_table(results))
    print()
    print(
        f"on time = started <= {LATE * 1000:g} ms after its tick and answered within "
        f"{TIMEOUT * 1000:g} ms with the endpoint's real state; late = start after the tick; "
        f"det = outage to unhealthy; ovh = det - {UNHEALTHY_AFTER} x {EVERY:g}s "
        "(ideal: -1000..0 ms); cpu = the healer's share of its core while measuring; "
        f"stop = Healer.stop() (capped at {STOP_CAP:g}s)"
    )
    _print_overload(results, rates)
    if rates is not None:
        _print_rates(rates)  # again, next to the verdicts
    capable = [r.n for r in results if r.on_time >= 0.99]
    print(
        "largest step with >= 99 % of samples on time: "
        + (f"{max(capable)} endpoints" if capable else "none")
    )
    at_target = next((r for r in results if r.n == TARGET_ENDPOINTS), None)
    if at_target is None:
        print(f"target ({TARGET_ENDPOINTS} endpoints) not measured in this run")
    else:
        met = at_target.on_time >= 0.99 and at_target.overhead_p99 <= TARGET_OVERHEAD
        print(
            f"target: {TARGET_ENDPOINTS} endpoints, >= 99 % on time, p99 overhead <= "
            f"{TARGET_OVERHEAD * 1000:g} ms -> {'MET' if met else 'NOT MET'} "
            f"({at_target.on_time:.1%} on time, p99 overhead {_ms(at_target.overhead_p99)}, "
            f"{at_target.detected}/{at_target.down} outages detected)"
        )


if __name__ == "__main__":
    main()
