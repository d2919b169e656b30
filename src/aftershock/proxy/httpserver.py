"""A minimal HTTP/1.1 server on asyncio streams, enough for the Toxiproxy API.

It reads a request line and headers (CRLF or bare LF), a body framed by
Content-Length or chunked transfer coding, answers ``Expect: 100-continue``,
keeps connections alive unless told otherwise, and hands each request to one
handler coroutine. Malformed requests get the plain-text 4xx answers Go's
net/http writes, and the connection is closed after them. Framing is parsed
as strictly as Go parses it: Content-Length is plain ASCII digits; a chunk
size is 1 to 16 hex digits, then an optional ``;extension``, on a line ending
in CRLF. A chunked body Go would fail to read is handed on with the reader's
error (:attr:`Request.body_error`), as Go hands it to the handler, and the
connection is closed after the answer. Nothing a client sends ends in a
traceback: a failing handler is answered 500 and logged on one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

__all__ = ["HTTPServer", "Handler", "Request", "Response"]

_log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
READ_TIMEOUT = 15.0  # a whole request, as Toxiproxy's server
IDLE_TIMEOUT = 60.0  # between requests on a kept-alive connection

MAX_CHUNK_LINE = 4096  # Go's maxLineLength for chunk-size lines

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VERSION = re.compile(r"^HTTP/1\.[0-9]$")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_BAD_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_CONTENT_LENGTH = 2**63 - 1  # Go parses it with strconv.ParseUint(cl, 10, 63)


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request. ``path`` is percent-decoded; header names are lower case."""

    method: str
    target: str
    path: str
    version: str
    headers: dict[str, str]
    body: bytes = b""
    # Why the chunked body could not be read (Go's reader error), or "". Like Go, the
    # request is still handed on; a handler that reads the body reports this error, and
    # the connection is closed after the answer, as the rest of the stream is unusable.
    body_error: str = ""

    def header(self, name: str, default: str = "") -> str:
        """The value of header ``name`` (any case)."""
        return self.headers.get(name.lower(), default)


