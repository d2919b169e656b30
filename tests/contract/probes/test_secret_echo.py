"""Secrets that come back: servers and commands that echo what a probe sent them.

A probe knows its secrets as configured (a whole URL, a header value); what
comes back is often only the substituted value, percent-encoded, JSON-escaped,
with its blanks collapsed or cut to length. None of it may reach a detail or
a sample body.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from aftershock.loading.loader import load_text
from aftershock.model.experiment import Experiment
from aftershock.model.probes import CommandProbe, HttpProbe, PrometheusProbe
from aftershock.model.secrets import Secret
from aftershock.probes import CommandProbeAdapter, HttpProbeAdapter, PrometheusProbeAdapter
from aftershock.probes.command import OUTPUT_LIMIT
from tests.contract.probes.servers import LocalServer, Request, Response, http_server

pytestmark = pytest.mark.timeout(30)

TOKEN = "tok-Q7x9 w/é"  # a blank, a slash and a non-ASCII letter: all encoded in a URL
BLANKS = "blnk-4Kq2  mid-8Zr1\nend-3Vp6"  # two spaces and a newline inside
LONG = "long-" + "".join(f"{i:03d}Zq" for i in range(59))  # 300 characters


def fragments(secret: str, size: int = 8) -> set[str]:
    """Every ``size``-character piece of each blank-separated word of ``secret``."""
    found: set[str] = set()
    for word in secret.split():
        if len(word) <= size:
            found.add(word)
        found.update(word[i : i + size] for i in range(len(word) - size + 1))
    return found


def leaks(text: str | None, *secrets: str) -> list[str]:
    """Pieces of ``secrets`` (as written or percent-encoded) that appear in ``text``."""
    if not text:
        return []
    found = []
    for secret in secrets:
        for form in (secret, quote(secret, safe=""), quote_plus(secret)):
            found += [piece for piece in fragments(form) if piece in text]
    return found


async def echo(request: Request) -> Response:
    """Everything received, back as JSON: raw target, decoded query, headers, body."""
    token = request.headers.get("x-token", "")
    if request.path == "/pair/api/v1/query":
        # Not a [timestamp, value] pair: the detail quotes the start of it.
        result = [token, "1", "2"]
        return Response.json(
            {"status": "success", "data": {"resultType": "scalar", "result": result}}
        )
    if request.path.endswith("/api/v1/query"):
        error = f"bad query at {request.target} with {json.dumps(request.headers)}"
        return Response.json({"status": "error", "errorType": "bad_data", "error": error}, 400)
    if request.path == "/twice":
        return Response(200, (token + token).encode())
    payload = {
        "target": request.target,
        "query": {k: v[0] for k, v in request.query.items()},
        "headers": request.headers,
        "body": request.body.decode("utf-8", errors="replace"),
    }
    return Response.json(payload)


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with http_server(echo) as srv:
        yield srv


async def sample(spec: HttpProbe, **kwargs: Any) -> Any:
    async with HttpProbeAdapter(spec, **kwargs) as probe:
        return await probe.check()


def mismatch(path: str) -> dict[str, Any]:
    return {"jsonPath": path, "equals": "something else"}


@pytest.mark.parametrize("path", ["$.query.t", "$.target"])
async def test_a_url_secret_echoed_alone_is_redacted(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    # As the loader builds it from "...?t=${secret:PROBE_TOKEN}": the whole URL
    # is the secret; the token alone is in the environment it was read from.
    monkeypatch.setenv("PROBE_TOKEN", TOKEN)
    url = Secret(f"{server.url}/json?t={TOKEN}", ("PROBE_TOKEN",))
    result = await sample(HttpProbe(url=url, expect_body=mismatch(path)))
    assert server.requests[-1].query["t"] == [TOKEN]  # it was sent
    assert not result.ok
    assert "***" in result.detail
    assert leaks(result.detail, TOKEN) == [], result.detail
    assert leaks(result.body, TOKEN) == [], result.body


async def test_secret_parts_recorded_on_the_secret_are_redacted(server: LocalServer) -> None:
    url = Secret(f"{server.url}/json?t={TOKEN}", ("UNSET_IN_THIS_ENVIRONMENT",), (TOKEN,))
    result = await sample(HttpProbe(url=url, expect_body=mismatch("$.query.t")))
    assert not result.ok
    assert leaks(result.detail, TOKEN) == [], result.detail
    assert leaks(result.body, TOKEN) == [], result.body


async def test_a_secret_loaded_from_yaml_is_redacted_where_it_is_echoed(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_TOKEN", TOKEN)
    text = f"""\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: echo}}
spec:
  probes:
    p: {{http: {{url: "{server.url}/json?t=${{secret:PROBE_TOKEN}}", expectBody: {{jsonPath: $.query.t, equals: x}}}}}}
  steadyState:
    - {{probe: p, over: 1s, expect: {{successRatio: ">= 0.9"}}}}
  method:
    - {{name: nothing, fault: process.kill, target: t, at: 0s}}
  targets:
    t: {{process: {{command: ["true"]}}}}
