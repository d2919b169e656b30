"""Chaos Toolkit tolerances as aftershock checks (``expect:``) and probe settings.

What a probe's value is in Chaos Toolkit decides what its tolerance means. An
``http`` value is ``{status, headers, body}``: a number or a list of numbers is
the status; ``regex`` and ``jsonpath`` look at the body (``target: body``, or a
``$.body...`` path); a ``range`` with ``target: status`` is a set of statuses.
A ``process`` value is ``{status, stdout, stderr}``: a number is the exit code,
a ``regex`` with ``target: stdout`` the output. ``os.path.exists`` returns a
boolean. A check is built so that every sample must meet it, as the one value
had to in Chaos Toolkit; ``Untranslatable`` says why one cannot be.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from aftershock.importing.context import Context
from aftershock.importing.yamlout import Flow

__all__ = ["Untranslatable", "exists_tolerance", "http_tolerance", "process_tolerance"]

Where = tuple[str | int, ...]
Expect = dict[str, Any]
_EVERY_SAMPLE: Final = ">= 1"
_PATH_STEP: Final = re.compile(
    r"\.([A-Za-z_][A-Za-z0-9_\-]*)|\[([0-9]+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]", re.ASCII
)


class Untranslatable(Exception):
    """The tolerance has no aftershock check; the message says why."""


def _literal(text: str) -> str:
    # A value compared as written: aftershock must not read a "${" in it as a reference.
    return text.replace("${", "$${")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _target(value: dict[str, Any]) -> str | None:
    target = value.get("target")
    return str(target) if target is not None else None


def _statuses(value: object) -> list[int]:
    codes = value if isinstance(value, list) else [value]
    if not codes or not all(isinstance(c, int) and _is_int(c) and 100 <= c <= 599 for c in codes):
        msg = f"{value!r} is not an HTTP status (100..599) nor a list of them"
        raise Untranslatable(msg)
    return sorted(set(codes))


def _with_status(http: dict[str, Any], codes: list[int]) -> Expect:
    # The probe's own success means the same statuses, so its SLO samples agree with the check.
    http["status"] = Flow(codes)
    return {"status": Flow(codes)}


def _pattern(ctx: Context, value: dict[str, Any], where: Where) -> str:
    pattern = value.get("pattern")
    if not isinstance(pattern, str):
        raise Untranslatable("a regex tolerance needs a pattern")
    text = ctx.text(pattern, (*where, "pattern"))
    assert text is not None
    return text


def _http_regex(ctx: Context, value: dict[str, Any], http: dict[str, Any], where: Where) -> Expect:
    if _target(value) != "body":
        raise Untranslatable("a regex on an HTTP value needs target: body")
    return {"body": {"regex": _pattern(ctx, value, where)}}


def _simple_path(path: str) -> str:
    if not path.startswith("$"):
        raise Untranslatable(f"JSONPath {path!r} does not start with $")
    out, pos = "$", 1
    while pos < len(path):
        match = _PATH_STEP.match(path, pos)
        if match is None:
            raise Untranslatable(f"JSONPath {path!r} uses more than $.a.b, [N] and ['key']")
        name, index, single, double = match.groups()
        key = single if single is not None else double
        if name is not None:
            out += f".{name}"
        elif index is not None:
            out += f"[{index}]"
        elif "'" in key:
            raise Untranslatable(f"JSONPath {path!r} has a key with a quote")
        else:
            out += f"['{key}']"
        pos = match.end()
    return out


def _body_path(value: dict[str, Any]) -> str:
    path = value.get("path")
    if not isinstance(path, str):
        raise Untranslatable("a jsonpath tolerance needs a path")
    path = path.strip()
    target = _target(value)
    if target is None and path.startswith(("$.body.", "$.body[")):
        return "$" + path[len("$.body") :]
    if target != "body":
        raise Untranslatable("a jsonpath on an HTTP value needs target: body (or a $.body path)")
    return path


def _expected(value: dict[str, Any]) -> object:
    expect = value["expect"]
    if isinstance(expect, list):
        if len(expect) != 1:
            raise Untranslatable("an expect list of several values is not translated")
        expect = expect[0]
    if expect is None or not isinstance(expect, str | int | float | bool):
        raise Untranslatable("expect must be one string, number or boolean")
    return expect


def _http_jsonpath(
    ctx: Context, value: dict[str, Any], http: dict[str, Any], where: Where
) -> Expect:
    body: dict[str, Any] = {"jsonPath": _literal(_simple_path(_body_path(value)))}
    if "count" in value and not (value["count"] == 1 and "expect" not in value):
        # A path of plain steps finds at most one value: count 1 means "exists".
        raise Untranslatable("count is not translated (aftershock checks one value at a path)")
    if "expect" in value:
        expected = _expected(value)
        body["equals"] = _literal(expected) if isinstance(expected, str) else expected
    return {"body": body}


def _range(value: dict[str, Any]) -> tuple[int, int]:
    bounds = value.get("range")
    if _target(value) != "status":
        raise Untranslatable("a range is translated only with target: status")
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(_is_int(b) for b in bounds)):
        raise Untranslatable("the range must be two whole numbers")
    return int(bounds[0]), int(bounds[1])


def _http_range(ctx: Context, value: dict[str, Any], http: dict[str, Any], where: Where) -> Expect:
    low, high = _range(value)
    codes = list(range(max(low, 100), min(high, 599) + 1))
    if not codes:
        raise Untranslatable("the status range holds no HTTP status (100..599)")
    return _with_status(http, codes)


_HTTP: Final[dict[str, Callable[[Context, dict[str, Any], dict[str, Any], Where], Expect]]] = {
    "regex": _http_regex,
    "jsonpath": _http_jsonpath,
    "range": _http_range,
}


def http_tolerance(ctx: Context, value: object, http: dict[str, Any], where: Where) -> Expect:
    """The check of an http probe's tolerance (``http`` is its probe, completed here)."""
    if isinstance(value, dict):
        handler = _HTTP.get(str(value.get("type")))
        if handler is None:
            msg = f"a {value.get('type')} tolerance on an HTTP value has no aftershock check"
            raise Untranslatable(msg)
        return handler(ctx, value, http, where)
    if isinstance(value, bool) or not isinstance(value, int | list):
        msg = f"{value!r} never equals an HTTP probe's value (a mapping with its status)"
        raise Untranslatable(msg)
    return _with_status(http, _statuses(value))


