"""The errors a Toxiproxy server answers, as one tree::

    ToxiproxyError                 status, message, body (and proxies for /populate)
     ├── ToxiproxyBadRequest       400: bad body, missing field, invalid stream/type
     ├── ToxiproxyNotFound         404: proxy or toxic not found
     ├── ToxiproxyConflict         409: proxy or toxic already exists
     └── ToxiproxyAPIError         any other 4xx/5xx (403 user agent, 500, 503 timeout)

``error_for`` builds the one an error answer calls for; ``excerpt`` quotes the
start of a body safely (one line, escaped, bounded) in any message.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

import httpx

from aftershock.drivers.toxiproxy.resources import Proxy, json_list

__all__ = [
    "EXCERPT",
    "ToxiproxyAPIError",
    "ToxiproxyBadRequest",
    "ToxiproxyConflict",
    "ToxiproxyError",
    "ToxiproxyNotFound",
    "error_for",
    "escaped",
    "excerpt",
]

EXCERPT = 200
"""Characters of a bad answer quoted in the error."""


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


def escaped(text: str, limit: int) -> str:
    """``text`` cut at ``limit`` characters, control and formatting characters escaped."""
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
    return f"'{escaped(text[:limit], limit)}'" + ("..." if more else "")


def error_for(status: int, url: str, body: Any) -> ToxiproxyError:
    """The error of an error status, from its body (JSON, or the text when it is not JSON).

    Whatever the body is, the message is one escaped line.
    """
    message = ""
    proxies: tuple[Proxy, ...] = ()
    if isinstance(body, Mapping):
        error = body.get("error")
        message = escaped(error.strip(), 500) if isinstance(error, str) else ""
        try:
            items = json_list(body.get("proxies") or [], "proxies")
            proxies = tuple(Proxy.from_json(p) for p in items)
        except ValueError:
            proxies = ()  # the status is the news; a garbled list of survivors is not
    elif isinstance(body, str):
        message = escaped(body.strip(), EXCERPT)  # not Toxiproxy's: the start is enough
    cls = _BY_STATUS.get(status, ToxiproxyAPIError)
    return cls(
        status,
        message or httpx.codes.get_reason_phrase(status) or "error",
        url=url,
        body=body,
        proxies=proxies,
    )
