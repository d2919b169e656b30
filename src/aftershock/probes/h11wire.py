"""HTTP/1.1 on the wire for the fast probe engine: the response parser.

No I/O here: ``ResponseParser`` is fed the bytes a connection receives until
it returns a complete ``Response``; the request side (``Target``,
``encode_request``) is in ``probes/h11request.py``. The connection
(``probes/fastpath.py``) only moves bytes.

The parser accepts what health endpoints send (``Content-Length``, chunked
and close-delimited bodies, interim 1xx answers, gzip/deflate if a server
compresses unasked) and refuses what a hostile or broken server sends: a status
line that is not ``HTTP/1.x NNN``, a head larger than ``HEAD_LIMIT``, malformed
lengths and chunk sizes. A body is kept up to a limit; past it the response is
returned truncated and the connection is not reused (draining an unbounded
body costs more than a new connection).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final

__all__ = ["HEAD_LIMIT", "ProtocolError", "Response", "ResponseParser"]

HEAD_LIMIT: Final = 64 * 1024
"""Bytes of status line and headers accepted; a health endpoint's head is far smaller."""

_CHUNK_LINE_LIMIT: Final = 4096
_NO_BODY: Final = frozenset({204, 304})
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")

# Parser states: where the next bytes belong.
_HEAD, _LENGTH, _UNTIL_CLOSE, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _DONE = range(8)


class ProtocolError(Exception):
    """The server's bytes are not an HTTP/1.x response; the text says what was wrong."""


@dataclass(frozen=True, slots=True)
class Response:
    """A complete response: status, reason, body up to the limit, and connection reuse."""

    status: int
    reason: str
    body: bytes
    truncated: bool
    keep_alive: bool


class ResponseParser:
    """Incremental parser of one response; ``feed`` until it returns the response.

    ``head_only`` is for HEAD requests (a body is never read). ``limit`` bounds the
    body kept. ``feed(b"")`` signals end of stream.
    """

    __slots__ = (
        "_body",
        "_buf",
        "_chunk_left",
        "_encoding",
        "_head_only",
        "_keep_alive",
        "_length",
        "_limit",
        "_reason",
        "_state",
        "_status",
        "received",
    )

    def __init__(self, *, limit: int, head_only: bool = False) -> None:
        self._limit = limit
        self._head_only = head_only
        self._buf = bytearray()
        self._state = _HEAD
        self._status = 0
        self._reason = ""
        self._keep_alive = True
        self._length = 0
        self._chunk_left = 0
        self._body = bytearray()
        self._encoding = ""
        self.received = 0
        """Bytes fed so far: zero at end of stream means the server sent nothing."""

    def feed(self, data: bytes) -> Response | None:
        """Take bytes (``b""``: end of stream); the response once complete, else None."""
        self.received += len(data)
        if not data:
            return self._at_eof()
        buf = self._buf
        buf += data
        if self._state == _HEAD:
            done = self._head()
            if done is not None or self._state == _HEAD:
                return done
        if self._state == _LENGTH:
            return self._length_body()
        if self._state == _UNTIL_CLOSE:
            return self._close_body()
        if self._state != _DONE:
            return self._chunked()
        return None

    # ------------------------------------------------------------ head
    def _head(self) -> Response | None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0 or end > HEAD_LIMIT:
            if len(buf) > HEAD_LIMIT:
                msg = f"response head larger than {HEAD_LIMIT // 1024} KiB"
                raise ProtocolError(msg)
            if len(buf) >= 8 and not buf.startswith(b"HTTP/1."):
                raise ProtocolError(_bad_status(bytes(buf[:40])))
            return None
        head = bytes(buf[:end])
        del buf[: end + 4]
        status_line, _, fields = head.partition(b"\r\n")
        version, status, reason = _status_line(status_line)
        length, chunked, keep_alive, encoding = _headers(fields, version == b"HTTP/1.1")
        if 100 <= status < 200:
            if status == 101:
                msg = "server switched protocols (HTTP 101)"
                raise ProtocolError(msg)
            return self._head() if buf else None  # an interim answer; the real one follows
        self._status, self._reason = status, reason
        self._keep_alive, self._encoding = keep_alive, encoding
        if self._head_only or status in _NO_BODY:
            return self._done(truncated=False)
        if chunked:
            self._state = _CHUNK_SIZE
        elif length is not None:
            self._length = length
            self._state = _LENGTH
        else:
            self._keep_alive = False
            self._state = _UNTIL_CLOSE
        return None

    # ------------------------------------------------------------ bodies
    def _length_body(self) -> Response | None:
        buf, want = self._buf, self._length
        if want > self._limit and len(buf) >= self._limit:
            self._body = buf[: self._limit]
            return self._done(truncated=True, reuse=False)
        if len(buf) < want:
            return None
        if len(buf) > want:
            # Bytes past the body: a pipelining bug or garbage; never reuse the connection.
            self._keep_alive = False
        self._body = buf[:want]
        return self._done(truncated=False)

    def _chunked(self) -> Response | None:
        steps = {
            _CHUNK_SIZE: self._chunk_size,
            _CHUNK_DATA: self._chunk_data,
            _CHUNK_END: self._chunk_end,
            _TRAILERS: self._trailer,
        }
        while True:
            more, done = steps[self._state]()
            if done is not None or not more:
                return done

    def _chunk_size(self) -> tuple[bool, Response | None]:
        buf = self._buf
        end = buf.find(b"\r\n")
        if end < 0:
            if len(buf) > _CHUNK_LINE_LIMIT:
                msg = "chunk size line too long"
                raise ProtocolError(msg)
            return False, None
        size_text = bytes(buf[:end]).split(b";", 1)[0].strip()
        if not size_text or any(c not in _HEX for c in size_text):
            msg = f"bad chunk size {size_text[:20]!r}"
            raise ProtocolError(msg)
        del buf[: end + 2]
        self._chunk_left = int(size_text, 16)
        self._state = _CHUNK_DATA if self._chunk_left else _TRAILERS
        return True, None

    def _chunk_data(self) -> tuple[bool, Response | None]:
        buf = self._buf
        take = min(self._chunk_left, len(buf))
        self._body += buf[:take]
        del buf[:take]
        self._chunk_left -= take
        if len(self._body) > self._limit:
            self._body = self._body[: self._limit]
            return False, self._done(truncated=True, reuse=False)
        if self._chunk_left:
            return False, None
        self._state = _CHUNK_END
        return True, None

    def _chunk_end(self) -> tuple[bool, Response | None]:
        if len(self._buf) < 2:
            return False, None
        if self._buf[:2] != b"\r\n":
            msg = "chunk data not followed by CRLF"
            raise ProtocolError(msg)
        del self._buf[:2]
        self._state = _CHUNK_SIZE
        return True, None

    def _trailer(self) -> tuple[bool, Response | None]:
        buf = self._buf
        end = buf.find(b"\r\n")
        if end < 0:
            if len(buf) > HEAD_LIMIT:
                msg = "chunked trailers too large"
                raise ProtocolError(msg)
            return False, None
        del buf[: end + 2]
        if end:
            return True, None  # a trailer field: skipped
        if buf:
            self._keep_alive = False
        return False, self._done(truncated=False)

    def _close_body(self) -> Response | None:
        if len(self._buf) > self._limit:
            self._body = self._buf[: self._limit]
            return self._done(truncated=True, reuse=False)
        return None

    def _at_eof(self) -> Response | None:
        if self._state == _UNTIL_CLOSE:
            self._body = self._buf
            return self._done(truncated=False, reuse=False)
        if self.received == 0:
            msg = "server closed the connection without answering"
            raise ProtocolError(msg)
        where = "in the response head" if self._state == _HEAD else "in the body"
        msg = f"server closed the connection {where} (incomplete response)"
        raise ProtocolError(msg)

    def _done(self, *, truncated: bool, reuse: bool = True) -> Response:
        body = bytes(self._body)
        if self._encoding in ("gzip", "deflate", "x-gzip") and body:
            body, more = _decompress(body, self._encoding, self._limit)
            truncated = truncated or more
        self._state = _DONE
        keep_alive = reuse and self._keep_alive and not truncated
        return Response(self._status, self._reason, body, truncated, keep_alive)


