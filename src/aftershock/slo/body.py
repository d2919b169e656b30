"""Body checks of a tolerance: a regex, or a JSONPath with an optional expected value.

The JSONPath subset is the one the model accepts (``$.a.b``, ``$.items[0]``,
``$['key']``). ``probes/`` has its own evaluator for probe-level checks, but the
policy layer may not import an adapter, so this module keeps the same rules:
typed equality (JSON ``true`` is not ``1``), and a string ``equals`` that is
compared as the JSON it spells when the found value is not a string.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from aftershock.model.probes import BodyMatch

__all__ = ["body_matches", "describe_match"]

_STEP: Final = re.compile(r"\.([A-Za-z_][A-Za-z0-9_\-]*)|\[(\d+)\]|\['([^']*)'\]")
_MISSING: Final = object()


def _steps(path: str) -> list[str | int] | None:
    if not path.startswith("$"):
        return None
    steps: list[str | int] = []
    pos = 1
    while pos < len(path):
        match = _STEP.match(path, pos)
        if match is None:
            return None
        name, index, quoted = match.groups()
        steps.append(int(index) if index is not None else name if name is not None else quoted)
        pos = match.end()
    return steps


def _find(document: Any, path: str) -> Any:
    steps = _steps(path)
    if steps is None:
        return _MISSING
    current = document
    for step in steps:
        if isinstance(step, int):
            if not isinstance(current, list) or step >= len(current):
                return _MISSING
        elif not isinstance(current, dict) or step not in current:
            return _MISSING
        current = current[step]
    return current


def _strict_equal(found: Any, expected: Any) -> bool:
    # Python's == says True == 1; JSON does not, and neither does a health check.
    if isinstance(found, bool) or isinstance(expected, bool):
        return isinstance(found, bool) and isinstance(expected, bool) and found is expected
    if isinstance(found, int | float) and isinstance(expected, int | float):
        return not (math.isnan(found) or math.isnan(expected)) and found == expected
    return type(found) is type(expected) and bool(found == expected)


def _json_equals(found: Any, expected: str | int | float | bool | None) -> bool:
    if isinstance(expected, str) and not isinstance(found, str):
        try:
            expected = json.loads(expected)
        except ValueError:
            return False
    if isinstance(found, list | dict):
        return json.dumps(found, sort_keys=True) == json.dumps(expected, sort_keys=True)
    return _strict_equal(found, expected)


def body_matches(match: BodyMatch, body: str | None) -> bool:
    """Whether ``body`` passes ``match``; a missing body never does."""
    if body is None:
        return False
    if match.regex is not None:
        return re.search(match.regex, body) is not None
    assert match.json_path is not None  # the model requires exactly one of the two
    try:
        document = json.loads(body)
    except ValueError:
        return False
    found = _find(document, match.json_path)
    if found is _MISSING:
        return False
    return match.equals is None or _json_equals(found, match.equals)


def describe_match(match: BodyMatch) -> str:
    """``regex 'ok'`` or ``$.status == "up"``, for failure messages."""
    if match.regex is not None:
        return f"regex '{match.regex}'"
    if match.equals is None:
        return f"{match.json_path} present"
    return f"{match.json_path} == {json.dumps(match.equals)}"
