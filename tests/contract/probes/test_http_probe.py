"""HttpProbeAdapter against real local HTTP servers, on both engines (httpx and fast)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from aftershock.model.probes import HttpProbe
from aftershock.model.secrets import Secret, reveal
from aftershock.ports import Probe
from aftershock.probes import HttpProbeAdapter
from aftershock.probes.fastpath import FastSession, supports
from tests.contract.probes.servers import (
    LocalServer,
    Request,
    Response,
    closed_port,
    hang,
    http_server,
)

pytestmark = pytest.mark.timeout(30)

MARGIN = 0.5  # scheduling slack on a busy CI machine

ENGINE = {"name": "httpx"}


@pytest.fixture(autouse=True, params=["httpx", "fast"])
def engine(request: pytest.FixtureRequest) -> str:
    """Every test runs on both engines; ``adapter`` builds the probe on the current one."""
    ENGINE["name"] = request.param
    return str(request.param)


def adapter(probe: HttpProbe, **kwargs: Any) -> HttpProbeAdapter:
    """The probe on the engine under test (as ``build_probe`` picks: fast for plain http)."""
    if ENGINE["name"] == "fast" and supports(reveal(probe.url)):
        return HttpProbeAdapter(probe, session=FastSession(), **kwargs)
    return HttpProbeAdapter(probe, **kwargs)


FIXED = {
    "/ok": Response(200, b"all good: healthy"),
    "/redirect": Response(302, b"", {"Location": "/elsewhere"}),
    "/json": Response.json(
        {"status": "ok", "items": [{"id": 1}, {"id": 2}], "a.b": True, "n": 2.5}
    ),
    "/notjson": Response(200, b"<html>not json</html>"),
    "/big": Response(200, b"x" * (2 * 1024 * 1024) + b"needle"),
}


async def routes(request: Request) -> Response:
    """The test server's behaviour, chosen by path."""
    path = request.path
    if path in FIXED:
        return FIXED[path]
    if path.startswith("/status/"):
        return Response(int(path.rsplit("/", 1)[1]), b"status")
    if path == "/echo":
        return Response.json({"headers": request.headers, "body": request.body.decode()})
    return Response(404, b"no such route")


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with http_server(routes) as srv:
        yield srv


async def check(spec: HttpProbe) -> Any:
    async with adapter(spec) as probe:
        return await probe.check()


def spec(url: str, **fields: Any) -> HttpProbe:
    return HttpProbe.model_validate({"url": url, **fields})


async def test_adapter_is_a_probe(server: LocalServer) -> None:
    async with adapter(spec(server.url + "/ok")) as probe:
        assert isinstance(probe, Probe)


async def test_ok_sample_records_status_and_latency(server: LocalServer) -> None:
    before = time.monotonic()
    result = await check(spec(server.url + "/ok"))
    assert result.ok
    assert result.status == 200
    assert result.detail == ""
    assert 0 < result.latency < 5
    assert before <= result.started <= time.monotonic()


@pytest.mark.parametrize(
    ("path", "status", "ok"),
    [
        ("/status/204", None, True),
        ("/redirect", None, True),  # 3xx is healthy by default, and not followed
        ("/status/399", None, True),
        ("/status/404", None, False),
        ("/status/503", None, False),
        ("/status/503", [503], True),
        ("/status/200", [204], False),
        ("/status/204", [200, 204], True),
    ],
)
async def test_status_sets(server: LocalServer, path: str, status: Any, ok: bool) -> None:
    fields = {} if status is None else {"status": status}
    result = await check(spec(server.url + path, **fields))
    assert result.ok is ok
    assert result.status == int(path.rsplit("/", 1)[1]) if "status" in path else 302


async def test_status_failure_detail(server: LocalServer) -> None:
    result = await check(spec(server.url + "/status/503"))
    assert result.detail == "HTTP 503, expected 2xx/3xx"
    result = await check(spec(server.url + "/status/404", status=[200, 204]))
    assert result.detail == "HTTP 404, expected one of 200, 204"