@dataclass(slots=True)
class Response:
    """An answer: status, headers in order, body (Content-Length is added when sent)."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def text(cls, status: int, message: str) -> Response:
        """A plain-text answer as Go's ``http.Error`` writes it (message plus newline)."""
        return cls(
            status,
            (message + "\n").encode(),
            [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")],
        )


Handler = Callable[[Request], Awaitable[Response]]


class _BadChunk(Exception):
    """A chunked body Go's chunked reader refuses; ``str()`` is its error message."""


class _Refused(Exception):
    """A request that cannot be served; answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message or f"{status} {HTTPStatus(status).phrase}"


class HTTPServer:
    """Serves ``handler`` on one TCP address until :meth:`close`."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port`` (0 for any free port); returns the bound address."""
        self._server = await asyncio.start_server(
            self._serve, host, port, limit=MAX_HEADER_BYTES, reuse_address=True
        )
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def close(self) -> None:
        """Stop listening and close every connection, waiting for their tasks."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._serve_requests(reader, writer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.CancelledError):
            # Cancelled by close(). Ending normally matters: asyncio's stream callback
            # calls task.exception(), which raises again for a cancelled task.
            pass
        except Exception as exc:  # noqa: BLE001 - one line, not asyncio's traceback
            _log.error("connection dropped: %s: %r", type(exc).__name__, str(exc))
            writer.transport.abort()
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await writer.wait_closed()

    async def _serve_requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                async with asyncio.timeout(IDLE_TIMEOUT):
                    first = await _first_line(reader)
                if first is None:
                    return
                async with asyncio.timeout(READ_TIMEOUT):
                    request = await _read_request(first, reader, writer)
            except _Refused as refused:
                response = Response.text(refused.status, refused.message)
                response.headers.append(("Connection", "close"))
                await _send(writer, response, head_only=False)
                return
            response = await self._answer(request)
            close = _wants_close(request) or bool(request.body_error)
            if close:
                response.headers.append(("Connection", "close"))
            await _send(writer, response, head_only=request.method == "HEAD")
            if close:
                return

    async def _answer(self, request: Request) -> Response:
        try:
            return await self._handler(request)
        except Exception as exc:  # noqa: BLE001 - a failing handler must not take the server down
            _log.error(
                "handler failed for %s %r: %s: %r",
                request.method,
                request.target,
                type(exc).__name__,
                str(exc),
            )
            return Response.text(500, "Internal Server Error")


def _wants_close(request: Request) -> bool:
    tokens = {t.strip().lower() for t in request.header("connection").split(",")}
    if request.version == "HTTP/1.0":
        return "keep-alive" not in tokens
    return "close" in tokens


async def _readline(reader: asyncio.StreamReader) -> bytes:
    try:
        line = await reader.readline()
    except ValueError:  # longer than the reader's limit
        raise _Refused(431) from None
    if not line.endswith(b"\n"):
        raise asyncio.IncompleteReadError(line, None)
    return line


async def _first_line(reader: asyncio.StreamReader) -> bytes | None:
    # Blank lines before a request are allowed (RFC 9112 section 2.2).
    for _ in range(4):
        try:
            line = await reader.readline()
        except ValueError:  # longer than the reader's limit
            raise _Refused(431) from None
        if not line.endswith(b"\n"):
            return None
        if line.strip(b"\r\n"):
            return line
    raise _Refused(400)


async def _read_request(
    first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Request:
    if not first.endswith(b"\n") or len(first) > MAX_HEADER_BYTES:
        raise _Refused(431 if len(first) >= MAX_HEADER_BYTES else 400)
    parts = first.rstrip(b"\r\n").decode("latin-1").split(" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]):
        raise _Refused(400, "400 Bad Request: malformed HTTP request")
    method, target, version = parts
    if not _VERSION.match(version):
        raise _Refused(505, "505 HTTP Version Not Supported: unsupported protocol version")
    headers = await _read_headers(reader, len(first))
    if version == "HTTP/1.1" and "host" not in headers:
        raise _Refused(400, "400 Bad Request: missing required Host header")
    path = _request_path(target)
    try:
        body = await _read_body(headers, reader, writer, version)
    except _BadChunk as bad:
        return Request(method, target, path, version, headers, body_error=str(bad))
    return Request(method, target, path, version, headers, body)


def _request_path(target: str) -> str:
    """The decoded path of a request target, as Go's url.ParseRequestURI reads it.

    A path with bytes that are not UTF-8 keeps them as lone surrogates
    (``surrogateescape``), so it names nothing a decoded JSON string names.
    """
    if _CONTROL.search(target):
        raise _Refused(400)
    if target.startswith("/"):
        raw_path = target.partition("?")[0]  # a '#' is part of the path here, as in Go
    else:
        try:
            split = urlsplit(target, allow_fragments=False)
        except ValueError:  # e.g. an unclosed IPv6 host
            raise _Refused(400) from None
        raw_path = split.path if split.scheme and split.netloc else ""
    if not raw_path.startswith("/"):
        raise _Refused(400, "400 Bad Request: malformed HTTP request")
    if _BAD_ESCAPE.search(raw_path):
        raise _Refused(400)
    return unquote(raw_path, errors="surrogateescape")


async def _read_headers(reader: asyncio.StreamReader, used: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    while (line := await _readline(reader)) not in (b"\r\n", b"\n"):
        used += len(line)
        if used > MAX_HEADER_BYTES:
            raise _Refused(431)
        name, colon, value = line.decode("latin-1").rstrip("\r\n").partition(":")
        if not colon or not _TOKEN.match(name):
            raise _Refused(400, "400 Bad Request: malformed MIME header line")
        key, value = name.lower(), value.strip(" \t")
        if key == "content-length" and key in headers and headers[key] != value:
            raise _Refused(400, "400 Bad Request: invalid Content-Length")
        if key in headers and key != "content-length":
            value = f"{headers[key]}, {value}"
        headers[key] = value
    return headers


async def _read_body(
    headers: dict[str, str],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    version: str,
) -> bytes:
    coding = headers.get("transfer-encoding", "").lower()
    length_text = headers.get("content-length")
    if coding and coding != "chunked":
        raise _Refused(501, "501 Not Implemented: unsupported transfer encoding")
    if coding and length_text is not None:
        raise _Refused(400, "400 Bad Request: Content-Length with Transfer-Encoding")
    length = 0
    if length_text is not None:
        length = _content_length(length_text)
        if length > MAX_BODY_BYTES:
            raise _Refused(413)
    if not coding and length == 0:
        return b""
    if headers.get("expect", "").lower() == "100-continue" and version == "HTTP/1.1":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    if not coding:
        return await reader.readexactly(length)
    return await _read_chunked(reader)


def _content_length(text: str) -> int:
    # ASCII digits only: str.isdigit() also accepts "²" and "٣", which int() reads or refuses.
    if not (text.isascii() and text.isdigit()):
        raise _Refused(400, "400 Bad Request: invalid Content-Length")
    digits = text.lstrip("0")
    # The length check keeps int() clear of its limit on digits; Go refuses values past 63 bits.
    if len(digits) > len(str(_MAX_CONTENT_LENGTH)) or int(digits or "0") > _MAX_CONTENT_LENGTH:
        raise _Refused(400, "400 Bad Request: invalid Content-Length")
    return int(digits or "0")


async def _chunk_line(reader: asyncio.StreamReader) -> bytes:
    """One chunk-size line without its CRLF, checked as Go's ``readChunkLine`` checks it."""
    try:
        line = await reader.readline()
    except ValueError:  # longer than the reader's limit
        raise _BadChunk("header line too long") from None
    if not line.endswith(b"\n"):
        raise asyncio.IncompleteReadError(line, None)
    if len(line) >= MAX_CHUNK_LINE:
        raise _BadChunk("header line too long")
    # Go (1.23.8 and later) requires CRLF here, and no other CR, against request smuggling.
    if not line.endswith(b"\r\n"):
        raise _BadChunk("chunked line ends with bare LF")
    if b"\r" in line[:-2]:
        raise _BadChunk("invalid CR in chunked line")
    return line[:-2]


def _chunk_size(line: bytes) -> int:
    """The size on a chunk-size line, as Go's ``beginChunk`` and ``parseHexUint`` read it."""
    # Trailing spaces go first, then any extension: "5 ;x" leaves "5 ", refused as in Go.
    size_text = line.rstrip(b" \t").partition(b";")[0]
    if not size_text:
        raise _BadChunk("empty hex number for chunk length")
    for index, byte in enumerate(size_text):
        if byte not in _HEX_DIGITS:
            raise _BadChunk("invalid byte in chunk length")
        if index == 16:
            raise _BadChunk("http chunk length too large")
    return int(size_text, 16)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = _chunk_size(await _chunk_line(reader))
        if len(body) + size > MAX_BODY_BYTES:
            raise _Refused(413)
        if size == 0:
            while await _readline(reader) not in (b"\r\n", b"\n"):
                pass  # trailer fields are ignored
            return bytes(body)
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise _BadChunk("malformed chunked encoding")


async def _send(writer: asyncio.StreamWriter, response: Response, *, head_only: bool) -> None:
    status = HTTPStatus(response.status)
    lines = [f"HTTP/1.1 {status.value} {status.phrase}"]
    names = {name.lower() for name, _ in response.headers}
    if "date" not in names:
        lines.append(f"Date: {formatdate(usegmt=True)}")
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    if status >= 200 and status not in (204, 304):
        lines.append(f"Content-Length: {len(response.body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    writer.write(head if head_only or status in (204, 304) else head + response.body)
    await writer.drain()
