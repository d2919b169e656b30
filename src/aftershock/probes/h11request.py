"""HTTP/1.1 on the wire for the fast probe engine: where a URL points and the request bytes.

No I/O here: ``parse_target`` splits a plain ``http://`` URL (refusing what
the fast engine does not speak) and ``encode_request`` builds the bytes of one
keep-alive request; ``probes/h11wire.py`` parses the answer.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["Target", "encode_request", "parse_target"]


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL points and what its request line and Host header carry."""

    host: str
    port: int
    path: str
    authority: str
    authorization: str | None
    """``Basic ...`` from user info in the URL, as other HTTP clients send it."""


def parse_target(url: str) -> Target:
    """Split an ``http://`` URL; ``ValueError`` names what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "http":
        msg = f"unsupported scheme {parts.scheme!r} (the fast engine speaks plain http)"
        raise ValueError(msg)
    host = parts.hostname
    if not host:
        msg = "no host in URL"
        raise ValueError(msg)
    port = parts.port or 80  # .port raises ValueError for a port out of range
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if any(c in path for c in " \r\n") or any(c in host for c in " \r\n/"):
        msg = "URL contains whitespace or control characters"
        raise ValueError(msg)
    shown = f"[{host}]" if ":" in host else host
    authority = shown if port == 80 else f"{shown}:{port}"
    authorization = None
    if parts.username is not None or parts.password is not None:
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return Target(host, port, path, authority, authorization)


def encode_request(
    method: str,
    target: Target,
    headers: dict[str, str],
    body: bytes | None,
    *,
    user_agent: str,
) -> bytes:
    """The bytes of one keep-alive request; header names and values must not break lines."""
    given = {name.lower() for name in headers}
    lines = [f"{method} {target.path} HTTP/1.1"]
    if "host" not in given:
        lines.append(f"Host: {target.authority}")
    if "user-agent" not in given:
        lines.append(f"User-Agent: {user_agent}")
    if "accept" not in given:
        lines.append("Accept: */*")
    if target.authorization is not None and "authorization" not in given:
        lines.append(f"Authorization: {target.authorization}")
    for name, value in headers.items():
        if any(c in name or c in value for c in "\r\n") or not name:
            msg = f"header {name!r} contains a line break or is empty"
            raise ValueError(msg)
        lines.append(f"{name}: {value}")
    if body is not None and "content-length" not in given:
        lines.append(f"Content-Length: {len(body)}")
    elif body is None and method in ("POST", "PUT", "PATCH") and "content-length" not in given:
        lines.append("Content-Length: 0")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head
