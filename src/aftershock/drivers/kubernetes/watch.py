"""Waiting on the API server: list once, then watch from there, resuming and relisting.

``watch_until`` keeps a cache of the objects a list call returns (by name) and
updates it from watch events until a predicate on the cache holds:

* it lists, remembers the list's ``resourceVersion`` and watches from it;
* each watch is a short window (``timeoutSeconds``), so a cancelled wait ends
  soon and a silently dead connection is noticed; when a window ends, or the
  connection drops mid-stream, the next watch *resumes* from the last
  ``resourceVersion`` seen (events or bookmarks): nothing is missed, nothing relisted;
* a ``410 Gone`` (the server no longer has that version: an ``ERROR`` event or
  the response status) forces a *relist*, which replaces the cache.

Runs in a worker thread (synchronous SDK); the caller translates errors.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import urllib3
from kubernetes.client.exceptions import ApiException

__all__ = ["NotReached", "Predicate", "WaitCancelled", "WatchStats", "json_of", "watch_until"]

GONE: Final = 410
CONNECT_TIMEOUT: Final = 5.0
READ_SLACK: Final = 10.0
"""Seconds a watch read may stay silent beyond the server-side window."""
CONNECT_ATTEMPTS: Final = 3
"""Consecutive failed (re)connections before the server counts as unreachable."""

Objects = dict[str, dict[str, Any]]
Predicate = Callable[[Mapping[str, dict[str, Any]]], bool]
"""What a wait waits for: a test of the objects (by name) the watch keeps current."""


class NotReached(Exception):
    """The predicate did not hold within the timeout."""


class WaitCancelled(Exception):
    """The waiting coroutine was cancelled; the worker thread stops early."""


@dataclass(slots=True)
class WatchStats:
    """What a wait did, for logs and tests."""

    lists: int = 0
    watches: int = 0
    resumes: int = 0
    """Watches reopened from the last resourceVersion after a window ended or a drop."""
    relists: int = 0
    """Lists forced by 410 Gone."""
    events: int = 0


def json_of(response: Any) -> dict[str, Any]:
    """The JSON body of a raw (``_preload_content=False``) response, connection released."""
    try:
        data = json.loads(response.data or b"{}")
    finally:
        response.release_conn()
    return data if isinstance(data, dict) else {}


def _lines(response: Any) -> Iterator[bytes]:
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        yield from (line for line in complete if line.strip())
    if buffer.strip():
        yield buffer


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _rv(obj: Mapping[str, Any]) -> str | None:
    value = (obj.get("metadata") or {}).get("resourceVersion")
    return str(value) if value else None


def watch_until(
    list_call: Callable[..., Any],
    predicate: Predicate,
    *,
    timeout: float,
    label_selector: str | None = None,
    field_selector: str | None = None,
    stop: threading.Event | None = None,
    window: int = 5,
    stats: WatchStats | None = None,
) -> Objects:
    """Until ``predicate(objects)`` holds; return the objects (by name) it held on.

    ``list_call`` is a generated ``list_*`` method (bound to its namespace with
    ``functools.partial`` where needed). Raises ``NotReached`` after
    ``timeout`` seconds, ``WaitCancelled`` when ``stop`` is set, ``ApiException``
    for a refusal other than 410, and the connection error when the server
    cannot be reached ``CONNECT_ATTEMPTS`` times in a row.
    """
    selectors: dict[str, Any] = {}
    if label_selector:
        selectors["label_selector"] = label_selector
    if field_selector:
        selectors["field_selector"] = field_selector
    cache = _Cache(list_call, selectors, predicate, stop, stats or WatchStats())
    deadline = time.monotonic() + timeout
    failures = 0
    while True:
        if stop is not None and stop.is_set():
            raise WaitCancelled
        remaining = deadline - time.monotonic()
        if cache.version is not None and remaining <= 0:
            msg = f"not reached within {timeout:.0f}s"
            raise NotReached(msg)
        try:
            if cache.version is None:
                done = cache.relist()
            else:
                done = cache.watch(max(1, min(window, int(remaining) + 1)))
            failures = 0
        except ApiException as exc:
            if exc.status != GONE:
                raise
            cache.version = None  # too old for the server: start over from a fresh list
            cache.stats.relists += 1
            continue
        except (urllib3.exceptions.HTTPError, OSError):
            failures += 1
            if failures >= CONNECT_ATTEMPTS or time.monotonic() >= deadline:
                raise
            time.sleep(0.5)
            continue
        if done:
            return cache.objects


class _Cache:
    """The objects of one list, kept current by watch events."""

    def __init__(
        self,
        list_call: Callable[..., Any],
        selectors: Mapping[str, Any],
        predicate: Predicate,
        stop: threading.Event | None,
        stats: WatchStats,
    ) -> None:
        self.list_call = list_call
        self.selectors = dict(selectors)
        self.predicate = predicate
        self.stop = stop
        self.stats = stats
        self.objects: Objects = {}
        self.version: str | None = None

    def relist(self) -> bool:
        listing = json_of(
            self.list_call(
                **self.selectors, _preload_content=False, _request_timeout=(CONNECT_TIMEOUT, 30.0)
            )
        )
        self.stats.lists += 1
        self.objects = {_name(o): o for o in listing.get("items") or []}
        self.version = str((listing.get("metadata") or {}).get("resourceVersion") or "0")
        return self.predicate(self.objects)

    def watch(self, seconds: int) -> bool:
        """One watch window from ``version``; a drop ends it early, like the window's end."""
        response = self.list_call(
            **self.selectors,
            watch=True,
            resource_version=self.version,
            timeout_seconds=seconds,
            allow_watch_bookmarks=True,
            _preload_content=False,
            _request_timeout=(CONNECT_TIMEOUT, seconds + READ_SLACK),
        )
        self.stats.watches += 1
        started = time.monotonic()
        try:
            for line in _lines(response):
                if self._apply(line):
                    return True
                if self.stop is not None and self.stop.is_set():
                    break
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError, OSError):
            pass  # dropped mid-stream: the next window resumes from ``version``
        finally:
            response.close()
            response.release_conn()
        self.stats.resumes += 1
        if time.monotonic() - started < 1:
            time.sleep(0.2)  # the server ended the window at once: do not hammer it
        return self.predicate(self.objects)

    def _apply(self, line: bytes) -> bool:
        try:
            event = json.loads(line)
        except ValueError:
            return False  # a line torn by a dropped connection: the resume re-delivers it
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            raise ApiException(status=obj.get("code") or 500, reason=obj.get("message"))
        self.version = _rv(obj) or self.version
        self.stats.events += 1
        if kind == "DELETED":
            self.objects.pop(_name(obj), None)
        elif kind in {"ADDED", "MODIFIED"}:
            self.objects[_name(obj)] = obj
        return self.predicate(self.objects)
