"""The Toxiproxy 2.12 HTTP API: routes, request decoding and answers, as ``api.go`` has them.

Success bodies are compact JSON with ``Content-Type: application/json``;
errors go through Go's ``http.Error``: ``{"error":"…","status":N}`` plus a
newline, as ``text/plain; charset=utf-8``. Like gorilla/mux, the router
cleans paths with a 301, answers unknown paths with "404 page not found" and
known paths with the wrong method with an empty 405; only matched routes get
a request id, the browser check and the 25 s handler timeout.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import os
import posixpath
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aftershock.proxy.httpserver import Request, Response
from aftershock.proxy.proxies import TOXIC_ALREADY_EXISTS, Proxy, ProxyCollection
from aftershock.proxy.toxics import ATTRIBUTES, GO_STRUCTS, Direction, Toxic
from aftershock.proxy.wire import ApiError, Float32, GoObject, bind, decode_body, encode, kind_of

__all__ = ["VERSION", "ToxiproxyAPI"]

_log = logging.getLogger(__name__)

VERSION = "2.12.0-aftershock"
HANDLER_TIMEOUT = 25.0
_TIMEOUT_BODY = b"<html><head><title>Timeout</title></head><body><h1>Timeout</h1></body></html>"
_JSON = ("Content-Type", "application/json")
# What Go's url.URL.EscapedPath leaves unescaped besides letters, digits and "-._~".
_PATH_SAFE = "/$&+,:;=@"

MISSING_FIELD = ApiError("missing required field", 400)
INVALID_STREAM = ApiError("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ApiError("invalid toxic type", 400)

_PROXY_FIELDS = {"name": "string", "listen": "string", "upstream": "string", "enabled": "bool"}
_POPULATE_ENTRY = 'struct { toxiproxy.Proxy; Enabled *bool "json:\\"enabled\\"" }'
_POPULATE_BODY = "[]" + _POPULATE_ENTRY
_TOXIC_FIELDS = {"name": "string", "type": "string", "stream": "string", "toxicity": "float32"}
_TOXIC_UPDATE = (
    'struct { Attributes interface {} "json:\\"attributes\\""; '
    'Toxicity float32 "json:\\"toxicity\\"" }'
)

Route = Callable[[Request, list[str]], Awaitable[Response]]

# Request ids in the xid format Toxiproxy's logger uses: time, machine, pid, counter; base32hex.
_MACHINE = random.randbytes(3)
_COUNTER = itertools.count(random.randrange(1 << 24))


def _request_id() -> str:
    raw = (
        int(time.time()).to_bytes(4, "big")
        + _MACHINE
        + (os.getpid() & 0xFFFF).to_bytes(2, "big")
        + (next(_COUNTER) & 0xFFFFFF).to_bytes(3, "big")
    )
    return base64.b32hexencode(raw).decode().lower().rstrip("=")


def _json(value: Any, status: int = 200) -> Response:
    return Response(status, encode(value), [_JSON])


def _error(error: ApiError) -> Response:
    return Response.text(
        error.status, encode({"error": error.message, "status": error.status}).decode()
    )


def _clean_path(path: str) -> str:
    cleaned = posixpath.normpath(path if path.startswith("/") else "/" + path)
    cleaned = "/" + cleaned.lstrip("/")
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def _bind_proxy(body: Any, fields: dict[str, Any]) -> None:
    bind(body, _PROXY_FIELDS, fields, struct="Proxy", go_type="toxiproxy.Proxy")


def _request_body(request: Request) -> Any:
    """The decoded body; a chunked body that could not be read fails as Go's decoder does."""
    if request.body_error:
        raise ApiError("bad request body", 400).wrap(request.body_error)
    return decode_body(request.body)


def _member(body: Any, key: str) -> Any:
    return body.lookup(key)[1] if isinstance(body, GoObject) else None