def _headers(fields: bytes, keep_alive: bool) -> tuple[int | None, bool, bool, str]:
    """(Content-Length, chunked, keep-alive, Content-Encoding) from the header lines."""
    length: int | None = None
    chunked = False
    encoding = ""
    if not fields:
        return length, chunked, keep_alive, encoding
    for raw in fields.split(b"\r\n"):
        name, sep, value = raw.partition(b":")
        if not sep or not name or name[-1:] in (b" ", b"\t"):
            msg = f"malformed header line {raw[:40]!r}"
            raise ProtocolError(msg)
        name = name.lower()
        if name == b"content-length":
            length = _content_length(value, length)
        elif name == b"transfer-encoding":
            chunked = value.strip().lower().endswith(b"chunked")
        elif name == b"connection":
            tokens = value.lower()
            if b"close" in tokens:
                keep_alive = False
            elif b"keep-alive" in tokens:
                keep_alive = True
        elif name == b"content-encoding":
            encoding = value.strip().lower().decode("latin-1")
    return length, chunked, keep_alive, encoding


def _status_line(line: bytes) -> tuple[bytes, int, str]:
    version, _, rest = line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    if (
        version not in (b"HTTP/1.1", b"HTTP/1.0")
        or len(code) != 3
        or not code.isdigit()
        or code[:1] == b"0"
    ):
        raise ProtocolError(_bad_status(line))
    return version, int(code), reason.decode("latin-1").strip()


def _bad_status(line: bytes) -> str:
    return f"malformed status line {line[:40]!r}"


def _content_length(value: bytes, previous: int | None) -> int:
    text = value.strip()
    if not text.isdigit() or len(text) > 18:
        msg = f"bad Content-Length {text[:20]!r}"
        raise ProtocolError(msg)
    length = int(text)
    if previous is not None and previous != length:
        msg = "conflicting Content-Length headers"
        raise ProtocolError(msg)
    return length


def _decompress(body: bytes, encoding: str, limit: int) -> tuple[bytes, bool]:
    wbits = 47 if encoding != "deflate" else zlib.MAX_WBITS  # 47: gzip or zlib header
    try:
        inflater = zlib.decompressobj(wbits)
        plain = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        if encoding == "deflate":  # some servers send raw deflate
            try:
                plain = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body, limit + 1)
            except zlib.error:
                msg = f"cannot decode {encoding} body: {exc}"
                raise ProtocolError(msg) from None
        else:
            msg = f"cannot decode {encoding} body: {exc}"
            raise ProtocolError(msg) from None
    return plain[:limit], len(plain) > limit
