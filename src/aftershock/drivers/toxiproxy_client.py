"""An async, typed client for the whole Toxiproxy 2.x HTTP API, over httpx.

One ``ToxiproxyClient`` talks to one server. Results are frozen dataclasses that
ignore fields they do not know (a real 2.12 leaks ``"Logger": {}`` into every
proxy). Errors the server answers are raised from this tree::

    ToxiproxyError                 status, message, body (and proxies for /populate)
     ├── ToxiproxyBadRequest       400: bad body, missing field, invalid stream/type
     ├── ToxiproxyNotFound         404: proxy or toxic not found
     ├── ToxiproxyConflict         409: proxy or toxic already exists
     └── ToxiproxyAPIError         any other 4xx/5xx (403 user agent, 500, 503 timeout)

A server that cannot be reached at all (refused, timed out, broken connection)
raises ``aftershock.errors.DriverUnavailable`` naming the URL, because that is
the one failure every caller treats the same way: retry later. The driver
(``aftershock.drivers.toxiproxy``) translates the rest into the project tree.

Proxy updates use ``POST`` like the official Go client (``client/proxy.go``):
every 2.x server accepts it, whereas ``PATCH`` on proxies only exists in newer
ones. Toxic updates use ``PATCH``, as the Go client does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from aftershock import __version__
from aftershock.errors import DriverUnavailable

__all__ = [
    "Proxy",
    "Toxic",
    "ToxiproxyAPIError",
    "ToxiproxyBadRequest",
    "ToxiproxyClient",
    "ToxiproxyConflict",
    "ToxiproxyError",
    "ToxiproxyNotFound",
]

USER_AGENT = f"aftershock/{__version__}"
"""Sent on every request: Toxiproxy answers 403 to any ``Mozilla/...`` agent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Toxic:
    """A toxic as the server reports it."""

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Build from a server answer, ignoring unknown fields."""
        toxicity = data.get("toxicity")
        return cls(
            name=str(data.get("name", "")),
            type=str(data.get("type", "")),
            stream=str(data.get("stream") or "downstream"),
            toxicity=1.0 if toxicity is None else float(toxicity),
            attributes=dict(data.get("attributes") or {}),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Proxy:
    """A proxy as the server reports it, with its toxics in creation order."""

    name: str
    listen: str
    upstream: str
    enabled: bool = True
    toxics: tuple[Toxic, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Build from a server answer, ignoring unknown fields (such as ``Logger``)."""
        return cls(
            name=str(data.get("name", "")),
            listen=str(data.get("listen", "")),
            upstream=str(data.get("upstream", "")),
            enabled=bool(data.get("enabled", True)),
            toxics=tuple(Toxic.from_json(t) for t in data.get("toxics") or ()),
        )


