"""Prometheus probe: an instant query whose value is compared with a threshold.

Speaks the HTTP API (``GET /api/v1/query``) through ``HttpSession`` so httpx stays
in ``probes/http.py``. The value is the first sample of an instant vector, or a
scalar; an empty vector, a range vector, an error status or a body that is not
the API's JSON are failed samples whose detail says which.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, Final, Self

from aftershock.model.probes import PrometheusProbe
from aftershock.model.secrets import Secret, reveal
from aftershock.ports import Clock, ProbeResult
from aftershock.probes.http import Fetched, FetchError, HttpClient, HttpSession
from aftershock.probes.redact import redactor_for
from aftershock.probes.stopwatch import Stopwatch

__all__ = ["PrometheusProbeAdapter", "QueryFailed", "parse_query_response"]


_SHOWN: Final = 80  # characters of an unexpected JSON value quoted in a detail


class QueryFailed(ValueError):
    """The API answered, but not with a usable value; the text is the detail."""


def _number(raw: Any) -> float:
    # Prometheus encodes sample values as strings ("1", "NaN", "+Inf").
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        msg = f"sample value {raw!r} is not a number"
        raise QueryFailed(msg)
    try:
        return float(raw)
    except ValueError:
        msg = f"sample value {raw!r} is not a number"
        raise QueryFailed(msg) from None


def _pair_value(pair: Any, redact: Callable[[str], str]) -> float:
    if not isinstance(pair, list) or len(pair) != 2:
        # Redacted before it is shortened: a cut secret is no longer recognised.
        shown = redact(json.dumps(pair))[:_SHOWN]
        msg = f"expected a [timestamp, value] pair, got {shown}"
        raise QueryFailed(msg)
    return _number(pair[1])


def _unchanged(text: str) -> str:
    return text


def parse_query_response(fetched: Fetched, redact: Callable[[str], str] = _unchanged) -> float:
    """The value of an instant query response; ``QueryFailed`` says why there is none.

    ``redact`` is applied to response text quoted in a shortened form; the
    caller redacts the whole message as well.
    """
    try:
        payload = json.loads(fetched.body)
    except ValueError:
        msg = f"HTTP {fetched.status}: response is not JSON"
        raise QueryFailed(msg) from None
    if not isinstance(payload, dict):
        msg = f"HTTP {fetched.status}: response is not a Prometheus API object"
        raise QueryFailed(msg)
    if payload.get("status") != "success":
        kind = payload.get("errorType") or "unknown"
        error = payload.get("error") or "no error message"
        msg = f"HTTP {fetched.status}: query failed ({kind}): {error}"
        raise QueryFailed(msg)
    if not 200 <= fetched.status <= 299:
        msg = f"HTTP {fetched.status} with a success body"
        raise QueryFailed(msg)
    data = payload.get("data")
    if not isinstance(data, dict):
        msg = "response has no data"
        raise QueryFailed(msg)
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector" and isinstance(result, list):
        if not result:
            msg = "query returned no samples (empty vector)"
            raise QueryFailed(msg)
        first = result[0]
        return _pair_value(first.get("value") if isinstance(first, dict) else None, redact)
    if kind in {"scalar", "string"}:
        return _pair_value(result, redact)
    if kind == "matrix":
        msg = "query returned a range vector; use an instant query (no [range] selector)"
        raise QueryFailed(msg)
    msg = f"unexpected resultType {kind!r}"
    raise QueryFailed(msg)


def _render(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return f"{value:g}"


class PrometheusProbeAdapter:
    """``Probe`` for ``PrometheusProbe``: ``value`` is the query's value; ok when it holds."""

    def __init__(
        self,
        spec: PrometheusProbe,
        *,
        client: HttpClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.spec = spec
        self._clock = clock
        self._session = HttpSession(client)
        self._timeout = spec.timeout.total_seconds()
        self._redact = redactor_for(spec.url, headers=spec.headers)

    async def check(self) -> ProbeResult:
        """Run the query once; any failure is a failed sample with a redacted detail."""
        watch = Stopwatch(self._clock)
        spec = self.spec
        url = reveal(spec.url).rstrip("/") + "/api/v1/query"
        try:
            fetched = await self._session.fetch(
                "GET",
                url,
                within=self._timeout,
                headers={name: reveal(value) for name, value in spec.headers.items()},
                params={"query": spec.query},
            )
        except FetchError as exc:
            hidden = exc.bad_url and isinstance(spec.url, Secret)
            detail = "invalid URL (not shown: it is a secret)" if hidden else str(exc)
            return watch.result(ok=False, detail=self._redact(detail))
        latency = watch.elapsed()
        try:
            value = parse_query_response(fetched, self._redact)
        except QueryFailed as exc:
            detail = self._redact(str(exc))
            return watch.result(ok=False, status=fetched.status, detail=detail, latency=latency)
        # NaN (0/0, no data in a ratio) compares as != anything; it is never healthy.
        ok = not math.isnan(value) and spec.expect.holds(value)
        detail = "" if ok else f"value {_render(value)} does not satisfy {spec.expect}"
        return watch.result(
            ok=ok, status=fetched.status, detail=detail, value=value, latency=latency
        )

    async def aclose(self) -> None:
        """Close the adapter's own client (an injected client stays open)."""
        await self._session.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
