"""Steady-state hypothesis probes and their tolerances as aftershock probes and checks.

Chaos Toolkit runs a hypothesis probe once and compares its one value with the
tolerance. aftershock samples the probe every ``EVERY`` and checks the window
``OVER``; the translated check holds only when every sample meets it (a status
set, a body match and an exit code are checked sample by sample), which is the
one-shot tolerance applied to each sample.

``http`` and ``process`` providers become http and command probes (string
arguments are split as a shell would, and refused when they use shell syntax:
aftershock runs argv, never a shell); the python probe ``os.path.exists`` is
the command ``test -e``; other python probes have no aftershock probe. The
tolerances are in ``tolerances``.
"""

from __future__ import annotations

import re
import shlex
from datetime import timedelta
from typing import Any, Final
from urllib.parse import urlencode

from aftershock.importing.context import Activity, Context
from aftershock.importing.tolerances import (
    Untranslatable,
    exists_tolerance,
    http_tolerance,
    process_tolerance,
)
from aftershock.importing.yamlout import Flow

__all__ = ["EVERY", "OVER", "ProbeTranslation", "translate_probe"]

EVERY: Final = "1s"
_SECOND: Final = timedelta(seconds=1)
OVER: Final = "3s"
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SHELL: Final = re.compile(r"[|&;<>()$`\\*?\[\]~{}\n]")


class ProbeTranslation:
    """A probe's ``probes:`` entry and its ``steadyState:`` check (either may be missing)."""

    def __init__(self) -> None:
        self.probe: dict[str, Any] | None = None
        self.expect: dict[str, Any] | None = None
        self.reason: str | None = None
        self.notes: list[str] = []

    def fail(self, reason: str) -> ProbeTranslation:
        """Mark the probe as not translated."""
        self.reason = reason
        return self


def _timeout(ctx: Context, act: Activity) -> str | None:
    value = act.provider.get("timeout", act.data.get("timeout"))
    path = (*act.path, "provider", "timeout")
    if value is None:
        return None
    if isinstance(value, list) and len(value) == 2:
        # requests' (connect, read): the longest a request can take is their sum.
        total = [ctx.value(v, (*path, i), _seconds) for i, v in enumerate(value)]
        if None in total:
            return None
        return ctx.duration(sum(t for t in total if t is not None), path, _SECOND)
    return ctx.duration(value, path, _SECOND)


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected seconds, got {value!r}")
    number = float(value)
    if not 0 <= number <= 86400:
        raise ValueError(f"expected seconds from 0 to 86400, got {value!r}")
    return number


def _http(ctx: Context, act: Activity) -> ProbeTranslation:
    out = ProbeTranslation()
    provider = act.provider
    path = (*act.path, "provider")
    url = ctx.text(provider.get("url"), (*path, "url"))
    if url is None:
        return out.fail("the URL cannot be translated")
    if not url.startswith(("http://", "https://", "${")):
        return out.fail(f"{url!r} is not an http:// or https:// URL")
    method = str(provider.get("method", "GET")).upper()
    if method not in _METHODS:
        return out.fail(f"HTTP method {method!r} is not one aftershock sends")
    http: dict[str, Any] = {"url": url}
    if method != "GET":
        http["method"] = method
    headers = provider.get("headers")
    if isinstance(headers, dict) and headers:
        translated = {
            str(k).replace("${", "$${"): ctx.text(v, (*path, "headers", k))
            for k, v in headers.items()
        }
        http["headers"] = {k: v for k, v in translated.items() if v is not None}
    arguments = provider.get("arguments")
    if arguments:
        body = _arguments(ctx, arguments, (*path, "arguments"))
        if body is None:
            return out.fail("the request arguments cannot be translated")
        if method == "GET":
            http["url"] = url + ("&" if "?" in url else "?") + body
        else:
            http["body"] = body
            http.setdefault("headers", {})["Content-Type"] = "application/x-www-form-urlencoded"
    timeout = _timeout(ctx, act)
    if timeout is not None:
        http["timeout"] = timeout
    if provider.get("verify_tls") is False:
        ctx.warn(
            (*path, "verify_tls"), "verify_tls: false is not translated; aftershock verifies TLS"
        )
    out.probe = {"http": http, "every": EVERY}
    return out


