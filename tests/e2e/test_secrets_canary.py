"""Secrets canary: a canary in every field that takes ``${secret:...}``, none in any output.

Every model field typed to accept a ``Secret`` gets a canary: HTTP and
Prometheus probe URLs and headers, HTTP probe bodies, command probe env,
process target env, ``http.call`` URL, headers and body, ``command`` action
env, and the escalation webhook's URL and headers. The canaries are a plain
token, one with two spaces and a newline inside, a 300-character one, and the
percent-encoded form of the second (where a URL or a header cannot carry raw
blanks). Servers on 127.0.0.1 echo back everything they receive (query,
headers, body) and processes print their environment, so every canary comes
back to aftershock at least once, in several encodings.

``aftershock run`` (with an in-process healer), a run whose target dies
printing its environment, ``aftershock heal``, ``validate``, ``report``,
``history`` and ``run --dry-run`` then run as subprocesses with debug JSON
logs, and every output is searched: stdout and stderr, every file under
``$AFTERSHOCK_HOME`` (journal, ledger, audit log, healer state), the HTML and
Markdown report, the JUnit file, ``/metrics`` and ``/healthz``, and the bodies
of escalations posted to the webhook. The search looks for each canary as
written, percent-encoded and JSON-escaped, and for every 8-character piece of
them, so a secret cut short or with its blanks collapsed is found too.

The supervised targets' own logs (``logs/<run>/<target>.log``) hold what the
targets printed, canaries included: they are the targets' output, not
aftershock's, and serve as proof that the canaries were delivered.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest

from tests.support.docker import free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PLAIN = "cnryP-Hq7Zk2Wm"
BLANKS = "cnryW-Jd4Zq  Lx8Zr\nTv3Zs"  # two spaces and a newline inside
LONG = "cnryL-" + "".join(f"{i:03d}Zq" for i in range(58)) + "endZ"
ENCODED = quote(BLANKS, safe="")
CANARIES = {
    "CANARY_PLAIN": PLAIN,
    "CANARY_BLANKS": BLANKS,
    "CANARY_LONG": LONG,
    "CANARY_ENCODED": ENCODED,
}

# A server that answers every request with everything it received, and prints
# its argv and the CANARY_* part of its environment when it starts.
ECHO = r"""
import json, os, sys, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, record = int(sys.argv[1]), sys.argv[2]
print("argv:", sys.argv, flush=True)
for name, value in sorted(os.environ.items()):
    if name.startswith("CANARY"):
        print(f"{name}={value}", "encoded:", urllib.parse.quote(value), flush=True)


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        split = urllib.parse.urlsplit(self.path)
        got = {
            "method": self.command,
            "target": self.path,
            "query": {k: v[0] for k, v in urllib.parse.parse_qs(split.query).items()},
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
            "pid": os.getpid(),
        }
        with open(record, "a", encoding="utf-8") as out:
            out.write(json.dumps(got) + "\n")
        status, payload = 200, got
        if split.path.endswith("/api/v1/query"):
            # The decoded text, raw newlines and all, in a Prometheus error.
            text = f"target={urllib.parse.unquote(self.path)} headers={got['headers']} body={body}"
            status, payload = 400, {"status": "error", "errorType": "bad_data", "error": text}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Echo).serve_forever()
"""

# A command that prints the variables it is given as secrets (as written and
# encoded) to stdout and stderr, records that it did, and fails. (It inherits
# aftershock's environment too, which holds every canary: a variable it was
# not given as a secret is not aftershock's to hide.)
PRINTER = r"""
import os, sys, urllib.parse
lines = []
given = ("CANARY_PLAIN", "CANARY_BLANKS", "CANARY_LONG", "CANARY_MIX")
# The longest last: the line a one-line error quotes.
for name in sorted(given, key=lambda name: len(os.environ[name])):
    value = os.environ[name]
    lines.append(f"{name}={value} encoded={urllib.parse.quote(value)}")
text = "\n".join(lines) + "\n"
sys.stdout.write(text)
sys.stderr.write(text)
with open(sys.argv[1], "a", encoding="utf-8") as out:
    out.write(text)
sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
"""

ENV_ALL = (
    '{CANARY_PLAIN: "${secret:CANARY_PLAIN}", CANARY_BLANKS: "${secret:CANARY_BLANKS}",'
    ' CANARY_LONG: "${secret:CANARY_LONG}", CANARY_MIX: "pre ${secret:CANARY_PLAIN} post"}'
)

TARGET = (
    '{{process: {{command: ["{python}", "{echo}", "{target_port}", "{target_record}"],'
    " env: "
    + ENV_ALL.replace("{", "{{").replace("}", "}}")
    + ', ready: "127.0.0.1:{target_port}"}}}}'
)

PROBES = """\
    ok: {{http: {{url: "{echo_url}/ok?k=${{secret:CANARY_PLAIN}}"}}, every: 200ms}}
    url-plain: {{http: {{url: "{echo_url}/q?k=${{secret:CANARY_PLAIN}}", expectBody: {{jsonPath: $.query.k, equals: x}}}}, every: 300ms}}
    url-target: {{http: {{url: "{echo_url}/q?e=${{secret:CANARY_ENCODED}}&l=${{secret:CANARY_LONG}}", expectBody: {{jsonPath: $.target, equals: x}}}}, every: 300ms}}
    url-decoded: {{http: {{url: "{echo_url}/q?e=${{secret:CANARY_ENCODED}}", expectBody: {{jsonPath: $.query.e, equals: x}}}}, every: 300ms}}
    url-long: {{http: {{url: "{echo_url}/q?l=${{secret:CANARY_LONG}}", expectBody: {{jsonPath: $.query.l, equals: x}}}}, every: 300ms}}
    header-bearer: {{http: {{url: "{echo_url}/h", headers: {{Authorization: "Bearer ${{secret:CANARY_PLAIN}}"}}, expectBody: {{jsonPath: "$.headers.authorization", equals: x}}}}, every: 300ms}}
    header-long: {{http: {{url: "{echo_url}/h", headers: {{X-Long: "${{secret:CANARY_LONG}}"}}, expectBody: {{jsonPath: "$.headers['x-long']", equals: x}}}}, every: 300ms}}
    header-encoded: {{http: {{url: "{echo_url}/h", headers: {{X-Enc: "${{secret:CANARY_ENCODED}}"}}, expectBody: {{jsonPath: "$.headers['x-enc']", equals: x}}}}, every: 300ms}}
    header-blanks: {{http: {{url: "{echo_url}/h", headers: {{X-Blanks: "${{secret:CANARY_BLANKS}}"}}}}, every: 300ms}}
    body-blanks: {{http: {{url: "{echo_url}/b", method: POST, body: "${{secret:CANARY_BLANKS}}", expectBody: {{jsonPath: $.body, equals: x}}}}, every: 300ms}}
    body-long: {{http: {{url: "{echo_url}/b", method: PUT, body: "${{secret:CANARY_LONG}}", expectBody: {{jsonPath: $.body, equals: x}}}}, every: 300ms}}
    command: {{command: {{command: ["{python}", "{printer}", "{printed}"], env: {env_all}}}, every: 500ms}}
    command-stdout: {{command: {{command: ["{python}", "{printer}", "{printed}", "0"], env: {env_all}, stdout: "never printed"}}, every: 500ms}}
    prometheus: {{prometheus: {{url: "{echo_url}/${{secret:CANARY_ENCODED}}", query: up, expect: "> 0", headers: {{X-Long: "${{secret:CANARY_LONG}}", X-Plain: "${{secret:CANARY_PLAIN}}"}}}}, every: 300ms}}
"""

EXPERIMENT = (
    """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: canary-run}}
spec:
  description: Every field that takes a secret carries a canary.
  targets:
    echo: """
    + TARGET
    + """
  probes:
