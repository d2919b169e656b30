"""Soak of the healer: ``aftershock heal`` watching 1,000 endpoints at ``every: 1s``
for 30 minutes; does its memory stay flat?

Run on demand: ``.venv/bin/python bench/bench_soak.py [--minutes 30] [--endpoints 1000]``
(needs Debian's ``nginx-light``; the bench installs nothing).

* **nginx** on 127.0.0.1 (one worker, pinned to the second core when there is
  one) serves ``/ep/<i>``: 200, or 503 while the file ``down/<i>`` exists in
  the bench's directory.
* **the healer** is ``aftershock heal`` itself (this file with ``heal``, which
  runs the CLI in-process so ``--trace`` can take tracemalloc snapshots), with
  its own ``$AFTERSHOCK_HOME`` (SQLite state store, audit log), pinned to the
  first core, on a generated policy file: one watch per endpoint (``every: 1s``,
  ``timeout: 500ms``, ``unhealthyAfter: 3``, ``healthyAfter: 2``); each
  flapping endpoint has a playbook: ``http.call`` to the bench's
  ``/heal/<i>``, then ``wait.healthy``; the policy escalates to the bench's
  ``/alerts``.
* **flapping**: ``--flappers`` endpoints (default 20) go down once per 90 s,
  their phases spread over the period, until the healer's ``/heal/<i>`` brings
  them back (or for 20 s at most), so watches turn unhealthy and healthy again,
  incidents open and close with an MTTR, and playbooks restore, all through
  the soak. On every other outage of half of them ``/heal/<i>`` answers 404: a
  permanent error, so the healer escalates; the next outage is healed, which
  ends the escalation episode, so the one after escalates again.

After a warm-up (``--warmup``, default 150 s: every watch's bounded sample
series is full after 100 s), the bench reads the healer's RSS (``VmRSS`` of
``/proc/<pid>/status``) and its ``/metrics``, again every ``--every`` minutes,
and at the end; it prints RSS, its growth since the start (target: < 5 %),
samples served per second against the declared 1,000/s, the share that started
on time (``aftershock_probe_lag_seconds`` <= 100 ms) and that answered within
the 500 ms timeout (``aftershock_probe_latency_seconds``), incidents closed,
remediations and escalations, the healer's CPU and the machine's load average.

With ``--trace DIR`` the healer runs under tracemalloc and writes a snapshot to
DIR on SIGUSR1 (the bench sends one at the start and at the end), then the
bench prints the top 15 growing allocation sites between the two.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# The same nginx as bench_healer's steps: /ep/<i> answers 503 while down/<i> exists.
from bench_healer import EP_FLIPPING, NGINX_CONF

EVERY = 1.0
TIMEOUT = 0.5
LATE = 0.100
TARGET_GROWTH = 0.05
FLAP_PERIOD = 90.0
FLAP_DOWN = 20.0


def policy_yaml(n: int, port: int, flappers: list[int], hook: int) -> str:
    """One watch per endpoint; a playbook per flapping endpoint; escalation to /alerts."""
    base = f"http://127.0.0.1:{port}"
    heal = f"http://127.0.0.1:{hook}"
    lines = [
        "apiVersion: aftershock.dev/v1alpha1",
        "kind: HealingPolicy",
        "metadata: {name: soak}",
        "spec:",
        "  watch:",
    ]
    for i in range(n):
        lines.append(
            f"    ep{i}: {{http: {{url: '{base}/ep/{i}', timeout: {TIMEOUT * 1000:g}ms}}, "
            f"every: {EVERY:g}s, unhealthyAfter: 3, healthyAfter: 2}}"
        )
    lines.append("  playbooks:")
    for i in flappers:
        lines += [
            f"    - name: heal-{i}",
            f"      when: {{unhealthy: ep{i}}}",
            "      steps:",
            f"        - {{action: http.call, with: {{url: '{heal}/heal/{i}'}}, timeout: 2s}}",
            f"        - {{action: wait.healthy, with: {{probe: ep{i}, within: 10s}}}}",
            "      limits: {maxAttempts: 2, backoff: {initial: 1s, max: 5s}, cooldown: 30s}",
        ]
    lines += [
        f"  escalate: {{webhook: {{url: '{heal}/alerts'}}}}",
        "  disruptionBudget: {max: 10000, per: 1h}",
        "  breaker: {failures: 1000, reset: 1m}",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the healer process


def heal(argv: list[str], trace: str | None) -> None:
    """Run ``aftershock heal`` in this process; with ``trace``, SIGUSR1 writes a snapshot."""
    from aftershock.cli.main import app

    if trace:
        tracemalloc.start(8)
        taken = 0

        def snapshot(_signum: int, _frame: object) -> None:
            nonlocal taken
            taken += 1
            tracemalloc.take_snapshot().dump(str(Path(trace) / f"snapshot-{taken}.bin"))
            (Path(trace) / f"snapshot-{taken}.done").touch()

        signal.signal(signal.SIGUSR1, snapshot)
    app(["heal", *argv], prog_name="aftershock")


# ---------------------------------------------------------------- the bench process


def _say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(
    port: int, what: str, limit: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port}")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Flapper:
    """Takes the flapping endpoints down once per FLAP_PERIOD; heals them when asked.

    An endpoint is down (the file ``down/<i>``) from the start of its cycle
    until the healer's playbook calls ``POST /heal/<i>`` on this object's HTTP
    server, or for FLAP_DOWN seconds at most. ``/heal/<i>`` answers 404 (a
    permanent error) on every other outage of the escalating half, and leaves
    the endpoint down; ``/alerts`` counts escalations delivered.
    """

    def __init__(self, work: Path, flappers: list[int]) -> None:
        self.down_dir = work / "down"
        self.escalating = set(flappers[1::2])
        self.phase = {i: k * FLAP_PERIOD / len(flappers) for k, i in enumerate(flappers)}
        self.flaps = self.heals = self.refused = self.alerts = 0
        self._down: dict[int, float] = {}
        """Down endpoints: when they come back by themselves."""
        self._broken: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._serving = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _run(self) -> None:
        cycle = dict.fromkeys(self.phase, -1)
        while not self._stop.wait(0.1):
            now = time.monotonic() - self._started
            with self._lock:
                for i, phase in self.phase.items():
                    k = int((now - phase) // FLAP_PERIOD) if now >= phase else -1
                    if k > cycle[i]:
                        cycle[i] = k
                        self._down[i] = now + FLAP_DOWN
                        (self.down_dir / str(i)).touch()
                        self.flaps += 1
                        if i in self.escalating and k % 2:
                            self._broken.add(i)  # this outage, its playbook fails for good
                        else:
                            self._broken.discard(i)
                    elif i in self._down and now >= self._down[i]:
                        self._up(i)

    def _up(self, i: int) -> None:
        self._down.pop(i, None)
        (self.down_dir / str(i)).unlink(missing_ok=True)

    def _heal(self, i: int) -> int:
        with self._lock:
            if i in self._broken:
                self.refused += 1
                return 404
            if i in self._down:
                self._up(i)
                self.heals += 1
            return 200

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        flapper = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                status = 404
                if self.path.startswith("/heal/"):
                    status = flapper._heal(int(self.path.removeprefix("/heal/")))
                elif self.path == "/alerts":
                    with flapper._lock:
                        flapper.alerts += 1
                    status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> Flapper:
        self._serving.start()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._server.shutdown()
        self._server.server_close()


_SAMPLE = re.compile(r"^(\w+?)(?:\{([^}]*)\})? ([0-9.e+-]+|NaN|\+Inf)$")


@dataclass
class Reading:
    """One look at the healer: RSS, CPU, and the counters of its /metrics."""

    at: float
    rss: int
    cpu: float
    samples: float = 0.0
    lag_on_time: float = 0.0
    lag_count: float = 0.0
    lag_period: float = 0.0
    answered: float = 0.0
    closed: float = 0.0
    remediations: float = 0.0
    escalations: float = 0.0
    flaps: int = 0
    heals: int = 0
    alerts: int = 0


def _read(pid: int, metrics_url: str, flapper: Flapper) -> Reading:
    reading = Reading(
        at=time.monotonic(),
        rss=_rss_kib(pid),
        cpu=_cpu_seconds(pid),
        flaps=flapper.flaps,
        heals=flapper.heals,
        alerts=flapper.alerts,
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(metrics_url, timeout=30) as answer:
        text = answer.read().decode()
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.group(1), match.group(2) or "", float(match.group(3))
        if name == "aftershock_probe_latency_seconds_count":
            reading.samples += value
        elif name == "aftershock_probe_latency_seconds_bucket" and f'le="{TIMEOUT}"' in labels:
            reading.answered += value
        elif name == "aftershock_probe_lag_seconds_count":
            reading.lag_count = value
        elif name == "aftershock_probe_lag_seconds_bucket" and f'le="{LATE}"' in labels:
            reading.lag_on_time = value
        elif name == "aftershock_probe_lag_seconds_bucket" and f'le="{EVERY}"' in labels:
            reading.lag_period = value
        elif name == "aftershock_mttr_seconds_count":
            reading.closed += value
        elif name == "aftershock_remediations_total":
            reading.remediations += value
        elif name == "aftershock_escalations_total":
            reading.escalations += value
    return reading


def _between(first: Reading, last: Reading) -> str:
    wall = last.at - first.at
    samples = last.samples - first.samples
    lagged = last.lag_count - first.lag_count
    on_time = (last.lag_on_time - first.lag_on_time) / lagged if lagged else 0.0
    in_period = (last.lag_period - first.lag_period) / lagged if lagged else 0.0
    answered = (last.answered - first.answered) / samples if samples else 0.0
    return (
        f"{samples:,.0f} samples ({samples / wall:,.0f}/s), started on time {on_time:.2%} "
        f"(within {EVERY:g}s {in_period:.2%}), "
        f"answered within {TIMEOUT * 1000:g}ms {answered:.2%}, "
        f"cpu {(last.cpu - first.cpu) / wall:.0%}, "
        f"incidents closed {last.closed - first.closed:.0f}, "
        f"remediations {last.remediations - first.remediations:.0f}, "
        f"escalations {last.escalations - first.escalations:.0f} "
        f"({last.alerts - first.alerts} delivered), "
        f"outages {last.flaps - first.flaps} ({last.heals - first.heals} healed by the healer)"
    )


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def _snapshot(pid: int, trace: Path, k: int) -> Path:
    os.kill(pid, signal.SIGUSR1)
    done = trace / f"snapshot-{k}.done"
    deadline = time.monotonic() + 120
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    return trace / f"snapshot-{k}.bin"


def _print_growth(first: Path, last: Path) -> None:
    before = tracemalloc.Snapshot.load(str(first))
    after = tracemalloc.Snapshot.load(str(last))
    print("tracemalloc, top growing allocation sites (start -> end):")
    for stat in after.compare_to(before, "traceback")[:15]:
        print(f"  {stat.size_diff / 1024:+,.0f} KiB ({stat.count_diff:+,} blocks)")
        for frame in stat.traceback.format()[-6:]:
            print(f"      {frame}")


def soak(args: argparse.Namespace) -> int:  # noqa: PLR0915 - the soak, in order
    if shutil.which("nginx") is None:
        print("bench_soak needs nginx: `apt-get install -y nginx-light`")
        return 2
    cores = sorted(os.sched_getaffinity(0))
    healer_cpu, server_cpu = cores[0], (cores[1] if len(cores) > 1 else None)
    n = args.endpoints
    step = max(n // args.flappers, 1) if args.flappers else 0
    flappers = [k * step + step // 2 for k in range(args.flappers)] if step else []
    with tempfile.TemporaryDirectory(prefix="aftershock-soak-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # nginx's workers (an unprivileged user) look into down/
        (work / "down").mkdir()
        (work / "home").mkdir()
        port, listen = _free_port(), _free_port()
        flapper = Flapper(work, flappers)
        endpoints = EP_FLIPPING.format(dir=tmp)
        conf = NGINX_CONF.format(dir=tmp, port=port, workers=1, ep=endpoints)
        (work / "nginx.conf").write_text(conf)
        (work / "policy.yaml").write_text(policy_yaml(n, port, flappers, flapper.port))
        nginx = subprocess.Popen(
            ["nginx", "-c", str(work / "nginx.conf"), "-p", tmp],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if server_cpu is not None:
            os.sched_setaffinity(nginx.pid, {server_cpu})
        trace = Path(args.trace) if args.trace else None
        argv = [sys.executable, str(Path(__file__).resolve()), "heal"]
        argv += ["--trace", str(trace)] if trace else []
        argv += ["--", str(work / "policy.yaml"), "--listen", f"127.0.0.1:{listen}"]
        env = {**os.environ, "AFTERSHOCK_HOME": str(work / "home")}
        log = (work / "heal.log").open("wb")  # a pipe nobody reads would stall the healer
        healer = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        os.sched_setaffinity(healer.pid, {healer_cpu})
        try:
            _wait_listening(port, "nginx")
            _wait_listening(listen, "aftershock heal", limit=120, process=healer)
            metrics_url = f"http://127.0.0.1:{listen}/metrics"
            print(
                f"healer soak: aftershock heal (pid {healer.pid}, CPU {healer_cpu}) watching "
                f"{n} endpoints at every {EVERY:g}s on nginx (CPU {server_cpu}); "
                f"{len(flappers)} flap (down every {FLAP_PERIOD:g}s until healed, "
                f"{FLAP_DOWN:g}s at most; half escalate on every other outage); "
                f"warm-up {args.warmup:g}s, "
                f"then {args.minutes:g} min; {os.cpu_count()} CPUs, {_load()}",
                flush=True,
            )
            with flapper:
                time.sleep(args.warmup)
                if healer.poll() is not None:
                    raise RuntimeError("aftershock heal exited during the warm-up")
                snapshots = [_snapshot(healer.pid, trace, 1)] if trace else []
                _read(healer.pid, metrics_url, flapper)  # the first scrape's peak, before
                first = _read(healer.pid, metrics_url, flapper)
                _say(f"start: RSS {first.rss / 1024:,.1f} MiB; {_load()}")
                previous = first
                end = first.at + args.minutes * 60
                while time.monotonic() < end:
                    time.sleep(min(args.every * 60, max(end - time.monotonic(), 0)))
                    if healer.poll() is not None:
                        raise RuntimeError("aftershock heal exited during the soak")
                    now = _read(healer.pid, metrics_url, flapper)
                    growth = now.rss / first.rss - 1
                    _say(
                        f"+{(now.at - first.at) / 60:.0f} min: RSS {now.rss / 1024:,.1f} MiB "
                        f"({growth:+.2%}); {_between(previous, now)}; {_load()}"
                    )
                    previous = now
                last = previous
                if trace:
                    snapshots.append(_snapshot(healer.pid, trace, 2))
        finally:
            healer.send_signal(signal.SIGTERM)
            try:
                healer.wait(timeout=30)
            except subprocess.TimeoutExpired:
                healer.kill()
                healer.wait()
            log.close()
            said = (work / "heal.log").read_text(errors="replace")
            if healer.returncode not in (0, -signal.SIGTERM):
                print(f"aftershock heal exited {healer.returncode}: {said[-2000:]}", flush=True)
            nginx.terminate()
            nginx.wait(timeout=10)
        growth = last.rss / first.rss - 1
        print()
        print(
            f"RSS at start {first.rss / 1024:,.1f} MiB, at end {last.rss / 1024:,.1f} MiB "
            f"after {(last.at - first.at) / 60:.1f} min: growth {growth:+.2%} -> "
            f"{'MET' if growth < TARGET_GROWTH else 'NOT MET'} (target < {TARGET_GROWTH:.0%})"
        )
        print(f"whole soak: {_between(first, last)}; {_load()}")
        if trace and len(snapshots) == 2:
            _print_growth(*snapshots)
    return 0 if growth < TARGET_GROWTH else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("mode", nargs="?", default="soak", choices=["soak", "heal"])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the soak")
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--flappers", type=int, default=20, help="endpoints that flap")
    parser.add_argument("--warmup", type=float, default=150.0, help="seconds before the start")
    parser.add_argument("--every", type=float, default=5.0, help="minutes between readings")
    parser.add_argument("--trace", help="tracemalloc snapshots into this directory")
    argv = sys.argv[1:]
    rest = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: len(argv) - len(rest) - (1 if rest else 0)])
    if args.mode == "heal":  # heal [--trace DIR] -- <the arguments of aftershock heal>
        heal(rest, args.trace)
        return
    sys.exit(soak(args))


if __name__ == "__main__":
    main()