def _arguments(ctx: Context, arguments: object, path: tuple[str | int, ...]) -> str | None:
    if isinstance(arguments, str):
        return ctx.text(arguments, path)
    if not isinstance(arguments, dict):
        return None
    if any("$" in str(v) for v in arguments.values()):
        ctx.warn(path, "request arguments with references are not translated")
        return None
    return urlencode({str(k): str(v) for k, v in arguments.items()}).replace("${", "$${")


def _split(arguments: object) -> list[Any] | str:
    """Process arguments as ``chaoslib`` passes them: a string split, a mapping flattened."""
    if isinstance(arguments, str):
        if _SHELL.search(arguments):
            return "the arguments use shell syntax; aftershock runs commands without a shell"
        try:
            return list(shlex.split(arguments))
        except ValueError as exc:
            return f"the arguments cannot be split: {exc}"
    if isinstance(arguments, dict):
        return [x for pair in arguments.items() for x in pair]
    if isinstance(arguments, list):
        return list(arguments)
    return "the arguments are neither a string, a list nor a mapping"


def _argv(ctx: Context, act: Activity) -> list[str] | str:
    """The argv of a process provider, or why it cannot be one."""
    provider = act.provider
    path = (*act.path, "provider")
    program = ctx.text(provider.get("path"), (*path, "path"))
    if not program:
        return "the program path is missing"
    items = _split(provider.get("arguments", []))
    if isinstance(items, str):
        return items
    argv = [program]
    for i, item in enumerate(x for x in items if x not in (None, "")):
        text = ctx.text(item, (*path, "arguments", i))
        if text is None:
            return "an argument cannot be translated"
        if "${secret:" in text:
            return "a secret in a command's arguments is not allowed in aftershock"
        argv.append(text)
    return argv


def _process(ctx: Context, act: Activity) -> ProbeTranslation:
    out = ProbeTranslation()
    argv = _argv(ctx, act)
    if isinstance(argv, str):
        return out.fail(argv)
    command: dict[str, Any] = {"command": Flow(argv)}
    timeout = _timeout(ctx, act)
    if timeout is not None:
        command["timeout"] = timeout
    out.probe = {"command": command, "every": EVERY}
    return out


def _exists(ctx: Context, act: Activity) -> ProbeTranslation:
    out = ProbeTranslation()
    path = act.arguments.get("path")
    text = ctx.text(path, (*act.path, "provider", "arguments", "path")) if path else None
    if text is None:
        return out.fail("os.path.exists needs a path")
    out.probe = {"command": {"command": Flow(["test", "-e", text])}, "every": EVERY}
    out.notes.append("os.path.exists(path) is the command test -e path")
    return out


def translate_probe(ctx: Context, act: Activity, *, tolerance: bool) -> ProbeTranslation:
    """The probe of ``act`` and, with ``tolerance``, its steady-state check."""
    kind = act.provider_type
    if kind == "http":
        out = _http(ctx, act)
    elif kind == "process":
        out = _process(ctx, act)
    elif kind == "python" and act.function == ("os.path", "exists"):
        out = _exists(ctx, act)
    elif kind == "python":
        module, func = act.function
        return ProbeTranslation().fail(f"the python probe {module}.{func} has no aftershock probe")
    else:
        return ProbeTranslation().fail(f"provider type {kind!r} is not translated")
    if out.reason is not None or not tolerance:
        return out
    if "tolerance" not in act.data:
        return out.fail("a hypothesis probe without a tolerance is invalid in Chaos Toolkit")
    _tolerance(ctx, act, out)
    return out


def _tolerance(ctx: Context, act: Activity, out: ProbeTranslation) -> None:
    assert out.probe is not None
    value = act.data["tolerance"]
    where = (*act.path, "tolerance")
    probe = out.probe
    try:
        if "http" in probe:
            out.expect = http_tolerance(ctx, value, probe["http"], where)
        elif act.provider_type == "process":
            out.expect = process_tolerance(ctx, value, probe["command"], where)
        else:
            out.expect = exists_tolerance(value, probe["command"])
    except Untranslatable as exc:
        ctx.warn(where, f"tolerance not translated: {exc}; the probe is sampled unchecked")
        out.expect = None