"""
    + PROBES
    + """\
  slo:
    ok-slo: {{probe: ok, objective: 99%, window: 7d}}
    leaky-slo: {{probe: url-plain, objective: 99%, window: 7d}}
  steadyState:
    - {{probe: ok, over: 1s, expect: {{successRatio: ">= 0.5"}}}}
  method:
    - {{name: kill-echo, fault: process.kill, target: echo, at: 0s, for: 4s}}
  expect: {{recoverWithin: 20s}}
  healing: allow
  healingPolicy: policy.yaml
"""
)

POLICY = (
    """\
apiVersion: aftershock.dev/v1alpha1
kind: HealingPolicy
metadata: {{name: canary-healer}}
spec:
  targets:
    echo: """
    + TARGET
    + """
  watch:
    echo-health:
      http: {{url: "http://127.0.0.1:{target_port}/health?k=${{secret:CANARY_PLAIN}}", headers: {{X-Long: "${{secret:CANARY_LONG}}"}}, timeout: 500ms}}
      every: 100ms
      unhealthyAfter: 2
      healthyAfter: 1
      target: echo
    always-bad:
      http: {{url: "{echo_url}/bad?k=${{secret:CANARY_PLAIN}}&e=${{secret:CANARY_ENCODED}}", headers: {{X-Long: "${{secret:CANARY_LONG}}"}}, expectBody: {{jsonPath: $.query.e, equals: x}}, timeout: 500ms}}
      every: 200ms
      unhealthyAfter: 1
      healthyAfter: 1
    always-bad-too:
      command: {{command: ["{python}", "{printer}", "{printed}"], env: {env_all}}}
      every: 300ms
      unhealthyAfter: 1
      healthyAfter: 1
  playbooks:
    - name: revive
      when: {{unhealthy: echo-health}}
      steps:
        - action: http.call
          with:
            url: "{echo_url}/hook?k=${{secret:CANARY_PLAIN}}&l=${{secret:CANARY_LONG}}"
            headers: {{Authorization: "Bearer ${{secret:CANARY_PLAIN}}", X-Enc: "${{secret:CANARY_ENCODED}}", X-Long: "${{secret:CANARY_LONG}}"}}
            body: "${{secret:CANARY_BLANKS}}"
        - {{action: command, with: {{command: ["{python}", "{printer}", "{printed}"], env: {env_all}, exitCode: 1}}}}
        - {{action: process.start, target: echo}}
        - {{action: wait.healthy, with: {{probe: echo-health, within: 15s}}}}
      limits: {{maxAttempts: 5, backoff: {{initial: 1s, max: 2s}}, cooldown: 1m}}
    - name: give-up
      when: {{unhealthy: always-bad}}
      steps:
        - {{action: command, with: {{command: ["{python}", "{printer}", "{printed}"], env: {env_all}}}, errors: permanent}}
      limits: {{maxAttempts: 1, cooldown: 10m}}
      onFailure: escalate
    - name: bad-call
      when: {{unhealthy: always-bad-too}}
      steps:
        - {{action: http.call, with: {{url: "{echo_url}/hook2?k=${{secret:CANARY_PLAIN}}", headers: {{X-Blanks: "${{secret:CANARY_BLANKS}}"}}}}}}
      limits: {{maxAttempts: 1, cooldown: 10m}}
      onFailure: stop
  escalate:
    webhook:
      url: "{echo_url}/alerts?k=${{secret:CANARY_PLAIN}}&e=${{secret:CANARY_ENCODED}}"
      headers: {{Authorization: "Bearer ${{secret:CANARY_LONG}}", X-Enc: "${{secret:CANARY_ENCODED}}"}}