def _exit_code(command: dict[str, Any], code: object) -> Expect:
    if not _is_int(code):
        raise Untranslatable(f"{code!r} is not an exit code")
    if code != 0:
        command["exitCode"] = code
    return {"successRatio": _EVERY_SAMPLE}


def process_tolerance(ctx: Context, value: object, command: dict[str, Any], where: Where) -> Expect:
    """The check of a command probe's tolerance (``command`` is its probe, completed here)."""
    if isinstance(value, list):
        if len(value) != 1:
            raise Untranslatable("a list of exit codes is not translated (aftershock checks one)")
        return _exit_code(command, value[0])
    if not isinstance(value, dict):
        return _exit_code(command, value)
    kind = value.get("type")
    if kind == "regex":
        if _target(value) != "stdout":
            raise Untranslatable(
                "a regex on a process value is translated only with target: stdout"
            )
        command["stdout"] = _pattern(ctx, value, where)
        return {"successRatio": _EVERY_SAMPLE}
    if kind == "range":
        low, high = _range(value)
        if low != high:
            raise Untranslatable("a range of exit codes is not translated (aftershock checks one)")
        return _exit_code(command, low)
    raise Untranslatable(f"a {kind} tolerance on a process value has no aftershock check")


def exists_tolerance(value: object, command: dict[str, Any]) -> Expect:
    """The check of ``os.path.exists`` as ``test -e``: true is exit 0, false exit 1."""
    if not isinstance(value, bool):
        raise Untranslatable(f"{value!r} never equals the boolean os.path.exists returns")
    return _exit_code(command, 0 if value else 1)