async def test_body_regex(server: LocalServer) -> None:
    assert (await check(spec(server.url + "/ok", expectBody={"regex": r"good.*healthy"}))).ok
    result = await check(spec(server.url + "/ok", expectBody={"regex": r"^degraded"}))
    assert not result.ok
    assert result.status == 200
    assert result.detail == "body (17 bytes) does not match /^degraded/"


async def test_body_regex_on_a_large_body_is_bounded(server: LocalServer) -> None:
    # The needle sits past the 1 MiB kept for matching.
    result = await check(spec(server.url + "/big", expectBody={"regex": "needle"}))
    assert not result.ok
    assert "1048576+ bytes" in result.detail


@pytest.mark.parametrize(
    ("path", "equals"),
    [
        ("$.status", "ok"),
        ("$.items[0].id", 1),
        ("$.items[1]['id']", 2.0),
        ("$['a.b']", True),
        ("$['a.b']", "true"),
        ("$.n", 2.5),
        ("$.items", None),  # presence only
    ],
)
async def test_jsonpath_match(server: LocalServer, path: str, equals: Any) -> None:
    body: dict[str, Any] = {"jsonPath": path}
    if equals is not None:
        body["equals"] = equals
    result = await check(spec(server.url + "/json", expectBody=body))
    assert result.ok, result.detail


@pytest.mark.parametrize(
    ("path", "equals", "detail"),
    [
        ("$.status", "degraded", 'jsonPath $.status is "ok", expected "degraded"'),
        ("$.items[0].id", True, "jsonPath $.items[0].id is 1, expected true"),
        ("$.items[5]", None, "jsonPath $.items[5]: $.items has 2 item(s), no index 5"),
        ("$.missing", None, "jsonPath $.missing: $ has no key 'missing'"),
        ("$.status.x", None, "jsonPath $.status.x: $.status is a string, not an object"),
    ],
)
async def test_jsonpath_mismatch(server: LocalServer, path: str, equals: Any, detail: str) -> None:
    body: dict[str, Any] = {"jsonPath": path}
    if equals is not None:
        body["equals"] = equals
    result = await check(spec(server.url + "/json", expectBody=body))
    assert not result.ok
    assert result.status == 200
    assert result.detail == detail


async def test_invalid_json_is_a_failed_sample(server: LocalServer) -> None:
    result = await check(spec(server.url + "/notjson", expectBody={"jsonPath": "$.status"}))
    assert not result.ok
    assert result.detail.startswith("body is not valid JSON")


async def test_method_headers_and_body_are_sent(server: LocalServer) -> None:
    probe = spec(
        server.url + "/echo",
        method="POST",
        headers={"X-Check": "1", "X-Token": Secret("tok-sent")},
        body=Secret('{"ping": true}'),
    )
    result = await check(probe)
    assert result.ok
    request = server.requests[-1]
    assert request.method == "POST"
    assert request.headers["x-check"] == "1"
    assert request.headers["x-token"] == "tok-sent"  # revealed on the wire
    assert request.body == b'{"ping": true}'


async def test_head_request(server: LocalServer) -> None:
    result = await check(spec(server.url + "/ok", method="HEAD"))
    assert result.ok
    assert server.requests[-1].method == "HEAD"


async def test_never_answering_server_times_out() -> None:
    async with LocalServer(hang) as silent:
        started = time.monotonic()
        result = await check(spec(silent.url + "/health", timeout="300ms"))
        elapsed = time.monotonic() - started
    assert not result.ok
    assert result.status is None
    assert result.detail == "timed out after 300ms"
    assert 0.25 <= elapsed < 0.3 + MARGIN
    assert 0.25 <= result.latency < 0.3 + MARGIN


async def test_trickling_body_is_cut_by_the_overall_timeout() -> None:
    # Each byte resets httpx's read timer; only the overall guard ends this.
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)

    async with LocalServer(trickle) as slow:
        started = time.monotonic()
        result = await check(spec(slow.url, timeout="400ms"))
        elapsed = time.monotonic() - started
    assert not result.ok
    assert result.detail == "timed out after 400ms"
    assert elapsed < 0.4 + MARGIN


