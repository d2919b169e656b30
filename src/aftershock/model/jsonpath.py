"""A small JSONPath evaluator: the subset the model accepts, and typed equality.

Supported steps after the root ``$``: ``.name``, ``[N]`` (a list index) and
``['key']`` (any key, including ones with dots or spaces). Filters, wildcards and
slices are deliberately out: a health check points at one value.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

__all__ = ["JsonPathError", "PathNotFound", "describe", "find", "json_equals", "parse"]

_STEP: Final = re.compile(r"\.([A-Za-z_][A-Za-z0-9_\-]*)|\[([0-9]+)\]|\['([^']*)'\]", re.ASCII)

Step = str | int
"""A key (``str``) or a list index (``int``)."""


class JsonPathError(ValueError):
    """The path is not in the supported subset."""


class PathNotFound(LookupError):
    """The document has no value at the path; the message says where it stopped."""


def parse(path: str) -> tuple[Step, ...]:
    """Split ``$.items[0]['a b']`` into ``("items", 0, "a b")``."""
    if not path.startswith("$"):
        msg = f"JSONPath {path!r} must start with $"
        raise JsonPathError(msg)
    steps: list[Step] = []
    pos = 1
    while pos < len(path):
        match = _STEP.match(path, pos)
        if match is None:
            msg = (
                f"unsupported JSONPath {path!r} at offset {pos}; use $.a.b, $.items[0] or $['key']"
            )
            raise JsonPathError(msg)
        name, index, quoted = match.groups()
        steps.append(int(index) if index is not None else name if name is not None else quoted)
        pos = match.end()
    return tuple(steps)


def _render(steps: tuple[Step, ...]) -> str:
    out = "$"
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", step, re.ASCII):
            out += f".{step}"
        else:
            out += f"['{step}']"
    return out


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def find(document: Any, path: str | tuple[Step, ...]) -> Any:
    """The value at ``path`` in a decoded JSON ``document``; ``PathNotFound`` if absent."""
    steps = parse(path) if isinstance(path, str) else path
    current = document
    for depth, step in enumerate(steps):
        here = _render(steps[:depth])
        if isinstance(step, int):
            if not isinstance(current, list):
                msg = f"{here} is {_kind(current)}, not an array"
                raise PathNotFound(msg)
            if step >= len(current):
                msg = f"{here} has {len(current)} item(s), no index {step}"
                raise PathNotFound(msg)
            current = current[step]
        else:
            if not isinstance(current, dict):
                msg = f"{here} is {_kind(current)}, not an object"
                raise PathNotFound(msg)
            if step not in current:
                msg = f"{here} has no key {step!r}"
                raise PathNotFound(msg)
            current = current[step]
    return current


def _strict_equal(found: Any, expected: Any) -> bool:
    # JSON true is not 1 and "1" is not 1: Python's == would say True == 1.
    if isinstance(found, bool) or isinstance(expected, bool):
        return isinstance(found, bool) and isinstance(expected, bool) and found is expected
    if isinstance(found, int | float) and isinstance(expected, int | float):
        return not (math.isnan(found) or math.isnan(expected)) and found == expected
    if isinstance(found, list) and isinstance(expected, list):
        return len(found) == len(expected) and all(map(_strict_equal, found, expected))
    if isinstance(found, dict) and isinstance(expected, dict):
        return found.keys() == expected.keys() and all(
            _strict_equal(found[k], expected[k]) for k in found
        )
    return type(found) is type(expected) and bool(found == expected)


def json_equals(found: Any, expected: str | int | float | bool | None) -> bool:
    """Whether a decoded JSON value equals the ``equals`` of a body check.

    A string ``equals`` matches a JSON string as is; against any other JSON value
    it is decoded as JSON first, so ``equals: "null"``, ``"true"`` or ``"[1, 2]"``
    (quoted in YAML) still compare as the JSON values they spell. Numbers compare
    by value (``1 == 1.0``); booleans only equal booleans.
    """
    if isinstance(expected, str) and not isinstance(found, str):
        try:
            expected = json.loads(expected)
        except ValueError:
            return False
    return _strict_equal(found, expected)


def describe(value: Any, limit: int = 80) -> str:
    """A short JSON rendering of ``value`` for a failure detail."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
