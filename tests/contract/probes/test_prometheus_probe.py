"""PrometheusProbeAdapter against a fake Prometheus HTTP API speaking the real JSON shapes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aftershock.model.probes import PrometheusProbe
from aftershock.model.secrets import Secret
from aftershock.probes import PrometheusProbeAdapter
from tests.contract.probes.servers import (
    LocalServer,
    Request,
    Response,
    closed_port,
    hang,
    http_server,
)

pytestmark = pytest.mark.timeout(30)

TS = 1_735_689_600.781

# Bodies as Prometheus 2.x returns them from GET /api/v1/query.
ANSWERS: dict[str, tuple[int, Any]] = {
    "vector": (
        200,
        {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [
                    {"metric": {"job": "api", "instance": "a:9100"}, "value": [TS, "0.02"]},
                    {"metric": {"job": "api", "instance": "b:9100"}, "value": [TS, "0.5"]},
                ],
            },
        },
    ),
    "scalar": (200, {"status": "success", "data": {"resultType": "scalar", "result": [TS, "7"]}}),
    "empty": (200, {"status": "success", "data": {"resultType": "vector", "result": []}}),
    "nan": (
        200,
        {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [TS, "NaN"]}]},
        },
    ),
    "matrix": (
        200,
        {
            "status": "success",
            "data": {
                "resultType": "matrix",
                "result": [{"metric": {}, "values": [[TS, "1"], [TS + 15, "2"]]}],
            },
        },
    ),
    "bad": (
        400,
        {
            "status": "error",
            "errorType": "bad_data",
            "error": 'invalid parameter "query": 1:5: parse error: unexpected end of input',
        },
    ),
    "unavailable": (
        503,
        {"status": "error", "errorType": "unavailable", "error": "TSDB not ready"},
    ),
}


async def prometheus_api(request: Request) -> Response:
    if request.path != "/api/v1/query" or request.method != "GET":
        return Response(404, b"404 page not found\n")
    query = request.query.get("query", [""])[0]
    if query == "notjson":
        return Response(502, b"<html>Bad Gateway</html>")
    if query == "echo_auth":
        error = f"denied for {request.headers.get('authorization', '')}"
        return Response.json({"status": "error", "errorType": "auth", "error": error}, 401)
    status, body = ANSWERS.get(query.split("{")[0], ANSWERS["vector"])
    return Response.json(body, status)


@pytest.fixture
async def prom() -> AsyncIterator[LocalServer]:
    async with http_server(prometheus_api) as srv:
        yield srv


async def check(url: str, query: str, expect: str = "< 0.05", **fields: Any) -> Any:
    spec = PrometheusProbe.model_validate({"url": url, "query": query, "expect": expect, **fields})
    async with PrometheusProbeAdapter(spec) as probe:
        return await probe.check()


async def test_instant_vector_uses_the_first_sample(prom: LocalServer) -> None:
    query = 'vector{job="api"} > 0'
    result = await check(prom.url, query)
    assert result.ok
    assert result.value == 0.02
    assert result.status == 200
    request = prom.requests[-1]
    assert request.path == "/api/v1/query"
    assert request.query == {"query": [query]}  # sent URL-encoded, arrives intact


async def test_threshold_not_held(prom: LocalServer) -> None:
    result = await check(prom.url + "/", "scalar", expect="< 5")
    assert not result.ok
    assert result.value == 7.0
    assert result.detail == "value 7 does not satisfy < 5"
    assert (await check(prom.url, "scalar", expect=">= 7")).ok


async def test_nan_never_holds(prom: LocalServer) -> None:
    result = await check(prom.url, "nan", expect="!= 1")  # true in IEEE, still unhealthy
    assert not result.ok
    assert result.detail == "value NaN does not satisfy != 1"
    result = await check(prom.url, "nan", expect="< 1")
    assert not result.ok
    assert result.detail == "value NaN does not satisfy < 1"


@pytest.mark.parametrize(
    ("query", "status", "detail"),
    [
        ("empty", 200, "query returned no samples (empty vector)"),
        (
            "matrix",
            200,
            "query returned a range vector; use an instant query (no [range] selector)",
        ),
        (
            "bad",
            400,
            (
                'HTTP 400: query failed (bad_data): invalid parameter "query": 1:5: '
                "parse error: unexpected end of input"
            ),
        ),
        ("unavailable", 503, "HTTP 503: query failed (unavailable): TSDB not ready"),
        ("notjson", 502, "HTTP 502: response is not JSON"),
    ],
)
async def test_unusable_answers_are_failed_samples(
    prom: LocalServer, query: str, status: int, detail: str
) -> None:
    result = await check(prom.url, query)
    assert not result.ok
    assert result.value is None
    assert result.status == status
    assert result.detail == detail


async def test_wrong_base_url_is_a_failed_sample(prom: LocalServer) -> None:
    result = await check(prom.url + "/not-prometheus", "vector")
    assert not result.ok
    assert result.detail == "HTTP 404: response is not JSON"


async def test_unreachable_and_silent_servers() -> None:
    result = await check(f"http://127.0.0.1:{closed_port()}", "up")
    assert not result.ok
    assert result.detail.startswith("ConnectError")
    async with LocalServer(hang) as silent:
        started = time.monotonic()
        result = await check(silent.url, "up", timeout="300ms")
        assert time.monotonic() - started < 0.8
    assert result.detail == "timed out after 300ms"


async def test_headers_sent_and_secrets_redacted(prom: LocalServer) -> None:
    headers = {"Authorization": Secret("Bearer prom-s3cr3t")}
    result = await check(prom.url, "echo_auth", headers=headers)
    assert prom.requests[-1].headers["authorization"] == "Bearer prom-s3cr3t"
    assert not result.ok
    assert result.detail == "HTTP 401: query failed (auth): denied for ***"


async def test_keep_alive(prom: LocalServer) -> None:
    spec = PrometheusProbe.model_validate({"url": prom.url, "query": "up", "expect": "> 0"})
    async with PrometheusProbeAdapter(spec) as probe:
        for _ in range(4):
            assert (await probe.check()).ok
    assert prom.connections == 1
