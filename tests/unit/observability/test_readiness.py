"""/readyz with a reason, and the probe lag metric."""

from __future__ import annotations

import httpx

from aftershock.observability.health import HealthServer, Readiness
from aftershock.observability.metrics import HealerMetrics
from aftershock.sampling import SampleGate
from aftershock.testing import ManualClock


async def test_readyz_reports_overload_with_its_reason() -> None:
    clock = ManualClock()
    metrics = HealerMetrics()
    gate = SampleGate(clock=clock, on_lag=metrics.observe_lag)

    def ready() -> Readiness:
        reason = gate.overload()
        return Readiness(ready=reason is None, reason=reason or "")

    server = HealthServer(status=dict, ready=ready, metrics=metrics.render)
    host, port = await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", trust_env=False) as client:
            for _ in range(10):
                gate.observe(0.0, 1.0)
            answer = await client.get("/readyz")
            assert (answer.status_code, answer.json()) == (200, {"ready": True})
            for _ in range(100):
                gate.observe(2.5, 1.0)  # samples start 2.5 periods late
            answer = await client.get("/readyz")
            assert answer.status_code == 503
            body = answer.json()
            assert body["ready"] is False
            assert body["reason"].startswith("overloaded: p95 probe lag 2.500s (2.5 periods)")
            assert (await client.get("/healthz")).status_code == 200  # alive all the same
            exposition = (await client.get("/metrics")).text
    finally:
        await server.close()
    assert "aftershock_probe_lag_seconds_count 110.0" in exposition
    assert 'aftershock_probe_lag_seconds_bucket{le="2.5"} 110.0' in exposition


async def test_a_plain_bool_still_answers_without_a_reason() -> None:
    server = HealthServer(status=dict, ready=lambda: False, metrics=lambda: b"")
    host, port = await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            answer = await client.get(f"http://{host}:{port}/readyz")
    finally:
        await server.close()
    assert (answer.status_code, answer.json()) == (503, {"ready": False})


def test_readiness_is_truthy_like_a_bool() -> None:
    assert Readiness(ready=True)
    assert not Readiness(ready=False, reason="why")
