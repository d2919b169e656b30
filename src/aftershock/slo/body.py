"""Body checks of a tolerance: a regex, or a JSONPath with an optional expected value.

The JSONPath subset is the one the model accepts (``$.a.b``, ``$.items[0]``,
``$['key']``). ``probes/`` has its own evaluator for probe-level checks, but the
policy layer may not import an adapter, so this module keeps the same rules:
typed equality (JSON ``true`` is not ``1``), and a string ``equals`` that is
compared as the JSON it spells when the found value is not a string.
"""

from __future__ import annotations

import json
import re

from aftershock.model.jsonpath import JsonPathError, PathNotFound, find, json_equals
from aftershock.model.probes import BodyMatch

__all__ = ["body_matches", "describe_match"]


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
    try:
        found = find(document, match.json_path)
    except (PathNotFound, JsonPathError):
        return False
    return match.equals is None or json_equals(found, match.equals)


def describe_match(match: BodyMatch) -> str:
    """``regex 'ok'`` or ``$.status == "up"``, for failure messages."""
    if match.regex is not None:
        return f"regex '{match.regex}'"
    if match.equals is None:
        return f"{match.json_path} present"
    return f"{match.json_path} == {json.dumps(match.equals)}"
