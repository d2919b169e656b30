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
the one failure every caller treats the same way: retry later. A server that
answers a success status with something that is not the API's answer (not
JSON, JSON of the wrong shape, an object missing fields, a redirect, a body
longer than ``max_body``) raises ``aftershock.errors.UnexpectedAnswer`` with the
status, content type and an escaped excerpt of what it sent. Every success
body is parsed strictly (NaN and Infinity are not JSON), and no more than
``max_body`` bytes are ever read. The driver (``aftershock.drivers.toxiproxy``)
translates the rest into the project tree.

Proxy updates use ``POST`` like the official Go client (``client/proxy.go``):
every 2.x server accepts it, whereas ``PATCH`` on proxies only exists in newer
ones. Toxic updates use ``PATCH``, as the Go client does.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx

from aftershock import __version__
from aftershock.errors import DriverUnavailable, UnexpectedAnswer

__all__ = [
    "MAX_BODY",
    "Proxy",
    "Toxic",
    "ToxiproxyAPIError",
    "ToxiproxyBadRequest",
    "ToxiproxyClient",
    "ToxiproxyConflict",
    "ToxiproxyError",
    "ToxiproxyNotFound",
    "excerpt",
]

T = TypeVar("T")
USER_AGENT = f"aftershock/{__version__}"
"""Sent on every request: Toxiproxy answers 403 to any ``Mozilla/...`` agent."""
MAX_BODY = 4 * 1024 * 1024
"""Bytes read of one answer at most; a Toxiproxy listing thousands of proxies stays far below."""
EXCERPT = 200
"""Characters of a bad answer quoted in the error."""
_VERSION = re.compile(r"^v?\d+(\.\d+)*([-+][0-9A-Za-z.+-]+)?$")


class _Shape(ValueError):
    """The JSON is not what the endpoint answers; the message says what is wrong."""


_KINDS: dict[type, str] = {type(None): "null", bool: "a boolean", int: "a number"}
_KINDS.update({float: "a number", str: "a string", list: "a list"})


def _kind(value: object) -> str:
    return _KINDS.get(type(value), "an object")


def _object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Shape(f"{what} is {_kind(value)}, not an object")
    return value


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Shape(f"{what} is {_kind(value)}, not a list")
    return value


def _field(data: Mapping[str, Any], key: str, cls: type[T], what: str, kind: str) -> T:
    if key not in data:
        raise _Shape(f"{what} has no {key!r}")
    value = data[key]
    # bool is an int in Python; JSON keeps them apart, and so do we.
    if not isinstance(value, cls) or (cls is not bool and isinstance(value, bool)):
        raise _Shape(f"{what}: {key!r} is {_kind(value)}, not {kind}")
    return value


