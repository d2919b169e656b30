"""HTTP probe, and the one place in ``probes/`` that speaks httpx.

``HttpSession`` wraps a keep-alive ``httpx.AsyncClient`` (one per adapter, or an
injected one) and turns every transport problem into ``FetchError``; the
Prometheus probe reuses it. Each request is bounded twice: httpx's own timeouts
cover every network phase, and an ``asyncio.timeout`` around the whole exchange
(connect, headers, body) guarantees the sample ends on time even when a server
trickles bytes slowly enough to keep resetting httpx's per-read timer.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol, Self

import httpx

from aftershock.model.jsonpath import PathNotFound, describe, find, json_equals, parse
from aftershock.model.probes import BodyMatch, HttpProbe
from aftershock.model.secrets import Secret, reveal
from aftershock.ports import Clock, ProbeResult
from aftershock.probes.redact import Redactor, redactor_for
from aftershock.probes.stopwatch import Stopwatch, format_seconds
from aftershock.tls import client_context

__all__ = [
    "BODY_LIMIT",
    "SAMPLE_BODY_LIMIT",
    "FetchError",
    "Fetched",
    "HttpClient",
    "HttpProbeAdapter",
    "HttpSession",
    "Session",
    "shared_client",
]

HttpClient = httpx.AsyncClient
"""The client type adapters accept, so other modules need not import httpx."""

BODY_LIMIT: Final = 1024 * 1024
"""Bytes of a response body kept for matching; a health body is far smaller."""

SAMPLE_BODY_LIMIT: Final = 4096
"""Default characters of the body kept on each sample (``ProbeResult.body``)."""

_KEEPALIVE: Final = httpx.Limits(
    max_connections=8, max_keepalive_connections=4, keepalive_expiry=30
)


class FetchError(Exception):
    """The exchange failed before a complete response arrived; the text is the detail.

    ``bad_url`` marks errors about the URL itself, whose text may quote parts of it.
    """

    def __init__(self, message: str, *, bad_url: bool = False) -> None:
        super().__init__(message)
        self.bad_url = bad_url


@dataclass(frozen=True, slots=True)
class Fetched:
    """A response: status, reason, and the body up to the limit."""

    status: int
    reason: str
    body: bytes
    truncated: bool


class Session(Protocol):
    """What ``HttpProbeAdapter`` sends through: ``HttpSession`` (httpx) or the fast engine."""

    async def fetch(
        self,
        method: str,
        url: str,
        *,
        within: float,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        limit: int = BODY_LIMIT,
    ) -> Fetched:
        """One exchange, bounded by ``within``; every failure is a ``FetchError``."""
        ...

    async def aclose(self) -> None:
        """Release the connections the session owns."""
        ...


def _explain(exc: BaseException) -> str:
    # anyio wraps a single connect failure in a group; the inner error is the news.
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def shared_client(probes: int) -> HttpClient:
    """One keep-alive client for many HTTP probes (its owner closes it).

    A client per probe costs a connection pool and start-up work each; a healer
    watching hundreds of endpoints shares one, sized so every probe can have a
    connection of its own.
    """
    size = max(100, 2 * probes)
    return _new_client(httpx.Limits(max_connections=size, max_keepalive_connections=size))


def _new_client(limits: httpx.Limits) -> HttpClient:
    # Probes go direct: no proxy variables or .netrc credentials from the
    # environment, so what is checked is exactly what was configured.
    return httpx.AsyncClient(
        limits=limits, follow_redirects=False, trust_env=False, verify=client_context()
    )


class HttpSession:
    """One keep-alive client (owned or borrowed) and a bounded ``fetch``."""

    def __init__(self, client: HttpClient | None = None) -> None:
        self._client = client
        self._owned = client is None

    def _get_client(self) -> HttpClient:
        if self._client is None:
            self._client = _new_client(_KEEPALIVE)
        return self._client

    async def fetch(
        self,
        method: str,
        url: str,
        *,
        within: float,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        limit: int = BODY_LIMIT,
    ) -> Fetched:
        """Send one request and read at most ``limit`` body bytes, all ``within`` seconds."""
        client = self._get_client()
        try:
            async with asyncio.timeout(within):
                request = client.build_request(
                    method,
                    url,
                    headers=dict(headers or {}),
                    content=content,
                    params=dict(params) if params else None,
                    timeout=httpx.Timeout(within),
                )
                response = await client.send(request, stream=True)
                try:
                    body, truncated = await _read_bounded(response, limit)
                finally:
                    await response.aclose()
                return Fetched(response.status_code, response.reason_phrase, body, truncated)
        except (TimeoutError, httpx.TimeoutException):
            msg = f"timed out after {format_seconds(within)}"
            raise FetchError(msg) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise FetchError(_explain(exc), bad_url=True) from None
        except (httpx.HTTPError, OSError, ValueError) as exc:
            raise FetchError(_explain(exc)) from None
        except Exception as exc:  # noqa: BLE001 - a probe never raises (ports.Probe)
            # e.g. an out-of-range port surfaces from anyio as an OverflowError group.
            raise FetchError(_explain(exc)) from None

    async def aclose(self) -> None:
        """Close the client if this session created it."""
        if self._owned and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


async def _read_bounded(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    buf = bytearray()
    async for chunk in response.aiter_bytes():
        buf += chunk
        if len(buf) > limit:
            # Stop reading: the connection is dropped instead of reused, which
            # is cheaper than draining an unbounded body.
            return bytes(buf[:limit]), True
    return bytes(buf), False


_SHOWN: Final = 80  # characters of a JSON value quoted in a failure detail


class _BodyCheck:
    """A compiled ``BodyMatch``: returns ``None`` when the body passes, else why not.

    The reason is already redacted: a value is redacted whole before it is
    shortened, so no part of a long secret survives the cut.
    """

    def __init__(self, spec: BodyMatch, redact: Redactor) -> None:
        self._redact = redact
        self._regex = re.compile(spec.regex) if spec.regex is not None else None
        self._path = spec.json_path
        self._steps = parse(spec.json_path) if spec.json_path is not None else ()
        self._equals = spec.equals

    def problem(self, body: bytes, *, truncated: bool) -> str | None:
        if self._regex is None:
            problem = self._json_problem(body, truncated=truncated)
            return None if problem is None else self._redact(problem)
        if self._regex.search(body.decode("utf-8", errors="replace")) is None:
            more = "+" if truncated else ""
            return f"body ({len(body)}{more} bytes) does not match /{self._regex.pattern}/"
        return None

    def _json_problem(self, body: bytes, *, truncated: bool) -> str | None:
        if truncated:
            return f"body is larger than {len(body)} bytes; not decoded as JSON"
        try:
            document = json.loads(body)
        except ValueError as exc:
            return f"body is not valid JSON ({exc})"
        try:
            found = find(document, self._steps)
        except PathNotFound as exc:
            return f"jsonPath {self._path}: {exc}"
        if self._equals is not None and not json_equals(found, self._equals):
            expected = describe(self._equals)
            shown = self._redact(json.dumps(found, ensure_ascii=False, default=str))
            if len(shown) > _SHOWN:
                shown = shown[: _SHOWN - 3] + "..."
            return f"jsonPath {self._path} is {shown}, expected {expected}"
        return None


class HttpProbeAdapter:
    """``Probe`` for ``HttpProbe``: success = accepted status and body match, in time.

    Each sample with a response carries the start of its body (``body_limit``
    characters, secrets redacted) for steady-state body checks; pass
    ``body_limit=0`` when nothing reads it, since a sampler keeps many samples.
    ``session`` sends the requests (the fast engine for plain http, chosen by
    ``probes.factory``); without it an ``HttpSession`` over ``client`` does.
    The adapter closes the session it is given.
    """

    def __init__(
        self,
        spec: HttpProbe,
        *,
        client: HttpClient | None = None,
        clock: Clock | None = None,
        body_limit: int = SAMPLE_BODY_LIMIT,
        session: Session | None = None,
    ) -> None:
        self.spec = spec
        self._body_limit = body_limit
        self._last_body: str | None = None
        self._clock = clock
        self._session: Session = session if session is not None else HttpSession(client)
        self._timeout = spec.timeout.total_seconds()
        self._accepted = frozenset(spec.status) if spec.status is not None else None
        self._expected = (
            "one of " + ", ".join(map(str, sorted(self._accepted)))
            if self._accepted is not None
            else "2xx/3xx"
        )
        self._redact = redactor_for(spec.url, spec.body, headers=spec.headers)
        self._body = (
            _BodyCheck(spec.expect_body, self._redact) if spec.expect_body is not None else None
        )

    def _status_ok(self, status: int) -> bool:
        if self._accepted is None:
            return 200 <= status <= 399
        return status in self._accepted

    async def check(self) -> ProbeResult:
        """Send the request once; any failure is a failed sample with a redacted detail."""
        watch = Stopwatch(self._clock)
        spec = self.spec
        try:
            # Secrets are revealed here, at the moment of sending, and nowhere else.
            fetched = await self._session.fetch(
                spec.method,
                reveal(spec.url),
                within=self._timeout,
                headers={name: reveal(value) for name, value in spec.headers.items()},
                content=reveal(spec.body).encode() if spec.body is not None else None,
            )
        except FetchError as exc:
            # A malformed secret URL is not quoted even in part.
            hidden = exc.bad_url and isinstance(spec.url, Secret)
            detail = "invalid URL (not shown: it is a secret)" if hidden else str(exc)
            return watch.result(ok=False, detail=self._redact(detail))
        latency = watch.elapsed()
        detail = ""
        if not self._status_ok(fetched.status):
            detail = f"HTTP {fetched.status}, expected {self._expected}"
        elif self._body is not None:
            detail = self._body.problem(fetched.body, truncated=fetched.truncated) or ""
        return ProbeResult(
            ok=not detail,
            latency=latency,
            started=watch.started,
            status=fetched.status,
            detail=detail,
            body=self._sample_body(fetched.body, truncated=fetched.truncated),
        )

    def _sample_body(self, body: bytes, *, truncated: bool) -> str | None:
        if self._body_limit <= 0:
            return None
        # Redact more than is kept, by as much as a secret can span, so that a
        # secret across the cut is hidden whole before the text is cut.
        window = (self._body_limit + self._redact.margin) * 4
        text = body[:window].decode("utf-8", errors="replace")
        text = self._redact.clipped(text, end=truncated or len(body) > window)
        text = text[: self._body_limit]
        # A health endpoint answers the same body over and over: share one string
        # between consecutive samples instead of keeping thousands of copies.
        if text == self._last_body:
            return self._last_body
        self._last_body = text
        return text

    async def aclose(self) -> None:
        """Close the adapter's own client (an injected client stays open)."""
        await self._session.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