class ToxiproxyAPI:
    """The request handler of the API, over one :class:`ProxyCollection`."""

    def __init__(
        self, collection: ProxyCollection | None = None, *, version: str = VERSION
    ) -> None:
        self.collection = collection if collection is not None else ProxyCollection()
        self.version = version
        self._background: set[asyncio.Task[Response]] = set()

    async def __call__(self, request: Request) -> Response:
        """Answer one request."""
        cleaned = _clean_path(request.path)
        if cleaned != request.path:
            # Go writes the cleaned URL escaped; the header itself must stay ASCII.
            location = quote(cleaned, safe=_PATH_SAFE, errors="surrogateescape")
            return Response(301, headers=[("Location", location)])
        segments = request.path.split("/")[1:]
        routes = self._routes(segments) if all(segments) else None
        if routes is None:
            return Response.text(404, "404 page not found")
        route = routes.get(request.method)
        if route is None:
            return Response(405)
        response = await self._guarded(route, request, segments)
        response.headers.insert(0, ("X-Toxiproxy-Request-Id", _request_id()))
        return response

    async def _guarded(self, route: Route, request: Request, segments: list[str]) -> Response:
        if request.header("user-agent").startswith("Mozilla/"):
            return Response.text(403, "User agent not allowed")
        # Like Go's TimeoutHandler, a late handler finishes in the background.
        task = asyncio.create_task(self._run(route, request, segments))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        try:
            async with asyncio.timeout(HANDLER_TIMEOUT):
                return await asyncio.shield(task)
        except TimeoutError:
            return Response(503, _TIMEOUT_BODY, [("Content-Type", "text/html; charset=utf-8")])

    async def _run(self, route: Route, request: Request, segments: list[str]) -> Response:
        try:
            return await route(request, segments)
        except ApiError as error:
            return _error(error)
        except Exception as exc:  # noqa: BLE001 - Go answers any other error as a 500
            # One line, no traceback: a client can provoke this, and must not flood the log.
            _log.error(
                "%s %r failed: %s: %r", request.method, request.path, type(exc).__name__, str(exc)
            )
            return _error(ApiError(str(exc) or type(exc).__name__, 500))

    async def drain(self) -> None:
        """Wait for handlers still running after their timeout."""
        await asyncio.gather(*self._background, return_exceptions=True)

    def _routes(self, segments: list[str]) -> dict[str, Route] | None:
        # Odd segments are the {proxy} and {toxic} variables of the mux routes.
        shape = tuple("*" if i % 2 else part for i, part in enumerate(segments))
        proxy_update, toxic_update = self._proxy_update, self._toxic_update
        table: dict[tuple[str, ...], dict[str, Route]] = {
            ("reset",): {"POST": self._reset},
            ("version",): {"GET": self._version},
            ("populate",): {"POST": self._populate},
            ("proxies",): {"GET": self._proxy_index, "POST": self._proxy_create},
            ("proxies", "*"): {
                "GET": self._proxy_show,
                "POST": proxy_update,
                "PATCH": proxy_update,
                "DELETE": self._proxy_delete,
            },
            ("proxies", "*", "toxics"): {"GET": self._toxic_index, "POST": self._toxic_create},
            ("proxies", "*", "toxics", "*"): {
                "GET": self._toxic_show,
                "POST": toxic_update,
                "PATCH": toxic_update,
                "DELETE": self._toxic_delete,
            },
        }
        return table.get(shape)

    # ---------------------------------------------------------------- server

    async def _version(self, request: Request, segments: list[str]) -> Response:
        body = f'{{"version": "{self.version}"}}\n'.encode()
        return Response(200, body, [("Content-Type", "application/json;charset=utf-8")])

    async def _reset(self, request: Request, segments: list[str]) -> Response:
        async with self.collection.lock:
            for proxy in list(self.collection.proxies.values()):
                await proxy.start()
                proxy.reset_toxics()
        return Response(204)

    # ---------------------------------------------------------------- proxies

    async def _proxy_index(self, request: Request, segments: list[str]) -> Response:
        proxies = self.collection.proxies
        return _json({name: proxies[name].to_json() for name in sorted(proxies)})

    async def _proxy_create(self, request: Request, segments: list[str]) -> Response:
        fields: dict[str, Any] = {"name": "", "listen": "", "upstream": "", "enabled": True}
        _bind_proxy(_request_body(request), fields)
        if not fields["name"]:
            raise MISSING_FIELD.wrap("name")
        if not fields["upstream"]:
            raise MISSING_FIELD.wrap("upstream")
        proxy = Proxy(fields["name"], fields["listen"], fields["upstream"])
        encode(proxy.to_json())  # nothing is created that could not be listed
        async with self.collection.lock:
            await self.collection.add(proxy, start=fields["enabled"])
        return _json(proxy.to_json(), 201)

    async def _populate(self, request: Request, segments: list[str]) -> Response:
        created: list[Proxy] | None = None
        error: ApiError | None = None
        try:
            created = await self.populate(_request_body(request))
        except ApiError as exc:
            error = exc
            created = exc.created if isinstance(exc, _PopulateFailed) else None
        proxies = [proxy.to_json() for proxy in created] if created else None
        if error is None:
            return _json({"proxies": proxies}, 201)
        return _json(
            {"error": error.message, "status": error.status, "proxies": proxies}, error.status
        )

    async def populate(self, entries: Any) -> list[Proxy]:
        """Create or replace the proxies of a decoded ``/populate`` body; all are checked first."""
        if entries is not None and (not isinstance(entries, list) or isinstance(entries, GoObject)):
            raise ApiError("bad request body", 400).wrap(
                f"json: cannot unmarshal {kind_of(entries)} into Go value of type {_POPULATE_BODY}"
            )
        wanted: list[dict[str, Any]] = []
        for number, entry in enumerate(entries or [], start=1):
            fields: dict[str, Any] = {"name": "", "listen": "", "upstream": "", "enabled": True}
            bind(entry, _PROXY_FIELDS, fields, struct="", go_type=_POPULATE_ENTRY)
            if not fields["name"]:
                raise MISSING_FIELD.wrap(f"name at proxy {number}")
            if not fields["upstream"]:
                raise MISSING_FIELD.wrap(f"upstream at proxy {number}")
            wanted.append(fields)
        created: list[Proxy] = []
        async with self.collection.lock:
            for fields in wanted:
                proxy = Proxy(fields["name"], fields["listen"], fields["upstream"])
                try:
                    created.append(
                        await self.collection.add_or_replace(proxy, start=fields["enabled"])
                    )
                except ApiError as error:
                    raise _PopulateFailed(error, created) from None
        return created

    async def _proxy_show(self, request: Request, segments: list[str]) -> Response:
        return _json(self.collection.get(segments[1]).to_json())

    async def _proxy_update(self, request: Request, segments: list[str]) -> Response:
        proxy = self.collection.get(segments[1])
        fields: dict[str, Any] = {
            "name": proxy.name,
            "listen": proxy.listen,
            "upstream": proxy.upstream,
            "enabled": proxy.enabled,
        }
        _bind_proxy(_request_body(request), fields)
        async with self.collection.lock:
            await proxy.update(fields["listen"], fields["upstream"], fields["enabled"])
        return _json(proxy.to_json())

    async def _proxy_delete(self, request: Request, segments: list[str]) -> Response:
        async with self.collection.lock:
            await self.collection.remove(segments[1])
        return Response(204)

    # ---------------------------------------------------------------- toxics

    async def _toxic_index(self, request: Request, segments: list[str]) -> Response:
        return _json(self.collection.get(segments[1]).toxic_array())

    async def _toxic_create(self, request: Request, segments: list[str]) -> Response:
        proxy = self.collection.get(segments[1])
        body = _request_body(request)
        wrapper: dict[str, Any] = {"name": "", "type": "", "stream": "downstream", "toxicity": 1.0}
        bind(body, _TOXIC_FIELDS, wrapper, struct="ToxicWrapper", go_type="toxics.ToxicWrapper")
        bind(
            _member(body, "attributes"),
            {},
            {},
            struct="NoopToxic",
            go_type="toxics.NoopToxic",
            field="ToxicWrapper.attributes",
        )
        direction = Direction.parse(wrapper["stream"])
        if direction is None:
            raise INVALID_STREAM
        kind = wrapper["type"]
        name = wrapper["name"] or f"{kind}_{wrapper['stream']}"
        if kind not in ATTRIBUTES:
            raise INVALID_TOXIC_TYPE
        if proxy.find_toxic(name) is not None:
            raise TOXIC_ALREADY_EXISTS
        attributes = self._attributes(
            kind, _member(body, "attributes"), dict.fromkeys(ATTRIBUTES[kind], 0)
        )
        toxic = Toxic(
            name=name,
            type=kind,
            stream=wrapper["stream"],
            direction=direction,
            toxicity=float(wrapper["toxicity"]),
            attributes=attributes,
        )
        answer = _json(toxic.to_json())  # encoded first: nothing is added that cannot be listed
        async with self.collection.lock:
            proxy.add_toxic(toxic)
        return answer

    @staticmethod
    def _attributes(kind: str, source: Any, attributes: dict[str, Any]) -> dict[str, int]:
        go_type = GO_STRUCTS[kind]
        struct = go_type.rpartition(".")[2]
        bind(
            source,
            ATTRIBUTES[kind],
            attributes,
            struct=struct,
            go_type=go_type,
            field=".attributes",
        )
        return {name: int(value) for name, value in attributes.items()}

    async def _toxic_show(self, request: Request, segments: list[str]) -> Response:
        proxy = self.collection.get(segments[1])
        return _json(proxy.get_toxic(segments[3]).to_json())

    async def _toxic_update(self, request: Request, segments: list[str]) -> Response:
        proxy = self.collection.get(segments[1])
        toxic = proxy.get_toxic(segments[3])
        body = _request_body(request)
        fields: dict[str, Any] = {"toxicity": Float32(toxic.toxicity)}
        bind(body, {"toxicity": "float32"}, fields, struct="", go_type=_TOXIC_UPDATE)
        attributes = self._attributes(
            toxic.type, _member(body, "attributes"), dict(toxic.attributes)
        )
        toxicity = float(fields["toxicity"])
        # Encoded first: an update is applied only if its result can be listed.
        answer = _json({**toxic.to_json(), "attributes": attributes, "toxicity": Float32(toxicity)})
        async with self.collection.lock:
            proxy.update_toxic(toxic, attributes, toxicity)
        return answer

    async def _toxic_delete(self, request: Request, segments: list[str]) -> Response:
        proxy = self.collection.get(segments[1])
        async with self.collection.lock:
            proxy.remove_toxic(segments[3])
        return Response(204)


class _PopulateFailed(ApiError):
    """A populate that failed after creating or keeping some proxies (listed in its answer)."""

    def __init__(self, error: ApiError, created: list[Proxy]) -> None:
        super().__init__(error.message, error.status)
        self.created = created
