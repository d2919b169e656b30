"""The fast engine's HTTP/1.1 parser and request encoder, with no I/O."""

from __future__ import annotations

import pytest

from aftershock.probes.h11request import encode_request, parse_target
from aftershock.probes.h11wire import ProtocolError, Response, ResponseParser

CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n1;x=y\r\n \r\n5\r\nworld\r\n0\r\nTrailer: t\r\n\r\n"
)
LENGTH = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown"


def feed_split(raw: bytes, size: int, **kwargs: int | bool) -> Response:
    parser = ResponseParser(limit=1024, **kwargs)  # type: ignore[arg-type]
    for i in range(0, len(raw), size):
        done = parser.feed(raw[i : i + size])
        if done is not None:
            return done
    done = parser.feed(b"")
    assert done is not None
    return done


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_any_split_of_the_bytes_gives_the_same_response(size: int) -> None:
    chunked = feed_split(CHUNKED, size)
    assert (chunked.status, chunked.body, chunked.keep_alive) == (200, b"hello world", True)
    length = feed_split(LENGTH, size)
    assert (length.status, length.reason, length.body) == (503, "Service Unavailable", b"down")


def test_head_and_no_body_statuses_read_no_body() -> None:
    parser = ResponseParser(limit=10, head_only=True)
    done = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
    assert done is not None
    assert done.body == b""
    assert done.keep_alive
    done = ResponseParser(limit=10).feed(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert done is not None
    assert done.status == 204


def test_keep_alive_rules() -> None:
    def alive(raw: bytes) -> bool:
        return feed_split(raw, 1000).keep_alive

    assert not alive(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert alive(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
    assert not alive(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert not alive(b"HTTP/1.1 200 OK\r\n\r\nbody to the end")


def test_limit_truncates_and_forbids_reuse() -> None:
    parser = ResponseParser(limit=4)
    done = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123")
    assert done is not None
    assert (done.body, done.truncated, done.keep_alive) == (b"0123", True, False)


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 099 Low\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header : x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",
    ],
)
def test_malformed_responses_raise(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        ResponseParser(limit=100).feed(raw)


def test_end_of_stream_before_an_answer_says_so() -> None:
    parser = ResponseParser(limit=100)
    with pytest.raises(ProtocolError, match="without answering"):
        parser.feed(b"")
    parser = ResponseParser(limit=100)
    parser.feed(b"HTTP/1.1 200")
    with pytest.raises(ProtocolError, match="in the response head"):
        parser.feed(b"")


def test_targets_and_request_bytes() -> None:
    target = parse_target("http://[::1]:8080/x?y=1")
    assert (target.host, target.port, target.path, target.authority) == (
        "::1",
        8080,
        "/x?y=1",
        "[::1]:8080",
    )
    assert parse_target("http://example.test").authority == "example.test"
    for bad in ("https://a/", "http:///x", "http://a:99999/", "http://a/b c"):
        with pytest.raises(ValueError):  # noqa: PT011 - each names its own problem
            parse_target(bad)
    raw = encode_request("GET", target, {"Accept": "text/plain"}, None, user_agent="t")
    assert raw == (
        b"GET /x?y=1 HTTP/1.1\r\nHost: [::1]:8080\r\nUser-Agent: t\r\nAccept: text/plain\r\n\r\n"
    )