class ToxiproxyError(Exception):
    """The server answered with an error status; ``message`` is its ``error`` text."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        url: str = "",
        body: Any = None,
        proxies: tuple[Proxy, ...] = (),
    ) -> None:
        self.status = status
        self.message = message
        self.url = url
        self.body = body
        self.proxies = proxies
        """For ``/populate``: the proxies created before the failure."""
        super().__init__(f"{status} {message}" + (f" ({url})" if url else ""))


class ToxiproxyBadRequest(ToxiproxyError):
    """400: malformed body, missing required field, invalid stream or toxic type."""


class ToxiproxyNotFound(ToxiproxyError):
    """404: the proxy or toxic does not exist."""


class ToxiproxyConflict(ToxiproxyError):
    """409: a proxy or toxic with that name already exists."""


class ToxiproxyAPIError(ToxiproxyError):
    """Any other error status (403 for a browser user agent, 500, 503 handler timeout)."""


_BY_STATUS: dict[int, type[ToxiproxyError]] = {
    400: ToxiproxyBadRequest,
    404: ToxiproxyNotFound,
    409: ToxiproxyConflict,
}


def _decode(response: httpx.Response) -> Any:
    # Toxiproxy writes JSON errors through Go's http.Error, which labels them
    # text/plain, so the content type says nothing: try JSON, fall back to text.
    try:
        return json.loads(response.content)
    except ValueError:
        return response.text


def _error_for(response: httpx.Response) -> ToxiproxyError:
    body = _decode(response)
    message = response.reason_phrase
    proxies: tuple[Proxy, ...] = ()
    if isinstance(body, Mapping):
        message = str(body.get("error") or message)
        proxies = tuple(Proxy.from_json(p) for p in body.get("proxies") or ())
    elif isinstance(body, str) and body.strip():
        message = body.strip()
    cls = _BY_STATUS.get(response.status_code, ToxiproxyAPIError)
    return cls(
        response.status_code, message, url=str(response.request.url), body=body, proxies=proxies
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class ToxiproxyClient:
    """Async client for one Toxiproxy server (``base_url`` like ``http://127.0.0.1:8474``).

    ``transport`` replaces the network (``httpx.MockTransport`` in tests). Use as
    an async context manager or call ``aclose()``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            # Traffic stays where the URL says; a proxy from the environment
            # would route chaos API calls through some other host.
            trust_env=False,
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

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        content = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            response = await self._http.request(method, path, content=content, headers=headers)
        except httpx.TransportError as exc:
            msg = f"Toxiproxy API {self.base_url} unreachable: {_one_line(exc)}"
            raise DriverUnavailable(msg) from exc
        if response.is_error:
            raise _error_for(response)
        if response.status_code == 204 or not response.content:
            return None
        return _decode(response)

    # ------------------------------------------------------------ server

    async def version(self) -> str:
        """The server version (``GET /version``); old servers answer plain text."""
        body = await self._request("GET", "/version")
        if isinstance(body, Mapping):
            return str(body.get("version", ""))
        return str(body or "").strip()

    async def reset(self) -> None:
        """Remove every toxic and enable every proxy (``POST /reset`` → 204)."""
        await self._request("POST", "/reset")

    async def populate(self, proxies: Iterable[Mapping[str, Any]]) -> list[Proxy]:
        """Create or replace proxies in bulk (``POST /populate`` → 201).

        On failure the raised ``ToxiproxyError.proxies`` holds those created
        before it; identical existing proxies are left untouched.
        """
        body = await self._request("POST", "/populate", [dict(p) for p in proxies])
        items = body.get("proxies") if isinstance(body, Mapping) else body
        return [Proxy.from_json(p) for p in items or ()]

    # ------------------------------------------------------------ proxies

    async def proxies(self) -> dict[str, Proxy]:
        """Every proxy, keyed by name (the API answers an object, not a list)."""
        body = await self._request("GET", "/proxies")
        return {name: Proxy.from_json(p) for name, p in (body or {}).items()}

    async def create_proxy(
        self, name: str, upstream: str, listen: str = "127.0.0.1:0", *, enabled: bool = True
    ) -> Proxy:
        """Create a proxy (201); port 0 in ``listen`` picks a free port."""
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        return Proxy.from_json(await self._request("POST", "/proxies", body))

    async def get_proxy(self, name: str) -> Proxy:
        """One proxy with its toxics."""
        return Proxy.from_json(await self._request("GET", f"/proxies/{_seg(name)}"))

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
        return Proxy.from_json(await self._request("POST", f"/proxies/{_seg(name)}", body))

    async def delete_proxy(self, name: str) -> None:
        """Stop and delete a proxy (204)."""
        await self._request("DELETE", f"/proxies/{_seg(name)}")

    # ------------------------------------------------------------ toxics

    async def toxics(self, proxy: str) -> list[Toxic]:
        """The proxy's toxics, both streams, in creation order."""
        body = await self._request("GET", f"/proxies/{_seg(proxy)}/toxics")
        return [Toxic.from_json(t) for t in body or ()]

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
        return Toxic.from_json(await self._request("POST", f"/proxies/{_seg(proxy)}/toxics", body))

    async def get_toxic(self, proxy: str, name: str) -> Toxic:
        """One toxic."""
        path = f"/proxies/{_seg(proxy)}/toxics/{_seg(name)}"
        return Toxic.from_json(await self._request("GET", path))

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
        return Toxic.from_json(await self._request("PATCH", path, body))

    async def delete_toxic(self, proxy: str, name: str) -> None:
        """Remove a toxic (204)."""
        await self._request("DELETE", f"/proxies/{_seg(proxy)}/toxics/{_seg(name)}")


def _seg(value: str) -> str:
    # Names are free text on the server; quote so '/' or '?' cannot change the route.
    return quote(value, safe="")
