"""An async, typed client for the whole Toxiproxy 2.x HTTP API, over httpx.

One ``ToxiproxyClient`` talks to one server. It answers with the records of
``resources`` (``Proxy``, ``Toxic``) and raises the error an error status calls
for from the tree in ``errors`` (``ToxiproxyNotFound``, ``ToxiproxyConflict``, ...).

A server that cannot be reached at all (refused, timed out, broken connection)
raises ``aftershock.errors.DriverUnavailable`` naming the URL, because that is
the one failure every caller treats the same way: retry later. A server that
answers a success status with something that is not the API's answer (not
JSON, JSON of the wrong shape, an object missing fields, a redirect, a body
longer than ``max_body``) raises ``aftershock.errors.UnexpectedAnswer`` with the
status, content type and an escaped excerpt of what it sent. Every success
body is parsed strictly (NaN and Infinity are not JSON), and no more than
``max_body`` bytes are ever read. The driver translates the rest into the
project tree.

Proxy updates use ``POST`` like the official Go client (``client/proxy.go``):
every 2.x server accepts it, whereas ``PATCH`` on proxies only exists in newer
ones. Toxic updates use ``PATCH``, as the Go client does.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx

from aftershock import __version__
from aftershock.drivers.toxiproxy.errors import ToxiproxyError, error_for, excerpt
from aftershock.drivers.toxiproxy.resources import (
    Malformed,
    Proxy,
    Toxic,
    json_field,
    json_list,
    json_object,
)
from aftershock.errors import DriverUnavailable, UnexpectedAnswer
from aftershock.tls import context_for

__all__ = ["MAX_BODY", "USER_AGENT", "ToxiproxyClient"]

T = TypeVar("T")
USER_AGENT = f"aftershock/{__version__}"
"""Sent on every request: Toxiproxy answers 403 to any ``Mozilla/...`` agent."""
MAX_BODY = 4 * 1024 * 1024
"""Bytes read of one answer at most; a Toxiproxy listing thousands of proxies stays far below."""
_VERSION = re.compile(r"^v?\d+(\.\d+)*([-+][0-9A-Za-z.+-]+)?$")


def _no_constant(name: str) -> Any:
    raise Malformed(f"{name} is not JSON")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Answer:
    """One answer, read in full or cut at ``MAX_BODY`` (``truncated``)."""

    method: str
    path: str
    url: str
    status: int
    content_type: str
    content: bytes
    truncated: bool

    def json(self) -> Any:
        """The body as strict JSON (``Malformed`` if it is not)."""
        if self.truncated:
            raise Malformed(f"the body is longer than {len(self.content)} bytes")
        try:
            return json.loads(self.content.decode("utf-8"), parse_constant=_no_constant)
        except UnicodeDecodeError as exc:
            raise Malformed(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
        except RecursionError as exc:
            raise Malformed("the JSON is nested too deep") from exc
        except json.JSONDecodeError as exc:
            raise Malformed(f"the body is not JSON ({exc.msg} at line {exc.lineno})") from exc

    def error(self) -> ToxiproxyError:
        """The error this answer's error status calls for."""
        try:
            body: Any = self.json()
        except Malformed:
            body = self.content.decode("utf-8", errors="replace")
        return error_for(self.status, self.url, body)

    def described(self) -> str:
        """Status, content type and an excerpt of the body."""
        size = f"{len(self.content)}{'+' if self.truncated else ''} bytes"
        body = f"body {excerpt(self.content)} ({size})" if self.content else "an empty body"
        return f"{self.status} ({self.content_type or 'no content type'}) and {body}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class ToxiproxyClient:
    """Async client for one Toxiproxy server (``base_url`` like ``http://127.0.0.1:8474``).

    ``timeout`` bounds each network operation, ``deadline`` a whole request
    (a server trickling its answer a byte at a time is as good as gone), and
    ``max_body`` the bytes read of one answer. ``transport`` replaces the
    network (``httpx.MockTransport`` in tests). Use as an async context manager
    or call ``aclose()``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        deadline: float = 30.0,
        max_body: int = MAX_BODY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._deadline = deadline
        self._max_body = max_body
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "Accept-Encoding": "identity",  # nothing to inflate past the body cap
            },
            # Traffic stays where the URL says; a proxy from the environment
            # would route chaos API calls through some other host.
            trust_env=False,
            follow_redirects=False,
            verify=context_for(self.base_url),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _request(self, method: str, path: str, body: Any = None) -> _Answer:
        """Send one request; error statuses raise, anything else comes back read (bounded)."""
        content = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if content is not None else None
        where = f"Toxiproxy API {self.base_url}"
        try:
            async with (
                asyncio.timeout(self._deadline),
                self._http.stream(method, path, content=content, headers=headers) as response,
            ):
                data, truncated = bytearray(), False
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > self._max_body:
                        del data[self._max_body :]
                        truncated = True
                        break  # leaving the block closes the connection mid-body
        except httpx.TransportError as exc:
            raise DriverUnavailable(f"{where} unreachable: {_one_line(exc)}") from exc
        except TimeoutError as exc:
            msg = f"{where} unreachable: no full answer to {method} {path} in {self._deadline:g}s"
            raise DriverUnavailable(msg) from exc
        answer = _Answer(
            method=method,
            path=path,
            url=str(response.request.url),
            status=response.status_code,
            content_type=response.headers.get("Content-Type", ""),
            content=bytes(data),
            truncated=truncated,
        )
        if answer.status >= 400:
            raise answer.error()
        if not 200 <= answer.status < 300:
            raise self._unexpected(answer, "a success status")
        return answer

    def _unexpected(self, answer: _Answer, expected: str, problem: str = "") -> UnexpectedAnswer:
        return UnexpectedAnswer(
            f"Toxiproxy API {self.base_url} answered {answer.method} {answer.path} with "
            f"{answer.described()}, not {expected}" + (f": {problem}" if problem else "")
        )

    async def _parsed(
        self, method: str, path: str, parse: Callable[[Any], T], expected: str, body: Any = None
    ) -> T:
        answer = await self._request(method, path, body)
        try:
            return parse(answer.json())
        except ValueError as exc:  # Malformed, and the checks of from_json
            raise self._unexpected(answer, expected, str(exc)) from exc

    async def _empty(self, method: str, path: str) -> None:
        answer = await self._request(method, path)
        if answer.content.strip():
            raise self._unexpected(answer, "an empty answer (204)")

    # ------------------------------------------------------------ server

    async def version(self) -> str:
        """The server version (``GET /version``); old servers answer plain text."""
        answer = await self._request("GET", "/version")
        text = answer.content.decode("utf-8", errors="replace").strip()
        if not answer.truncated and _VERSION.match(text):
            return text
        try:
            return json_field(
                json_object(answer.json(), "the answer"), "version", str, "it", "a string"
            )
        except ValueError as exc:
            raise self._unexpected(answer, 'a version ({"version": ...})', str(exc)) from exc

    async def reset(self) -> None:
        """Remove every toxic and enable every proxy (``POST /reset`` → 204)."""
        await self._empty("POST", "/reset")

    async def populate(self, proxies: Iterable[Mapping[str, Any]]) -> list[Proxy]:
        """Create or replace proxies in bulk (``POST /populate`` → 201).

        On failure the raised ``ToxiproxyError.proxies`` holds those created
        before it; identical existing proxies are left untouched.
        """

        def parse(body: Any) -> list[Proxy]:
            # 2.x answers {"proxies": [...]}; the oldest servers answered the bare list.
            if not isinstance(body, list):
                body = json_object(body, "the answer").get("proxies")
            items = json_list(body, "proxies")
            return [Proxy.from_json(p, f"proxy {i}") for i, p in enumerate(items)]

        entries = [dict(p) for p in proxies]
        return await self._parsed("POST", "/populate", parse, "a list of proxies", entries)

    # ------------------------------------------------------------ proxies

    async def proxies(self) -> dict[str, Proxy]:
        """Every proxy, keyed by name (the API answers an object, not a list)."""

        def parse(body: Any) -> dict[str, Proxy]:
            return {
                name: Proxy.from_json(p, f"proxy {name!r}")
                for name, p in json_object(body, "the answer").items()
            }

        return await self._parsed("GET", "/proxies", parse, "an object of proxies by name")

    async def create_proxy(
        self, name: str, upstream: str, listen: str = "127.0.0.1:0", *, enabled: bool = True
    ) -> Proxy:
        """Create a proxy (201); port 0 in ``listen`` picks a free port."""
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        return await self._parsed("POST", "/proxies", Proxy.from_json, "a proxy", body)

    async def get_proxy(self, name: str) -> Proxy:
        """One proxy with its toxics."""
        return await self._parsed("GET", f"/proxies/{_seg(name)}", Proxy.from_json, "a proxy")

    async def update_proxy(
        self,
        name: str,
        *,
        listen: str | None = None,
        upstream: str | None = None,
        enabled: bool | None = None,
    ) -> Proxy:
        """Change only the given fields (POST, as the Go client does; see module doc)."""
        body: dict[str, Any] = {}
        if listen is not None:
            body["listen"] = listen
        if upstream is not None:
            body["upstream"] = upstream
        if enabled is not None:
            body["enabled"] = enabled
        path = f"/proxies/{_seg(name)}"
        return await self._parsed("POST", path, Proxy.from_json, "a proxy", body)

    async def delete_proxy(self, name: str) -> None:
        """Stop and delete a proxy (204)."""
        await self._empty("DELETE", f"/proxies/{_seg(name)}")

    # ------------------------------------------------------------ toxics

    async def toxics(self, proxy: str) -> list[Toxic]:
        """The proxy's toxics, both streams, in creation order."""

        def parse(body: Any) -> list[Toxic]:
            items = json_list(body, "the answer")
            return [Toxic.from_json(t, f"toxic {i}") for i, t in enumerate(items)]

        return await self._parsed("GET", f"/proxies/{_seg(proxy)}/toxics", parse, "a toxic list")

    async def create_toxic(
        self,
        proxy: str,
        type: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, Any] | None = None,
    ) -> Toxic:
        """Add a toxic (the API answers 200, not 201); ``name`` defaults to type_stream."""
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        if name is not None:
            body["name"] = name
        path = f"/proxies/{_seg(proxy)}/toxics"
        return await self._parsed("POST", path, Toxic.from_json, "a toxic", body)

    async def get_toxic(self, proxy: str, name: str) -> Toxic:
        """One toxic."""
        path = f"/proxies/{_seg(proxy)}/toxics/{_seg(name)}"
        return await self._parsed("GET", path, Toxic.from_json, "a toxic")

    async def update_toxic(
        self,
        proxy: str,
        name: str,
        *,
        attributes: Mapping[str, Any] | None = None,
        toxicity: float | None = None,
    ) -> Toxic:
        """PATCH a toxic; omitted attributes and toxicity keep their values."""
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = dict(attributes)
        if toxicity is not None:
            body["toxicity"] = toxicity
        path = f"/proxies/{_seg(proxy)}/toxics/{_seg(name)}"
        return await self._parsed("PATCH", path, Toxic.from_json, "a toxic", body)

    async def delete_toxic(self, proxy: str, name: str) -> None:
        """Remove a toxic (204)."""
        await self._empty("DELETE", f"/proxies/{_seg(proxy)}/toxics/{_seg(name)}")


def _seg(value: str) -> str:
    # Names are free text on the server; quote so '/' or '?' cannot change the route.
    return quote(value, safe="")