"""
)

# A webhook whose header cannot be sent (a raw newline): the escalation fails,
# and the failure, quoting httpx's refusal, goes to the audit log.
UNDELIVERABLE = """\
apiVersion: aftershock.dev/v1alpha1
kind: HealingPolicy
metadata: {{name: canary-undeliverable}}
spec:
  watch:
    never-good:
      http: {{url: "{echo_url}/never?k=${{secret:CANARY_PLAIN}}", headers: {{X-Long: "${{secret:CANARY_LONG}}"}}, expectBody: {{jsonPath: $.query.k, equals: x}}, timeout: 500ms}}
      every: 200ms
      unhealthyAfter: 1
      healthyAfter: 1
  playbooks:
    - name: fail-fast
      when: {{unhealthy: never-good}}
      steps:
        - {{action: command, with: {{command: ["{python}", "{printer}", "{printed}"], env: {env_all}}}, errors: permanent}}
      limits: {{maxAttempts: 1, cooldown: 10m}}
      onFailure: escalate
  escalate:
    webhook:
      url: "{echo_url}/undeliverable?k=${{secret:CANARY_PLAIN}}"
      headers: {{X-Blanks: "${{secret:CANARY_BLANKS}}", X-Long: "${{secret:CANARY_LONG}}"}}
"""

DYING = (
    """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: canary-dying}}
spec:
  targets:
    dying: {{process: {{command: ["{python}", "{printer}", "{printed}", "3"], env: {env_all}, ready: "127.0.0.1:{dead_port}"}}}}
  probes:
"""
    + PROBES
    + """\
  steadyState:
    - {{probe: ok, over: 1s, expect: {{successRatio: ">= 0.5"}}}}
  method:
    - {{name: kill, fault: process.kill, target: dying, at: 0s}}
"""
)

INVALID = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: canary-invalid}}
spec:
  targets:
    argv: {{process: {{command: ["{python}", "${{secret:CANARY_PLAIN}}", "${{secret:CANARY_LONG}}"]}}}}
  probes:
    bad-url: {{http: {{url: "${{secret:CANARY_BLANKS}}"}}}}
    bad-url-long: {{http: {{url: "${{secret:CANARY_LONG}}"}}}}
    bad-query: {{prometheus: {{url: "{echo_url}", query: "${{secret:CANARY_PLAIN}}", expect: "> 0"}}}}
    bad-address: {{tcp: {{address: "${{secret:CANARY_LONG}}"}}}}
  steadyState:
    - {{probe: bad-url, over: 1s, expect: {{successRatio: ">= 0.5"}}}}
  method:
    - {{name: kill, fault: process.kill, target: argv, at: 0s}}
"""


def fragments(secret: str, size: int = 8) -> set[str]:
    """Every ``size``-character piece of each blank-separated word of ``secret``."""
    found: set[str] = set()
    for word in secret.split():
        if len(word) <= size:
            found.add(word)
        found.update(word[i : i + size] for i in range(len(word) - size + 1))
    return found


NEEDLES: frozenset[str] = frozenset(
    piece
    for canary in CANARIES.values()
    for form in (
        canary,
        quote(canary, safe=""),
        quote(canary),
        quote_plus(canary),
        json.dumps(canary)[1:-1],
    )
    for piece in fragments(form) | {form}
)


def hits(text: str) -> list[str]:
    """The canary pieces found in ``text``."""
    return sorted(needle for needle in NEEDLES if needle in text)


class Outputs:
    """Every output collected, by where it came from."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def add(self, where: str, text: str) -> None:
        self.texts[where] = self.texts.get(where, "") + text

    def add_run(self, where: str, result: subprocess.CompletedProcess[str]) -> None:
        self.add(f"{where} stdout", result.stdout)
        self.add(f"{where} stderr", result.stderr)

    def add_tree(self, root: Path, *, skip: set[Path]) -> None:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p not in skip):
            self.add(str(path), read_any(path))

    def leaks(self) -> dict[str, list[str]]:
        """Where a canary piece was found, with the text around its first occurrence."""
        found: dict[str, list[str]] = {}
        for where, text in self.texts.items():
            for needle in hits(text):
                at = text.index(needle)
                found.setdefault(where, []).append(text[max(at - 60, 0) : at + 60])
        return found


def read_any(path: Path) -> str:
    """A file's text; an SQLite database as the text of every row of every table."""
    data = path.read_bytes()
    if not data.startswith(b"SQLite format 3\x00"):
        return data.decode("utf-8", errors="replace")
    rows: list[str] = []
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            rows += [repr(row) for row in db.execute(f'select * from "{table}"')]
    return "\n".join(rows) + data.decode("utf-8", errors="replace")