async def test_connection_refused_is_a_failed_sample() -> None:
    result = await check(spec(f"http://127.0.0.1:{closed_port()}/health"))
    assert not result.ok
    assert result.status is None
    assert result.detail.startswith("ConnectError")


async def test_keep_alive_reuses_one_connection(server: LocalServer) -> None:
    async with adapter(spec(server.url + "/ok")) as probe:
        results = [await probe.check() for _ in range(5)]
    assert all(r.ok for r in results)
    assert len(server.requests) == 5
    assert server.connections == 1


async def test_injected_client_is_used_and_left_open(server: LocalServer) -> None:
    async with httpx.AsyncClient() as client:
        probe = HttpProbeAdapter(spec(server.url + "/ok"), client=client)
        assert (await probe.check()).ok
        await probe.aclose()
        assert not client.is_closed
        assert (await probe.check()).ok
    assert server.connections == 1


async def test_secrets_never_reach_the_detail(server: LocalServer) -> None:
    headers = {
        "Authorization": "Bearer plain-bearer-token",  # hidden even though not a Secret
        "X-Api-Secret": Secret("s3cr3t-header"),
    }
    body = Secret("secret-body-value")
    # The echo body holds every header and the request body; a failing regex
    # check and a failing JSONPath check must not quote any of them.
    for expect in (
        {"regex": "this will not match"},
        {"jsonPath": "$.headers.authorization", "equals": "something else"},
        {"jsonPath": "$.headers['x-api-secret']", "equals": "something else"},
        {"jsonPath": "$.body", "equals": "something else"},
    ):
        probe = spec(
            server.url + "/echo", method="POST", headers=headers, body=body, expectBody=expect
        )
        result = await check(probe)
        assert not result.ok
        for secret in ("plain-bearer-token", "s3cr3t-header", "secret-body-value"):
            assert secret not in result.detail, result.detail
    echoed = json.loads(json.dumps(server.requests[-1].headers))
    assert echoed["authorization"] == "Bearer plain-bearer-token"


async def test_secret_url_never_reaches_the_detail() -> None:
    url = Secret(f"http://127.0.0.1:{closed_port()}/health?token=url-secret-123")
    result = await check(HttpProbe(url=url))
    assert not result.ok
    assert "url-secret-123" not in result.detail
    result = await check(HttpProbe(url=Secret("http://[bad-url-secret-456/")))
    assert not result.ok
    assert "bad-url-secret-456" not in result.detail
    # URL errors quote parts of the URL: for a secret URL none of it is shown.
    bad = HttpProbe(url="http://127.0.0.1:1/").model_copy(
        update={"url": Secret("http://127.0.0.1:port-s3cr3t/x")}
    )
    result = await check(bad)
    assert not result.ok
    assert result.detail == "invalid URL (not shown: it is a secret)"


async def test_odd_errors_are_failed_samples_too() -> None:
    # anyio raises this one as an exception group around an OverflowError.
    result = await check(spec("http://127.0.0.1:99999/health"))
    assert not result.ok
    assert result.detail == "OverflowError: connect(): port must be 0-65535."


async def test_sample_carries_the_start_of_the_body(server: LocalServer) -> None:
    async with adapter(spec(server.url + "/ok")) as probe:
        first, second = await probe.check(), await probe.check()
    assert first.body == "all good: healthy"
    assert second.body is first.body  # repeated bodies share one string
    failed = await check(spec(server.url + "/status/503"))
    assert failed.body == "status"
    async with adapter(spec(server.url + "/big"), body_limit=10) as probe:
        assert (await probe.check()).body == "x" * 10
    async with adapter(spec(server.url + "/ok"), body_limit=0) as probe:
        assert (await probe.check()).body is None


async def test_secrets_echoed_in_the_body_are_redacted(server: LocalServer) -> None:
    headers = {"Authorization": "Bearer plain-bearer-token", "X-Key": Secret("s3cr3t-header")}
    result = await check(spec(server.url + "/echo", headers=headers))
    assert result.ok
    assert result.body is not None
    assert "x-key" in result.body
    assert "s3cr3t-header" not in result.body
    assert "plain-bearer-token" not in result.body
