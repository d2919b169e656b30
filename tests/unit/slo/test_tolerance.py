"""Tolerances over a window of samples, and the per-sample view used for recovery."""

from __future__ import annotations

from typing import Any

import pytest

from aftershock.model.probes import Tolerance
from aftershock.ports import ProbeResult
from aftershock.slo import evaluate, sample_is_good


def tol(**fields: Any) -> Tolerance:
    return Tolerance.model_validate(fields)


def sample(
    latency: float = 0.05,
    *,
    ok: bool = True,
    status: int | None = 200,
    body: str | None = None,
) -> ProbeResult:
    return ProbeResult(ok=ok, latency=latency, started=0.0, status=status, body=body)


def test_all_good_samples_pass_with_figures() -> None:
    result = evaluate(
        tol(successRatio=">= 0.99", p95="< 200ms", status=[200]),
        [sample(0.01 * i) for i in range(1, 11)],
        phase="steady-state-before",
        probe="checkout",
    )
    assert result.ok
    assert result.failures == []
    assert (result.phase, result.probe, result.samples) == ("steady-state-before", "checkout", 10)
    assert result.success_ratio == 1.0
    assert result.p50 == pytest.approx(0.055)
    assert result.p95 == pytest.approx(0.0955)
    assert result.p99 is not None


def test_slow_p95_is_reported_in_seconds() -> None:
    samples = [sample(0.05)] * 18 + [sample(0.412)] * 2
    result = evaluate(tol(p95="< 200ms"), samples, phase="during", probe="api")
    assert not result.ok
    assert result.failures == ["p95 0.412s is not < 0.2s"]


def test_low_success_ratio_fails() -> None:
    samples = [sample()] * 17 + [sample(ok=False, status=None)] * 3
    result = evaluate(tol(successRatio=">= 99%"), samples, phase="after", probe="api")
    assert not result.ok
    assert result.success_ratio == pytest.approx(0.85)
    assert result.failures == ["success ratio 0.85 is not >= 99%"]


def test_each_failure_is_listed() -> None:
    samples = [sample(0.5, ok=False, status=503)] * 4
    result = evaluate(
        tol(successRatio=">= 0.9", p50="< 100ms", p99="<= 300ms", status=[200, 204]),
        samples,
        phase="after",
        probe="api",
    )
    assert len(result.failures) == 4
    assert "p50 0.5s is not < 0.1s" in result.failures
    assert "p99 0.5s is not <= 0.3s" in result.failures
    assert "status: 4 of 4 samples not in {200, 204} (saw 503)" in result.failures


def test_status_set_applies_to_every_sample_including_those_without_one() -> None:
    samples = [sample(status=200), sample(status=None, ok=False), sample(status=500)]
    result = evaluate(tol(status=[200]), samples, phase="after", probe="api")
    assert result.failures == ["status: 2 of 3 samples not in {200} (saw none, 500)"]


def test_no_samples_is_not_ok() -> None:
    result = evaluate(tol(successRatio=">= 0.5"), [], phase="before", probe="api")
    assert not result.ok
    assert result.failures == ["no samples"]
    assert result.samples == 0
    assert result.success_ratio is None


def test_body_regex() -> None:
    check = tol(body={"regex": r"^ok\b"})
    good = evaluate(check, [sample(body="ok fine")] * 3, phase="p", probe="api")
    assert good.ok
    bad = evaluate(
        check, [sample(body="ok"), sample(body="degraded"), sample()], phase="p", probe="api"
    )
    # A sample without a body (e.g. a timeout) fails the body check.
    assert bad.failures == ["body: 2 of 3 samples do not match regex '^ok\\b'"]


@pytest.mark.parametrize(
    ("match", "body", "expected"),
    [
        ({"jsonPath": "$.status", "equals": "up"}, '{"status": "up"}', True),
        ({"jsonPath": "$.status", "equals": "up"}, '{"status": "down"}', False),
        ({"jsonPath": "$.status"}, '{"status": null}', True),
        ({"jsonPath": "$.status"}, '{"other": 1}', False),
        ({"jsonPath": "$.checks[1].ok", "equals": True}, '{"checks": [{}, {"ok": true}]}', True),
        ({"jsonPath": "$.checks[2].ok", "equals": True}, '{"checks": [{}, {"ok": true}]}', False),
        ({"jsonPath": "$.ok", "equals": 1}, '{"ok": true}', False),
        ({"jsonPath": "$.n", "equals": 3}, '{"n": 3.0}', True),
        ({"jsonPath": "$.n", "equals": "3"}, '{"n": 3}', True),
        ({"jsonPath": "$['a b']", "equals": "x"}, '{"a b": "x"}', True),
        ({"jsonPath": "$.a.b", "equals": "x"}, '{"a": "not an object"}', False),
        ({"jsonPath": "$.status", "equals": "up"}, "not json", False),
        ({"jsonPath": "$.status", "equals": "up"}, None, False),
    ],
)
def test_body_jsonpath(match: dict[str, Any], body: str | None, expected: bool) -> None:
    check = tol(body=match)
    result = evaluate(check, [sample(body=body)], phase="p", probe="api")
    assert result.ok is expected
    assert sample_is_good(check, sample(body=body)) is expected


def test_jsonpath_failure_names_the_path_and_value() -> None:
    check = tol(body={"jsonPath": "$.status", "equals": "up"})
    result = evaluate(check, [sample(body="{}")], phase="p", probe="api")
    assert result.failures == ['body: 1 of 1 samples do not match $.status == "up"']


def test_sample_is_good_uses_the_strictest_latency_bound() -> None:
    check = tol(p50="< 100ms", p99="< 300ms")
    assert sample_is_good(check, sample(0.09))
    assert not sample_is_good(check, sample(0.2))
    assert not sample_is_good(check, sample(0.01, ok=False))


def test_sample_is_good_ignores_lower_latency_bounds() -> None:
    assert sample_is_good(tol(p50="> 1s"), sample(0.01))


def test_sample_is_good_checks_status_and_body() -> None:
    check = tol(status=[200], body={"regex": "ok"})
    assert sample_is_good(check, sample(status=200, body="ok"))
    assert not sample_is_good(check, sample(status=500, body="ok"))
    assert not sample_is_good(check, sample(status=200, body=None))
    # successRatio alone: any passing sample is good.
    assert sample_is_good(tol(successRatio=">= 0.99"), sample(5.0))