class Canary:
    """The files, ports, environment and servers of one canary session."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.echo = tmp_path / "echo.py"
        self.echo.write_text(ECHO)
        self.printer = tmp_path / "printer.py"
        self.printer.write_text(PRINTER)
        self.printed = tmp_path / "printed.txt"
        self.received = tmp_path / "received.jsonl"
        self.target_record = tmp_path / "target-received.jsonl"
        self.echo_port = free_port()
        self.env = {
            **os.environ,
            **CANARIES,
            "AFTERSHOCK_HOME": str(self.home),
            "PYTHONUNBUFFERED": "1",
        }
        self.outputs = Outputs()

    def fields(self, **extra: object) -> dict[str, object]:
        return {
            "python": sys.executable,
            "echo": self.echo,
            "printer": self.printer,
            "printed": self.printed,
            "echo_url": f"http://127.0.0.1:{self.echo_port}",
            "target_record": self.target_record,
            "env_all": ENV_ALL,
            "dead_port": free_port(),
            **extra,
        }

    def write(self, name: str, template: str, **extra: object) -> Path:
        path = self.tmp / name
        path.write_text(template.format(**self.fields(**extra)))
        return path

    def aftershock(
        self, where: str, *args: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "aftershock", "--log-level", "debug", "--log-format", "json"]
        result = subprocess.run(
            [*argv, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.tmp,
        )
        self.outputs.add_run(where, result)
        return result

    def received_requests(self, path: Path | None = None) -> list[dict[str, object]]:
        source = path or self.received
        if not source.exists():
            return []
        requests = []
        for line in source.read_text().splitlines():
            try:
                requests.append(json.loads(line))
            except ValueError:
                continue  # a line the server is still writing
        return requests


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Canary]:
    c = Canary(tmp_path)
    server = subprocess.Popen(
        [sys.executable, str(c.echo), str(c.echo_port), str(c.received)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: _answers(c.echo_port), timeout=15)
        yield c
    finally:
        server.terminate()
        server.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ping", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def _heal(c: Canary, *policies: Path) -> None:
    """``aftershock heal`` until it has escalated (and failed to) and revived its target."""
    listen = f"127.0.0.1:{free_port()}"
    log = c.tmp / "heal-stderr.txt"
    with log.open("w") as stderr:
        daemon = subprocess.Popen(
            [
                sys.executable, "-m", "aftershock", "--log-level", "debug", "--log-format", "json",
                "heal", *map(str, policies), "--listen", listen,
            ],
            env=c.env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=c.tmp,
        )  # fmt: skip
        try:
            base = f"http://{listen}"
            assert wait_for(lambda: _ready(base), timeout=30), log.read_text()
            before = len(c.received_requests(c.target_record))
            assert wait_for(lambda: len(c.received_requests(c.target_record)) > before, timeout=15)
            pid = int(c.received_requests(c.target_record)[-1]["pid"])  # type: ignore[call-overload]
            os.kill(pid, signal.SIGKILL)
            audit = c.home / "audit" / "healer.jsonl"
            assert wait_for(
                lambda: audit.exists() and "incident.closed" in audit.read_text(), timeout=60
            ), log.read_text()
            assert wait_for(lambda: _escalated(c), timeout=30)
            assert wait_for(lambda: "healer.escalation-failed" in audit.read_text(), timeout=30), (
                audit.read_text()
            )
            for path in ("/metrics", "/healthz", "/readyz"):
                c.outputs.add(f"heal {path}", httpx.get(base + path, timeout=5).text)
        finally:
            daemon.send_signal(signal.SIGTERM)
            out, _ = daemon.communicate(timeout=60)
            c.outputs.add("heal stdout", out)
    c.outputs.add("heal stderr", log.read_text())
    assert daemon.returncode == 0, log.read_text()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def _escalated(c: Canary) -> bool:
    return any("/alerts" in str(r["target"]) for r in c.received_requests())


def test_no_output_carries_a_canary(canary: Canary) -> None:
    c = canary
    t0 = time.monotonic()
    # The in-run healer's webhook carries a header that cannot be sent (a raw
    # newline): its escalation fails, and the failure is recorded.
    c.write("policy.yaml", POLICY, target_port=(target_port := free_port()))
    experiment = c.write("experiment.yaml", EXPERIMENT, target_port=target_port)
    report = c.tmp / "report"
    junit = c.tmp / "junit.xml"

    validated = c.aftershock("validate", "validate", str(experiment), str(c.tmp / "policy.yaml"))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    invalid = c.write("invalid.yaml", INVALID)
    refused = c.aftershock("validate invalid", "validate", str(invalid))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stdout.count("value is not allowed in this field") == 4, refused.stdout
    assert refused.stdout.count("expected an http:// or https:// URL") == 2, refused.stdout

    dry = c.aftershock("run --dry-run", "run", str(experiment), "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "would apply process.kill to process:echo" in dry.stdout, dry.stdout
    assert not (c.home / "logs").exists()  # no target was started

    run = c.aftershock(
        "run", "run", str(experiment), "--report", str(report), "--junit", str(junit)
    )
    assert run.returncode in (0, 1), run.stdout + run.stderr
    (journal,) = [
        j for j in (c.home / "journal").glob("*.jsonl") if '"dry_run":false' in j.read_text()
    ]
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert "healing" in kinds, kinds  # the in-run healer acted
    details = " ".join(str(e.get("detail", "")) for e in events if e["event"] == "sample")
    assert "***" in details  # echoed secrets reached the samples, redacted

    rerendered = c.tmp / "rerendered"
    again = c.aftershock(
        "report", "report", str(journal), "--out", str(rerendered), "--junit", str(junit) + "2"
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert c.aftershock("history", "history").returncode == 0
    assert c.aftershock("recover", "recover").returncode == 0

    dying = c.write("dying.yaml", DYING)
    died = c.aftershock("run dying", "run", str(dying))
    assert died.returncode == 4, died.stdout + died.stderr
    assert "exited with code 3" in died.stdout + died.stderr

    # The daemon: its webhook takes the escalation (all its headers can be sent).
    policy = c.write("heal-policy.yaml", POLICY, target_port=free_port())
    _heal(c, policy, c.write("undeliverable.yaml", UNDELIVERABLE))

    # Proof that every canary went out and came back in every form.
    received = c.received_requests()
    sent = json.dumps(received)
    for value in CANARIES.values():
        assert json.dumps(value)[1:-1] in sent or quote(value) in sent, value
    assert ENCODED in sent and BLANKS in [r["body"] for r in received]
    printed = c.printed.read_text()
    assert all(canary in printed for canary in (PLAIN, BLANKS, LONG))
    target_logs = {p for p in (c.home / "logs").rglob("*.log") if p.stem in {"echo", "dying"}}
    assert {p.stem for p in target_logs} == {"echo", "dying"}
    for log in target_logs:
        assert LONG in log.read_text(), log  # the targets printed their environment

    # What aftershock wrote: everything under its home except the targets' own
    # logs, the reports, and what it posted to the webhook.
    c.outputs.add_tree(c.home, skip=target_logs)
    c.outputs.add_tree(report, skip=set())
    c.outputs.add_tree(rerendered, skip=set())
    c.outputs.add("junit", junit.read_text())
    c.outputs.add("junit (re-rendered)", Path(str(junit) + "2").read_text())
    for request in received:
        if "/alerts" in str(request["target"]):
            c.outputs.add("escalation payload", str(request["body"]))
    assert "escalation payload" in c.outputs.texts
    audit = c.outputs.texts[str(c.home / "audit" / "healer.jsonl")]
    assert "Illegal header value" in audit  # httpx refused the header, quoting it
    searched = sum(len(t) for t in c.outputs.texts.values())
    assert searched > 100_000, searched
    assert c.outputs.leaks() == {}
    assert time.monotonic() - t0 < 200