def _number(data: Mapping[str, Any], key: str, what: str, default: float) -> float:
    if key not in data:
        return default
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Shape(f"{what}: {key!r} is {_kind(value)}, not a number")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Toxic:
    """A toxic as the server reports it."""

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: object, what: str = "the toxic") -> Self:
        """Build from a server answer, ignoring unknown fields; ``ValueError`` if malformed.

        ``name``, ``type`` and ``stream`` must be strings; ``toxicity`` (default 1)
        a finite number and ``attributes`` an object when present.
        """
        obj = _object(data, what)
        return cls(
            name=_field(obj, "name", str, what, "a string"),
            type=_field(obj, "type", str, what, "a string"),
            stream=_field(obj, "stream", str, what, "a string"),
            toxicity=_number(obj, "toxicity", what, 1.0),
            attributes=dict(_object(obj.get("attributes", {}), f"{what}'s attributes")),
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
    def from_json(cls, data: object, what: str = "the proxy") -> Self:
        """Build from a server answer, ignoring unknown fields (such as ``Logger``).

        ``name``, ``listen`` and ``upstream`` must be strings and ``enabled`` a
        boolean; ``toxics``, when present, a list of toxics. ``ValueError`` if not.
        """
        obj = _object(data, what)
        name = _field(obj, "name", str, what, "a string")
        listen = _field(obj, "listen", str, what, "a string")
        upstream = _field(obj, "upstream", str, what, "a string")
        enabled = _field(obj, "enabled", bool, what, "a boolean")
        toxics = _list(obj.get("toxics", []), f"{what}'s toxics")
        return cls(
            name=name,
            listen=listen,
            upstream=upstream,
            enabled=enabled,
            toxics=tuple(
                Toxic.from_json(t, f"toxic {i} of proxy {name!r}") for i, t in enumerate(toxics)
            ),
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


_ESCAPED = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _escaped(text: str, limit: int) -> str:
    shown = "".join(
        (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        if unicodedata.category(c) in _ESCAPED
        else c
        for c in text[:limit]
    )
    return shown + ("..." if len(text) > limit else "")


def excerpt(content: bytes, limit: int = EXCERPT) -> str:
    """The start of a body as one quoted line: at most ``limit`` characters, control
    and formatting characters (newlines, escapes, bidi overrides) escaped."""
    text = content[: limit * 4].decode("utf-8", errors="replace")
    more = len(text) > limit or len(content) > limit * 4
    return f"'{_escaped(text[:limit], limit)}'" + ("..." if more else "")


def _no_constant(name: str) -> Any:
    raise _Shape(f"{name} is not JSON")


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
        """The body as strict JSON (``_Shape`` if it is not)."""
        if self.truncated:
            raise _Shape(f"the body is longer than {len(self.content)} bytes")
        try:
            return json.loads(self.content.decode("utf-8"), parse_constant=_no_constant)
        except UnicodeDecodeError as exc:
            raise _Shape(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
        except RecursionError as exc:
            raise _Shape("the JSON is nested too deep") from exc
        except json.JSONDecodeError as exc:
            raise _Shape(f"the body is not JSON ({exc.msg} at line {exc.lineno})") from exc

    def described(self) -> str:
        """Status, content type and an excerpt of the body."""
        size = f"{len(self.content)}{'+' if self.truncated else ''} bytes"
        body = f"body {excerpt(self.content)} ({size})" if self.content else "an empty body"
        return f"{self.status} ({self.content_type or 'no content type'}) and {body}"


def _error_for(answer: _Answer) -> ToxiproxyError:
    """The error of an error status; whatever the body is, the message is one escaped line."""
    try:
        body: Any = answer.json()
    except _Shape:
        body = answer.content.decode("utf-8", errors="replace")
    message = ""
    proxies: tuple[Proxy, ...] = ()
    if isinstance(body, Mapping):
        error = body.get("error")
        message = _escaped(error.strip(), 500) if isinstance(error, str) else ""
        try:
            items = _list(body.get("proxies") or [], "proxies")
            proxies = tuple(Proxy.from_json(p) for p in items)
        except ValueError:
            proxies = ()  # the status is the news; a garbled list of survivors is not
    elif isinstance(body, str):
        message = _escaped(body.strip(), EXCERPT)  # not Toxiproxy's: the start is enough
    cls = _BY_STATUS.get(answer.status, ToxiproxyAPIError)
    return cls(
        answer.status,
        message or httpx.codes.get_reason_phrase(answer.status) or "error",
        url=answer.url,
        body=body,
        proxies=proxies,
    )


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
            raise _error_for(answer)
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
        except ValueError as exc:  # _Shape, and the checks of from_json
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
            return _field(_object(answer.json(), "the answer"), "version", str, "it", "a string")
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
                body = _object(body, "the answer").get("proxies")
            items = _list(body, "proxies")
            return [Proxy.from_json(p, f"proxy {i}") for i, p in enumerate(items)]

        entries = [dict(p) for p in proxies]
        return await self._parsed("POST", "/populate", parse, "a list of proxies", entries)

    # ------------------------------------------------------------ proxies

    async def proxies(self) -> dict[str, Proxy]:
        """Every proxy, keyed by name (the API answers an object, not a list)."""

        def parse(body: Any) -> dict[str, Proxy]:
            return {
                name: Proxy.from_json(p, f"proxy {name!r}")
                for name, p in _object(body, "the answer").items()
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
            items = _list(body, "the answer")
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