"""
    documents, problems = load_text(text, "echo.yaml")
    assert problems == []
    experiment = documents[0].document
    assert isinstance(experiment, Experiment)
    probe = experiment.spec.probes["p"].http
    assert probe is not None
    assert isinstance(probe.url, Secret)
    result = await sample(probe)
    assert server.requests[-1].query["t"] == [TOKEN]
    assert leaks(result.detail, TOKEN) == [], result.detail
    assert leaks(result.body, TOKEN) == [], result.body


async def test_a_password_in_the_url_is_redacted_also_as_basic_credentials(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # httpx turns the URL's user info into "Authorization: Basic base64(user:password)".
    monkeypatch.setenv("PROBE_PASSWORD", "pw-Z7kq9")
    url = Secret(f"http://probe:pw-Z7kq9@{server.address}/h", ("PROBE_PASSWORD",))
    result = await sample(HttpProbe(url=url, expect_body=mismatch("$.headers.authorization")))
    assert server.requests[-1].headers["authorization"].startswith("Basic ")
    assert (
        result.detail
        == 'jsonPath $.headers.authorization is "Basic ***", expected "something else"'
    )
    assert leaks(result.body, "pw-Z7kq9") == [], result.body


@pytest.mark.parametrize("secret", [BLANKS, LONG], ids=["blanks", "long"])
@pytest.mark.parametrize("where", ["header", "body"])
async def test_odd_secrets_in_headers_and_bodies_are_redacted(
    server: LocalServer, secret: str, where: str
) -> None:
    if where == "header":
        # A header cannot carry a newline; the blanks travel percent-encoded.
        value = quote(secret) if "\n" in secret else secret
        fields: dict[str, Any] = {"headers": {"X-Token": Secret(value)}}
        path = "$.headers['x-token']"
    else:
        fields = {"method": "POST", "body": Secret(secret)}
        path = "$.body"
    result = await sample(HttpProbe(url=f"{server.url}/echo", expect_body=mismatch(path), **fields))
    assert not result.ok
    assert "***" in result.detail
    assert leaks(result.detail, secret) == [], result.detail
    assert leaks(result.body, secret) == [], result.body


async def test_a_secret_across_the_sample_body_cut_is_not_kept_in_part(
    server: LocalServer,
) -> None:
    # The sample keeps the start of the body. Redacting only a window of it
    # would leave the start of a secret that straddles the window's end, and
    # hiding an earlier secret pulls that start into what is kept.
    probe = HttpProbe(url=f"{server.url}/twice", headers={"X-Token": Secret(LONG)})
    for limit in (80, 100, 140, 300, 600):
        result = await sample(probe, body_limit=limit)
        assert result.ok
        assert result.body.startswith("***"), result.body
        assert leaks(result.body, LONG) == [], (limit, result.body)


async def test_a_prometheus_secret_echoed_in_an_error_is_redacted(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROM_PREFIX", quote(TOKEN))
    url = Secret(f"{server.url}/{quote(TOKEN)}", ("PROM_PREFIX",))
    headers = {"X-Scope": Secret(quote(BLANKS))}
    spec = PrometheusProbe(url=url, query="up", expect="> 0", headers=headers)
    async with PrometheusProbeAdapter(spec) as probe:
        result = await probe.check()
    assert not result.ok
    assert "bad query" in result.detail
    assert leaks(result.detail, TOKEN, BLANKS) == [], result.detail


async def test_a_prometheus_value_is_redacted_before_it_is_shortened(
    server: LocalServer,
) -> None:
    headers = {"X-Token": Secret(LONG)}
    spec = PrometheusProbe(url=f"{server.url}/pair", query="up", expect="> 0", headers=headers)
    async with PrometheusProbeAdapter(spec) as probe:
        result = await probe.check()
    assert "expected a [timestamp, value] pair" in result.detail
    assert leaks(result.detail, LONG) == [], result.detail


def printing(*lines: str, code: int = 1, pad: int = 0) -> list[str]:
    """argv of a command that prints ``pad`` bytes, then each of ``lines`` from its env."""
    script = (
        "import os, sys\n"
        f"sys.stdout.write('x' * {pad})\n"
        "for name in sys.argv[1:]:\n"
        "    sys.stdout.write(os.environ[name] + '\\n')\n"
        f"sys.exit({code})\n"
    )
    return [sys.executable, "-c", script, *lines]


@pytest.mark.parametrize("secret", [BLANKS, LONG, quote(BLANKS)], ids=["blanks", "long", "encoded"])
async def test_a_command_printing_its_secret_is_redacted_before_the_tail_is_cut(
    secret: str,
) -> None:
    spec = CommandProbe(command=printing("TOKEN"), env={"TOKEN": Secret(secret)})
    result = await CommandProbeAdapter(spec).check()
    assert result.status == 1
    assert "***" in result.detail
    assert leaks(result.detail, secret) == [], result.detail


async def test_a_command_printing_the_encoded_form_of_its_secret_is_redacted() -> None:
    env = {"TOKEN": Secret(BLANKS), "ENCODED": quote_plus(BLANKS)}
    spec = CommandProbe(command=printing("ENCODED"), env=env)
    result = await CommandProbeAdapter(spec).check()
    assert result.status == 1
    assert leaks(result.detail, BLANKS) == [], result.detail


async def test_a_secret_cut_by_the_output_limit_is_not_quoted_in_part() -> None:
    for before_limit in (50, 150, 250):
        pad = OUTPUT_LIMIT - before_limit
        spec = CommandProbe(command=printing("TOKEN", pad=pad), env={"TOKEN": Secret(LONG)})
        result = await CommandProbeAdapter(spec).check()
        assert result.status == 1
        assert leaks(result.detail, LONG) == [], (before_limit, result.detail)


async def test_a_stdout_mismatch_does_not_quote_the_secret() -> None:
    spec = CommandProbe(
        command=printing("TOKEN", code=0), env={"TOKEN": Secret(BLANKS)}, stdout="healthy"
    )
    result = await CommandProbeAdapter(spec).check()
    assert not result.ok
    assert "does not match" in result.detail
    assert leaks(result.detail, BLANKS) == [], result.detail
