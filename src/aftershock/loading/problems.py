"""Turn pydantic's validation errors into located, readable problems.

``make_problem`` is where every problem the loader reports is built: it escapes
whatever came from the input (keys in a field path, values in a message, file
names), so a document cannot put terminal escape sequences, other control
characters or bidirectional overrides on the reader's screen.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from aftershock.errors import Problem
from aftershock.model.secrets import Secret

__all__ = ["escape_text", "format_path", "make_problem", "translate"]

Path = tuple[str | int, ...]


_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape_char(char: str) -> str:
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape_text(text: str) -> str:
    """``text`` with every non-printable character written as an escape (``\\x1b``, ``\\u202e``).

    Non-printable, as ``str.isprintable`` says: C0 and C1 controls (ESC starts
    terminal sequences), format characters (bidi overrides, zero-width
    joiners), separators other than the space, surrogates, unassigned code points.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape_char(char) for char in text)


def make_problem(file: str, line: int, column: int, path: Path | str, message: str) -> Problem:
    """A problem whose every text field is safe to print on a terminal."""
    where = path if isinstance(path, str) else format_path(path)
    return Problem(
        file=escape_text(file),
        line=line,
        column=column,
        path=escape_text(where),
        message=escape_text(message),
    )


def format_path(path: Path) -> str:
    """``spec.method[1].with.latency``."""
    out = ""
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += f".{item}" if out else str(item)
    return out


def data_path(data: Any, loc: tuple[str | int, ...]) -> Path:
    """Keep the parts of a pydantic location that exist in the data.

    Discriminated unions insert their tag (``Experiment``, ``toxiproxy.latency``)
    into the location; it is not a key of the document, so it is dropped.
    """
    path: list[str | int] = []
    node = data
    items = list(loc)
    while items:
        item = items.pop(0)
        in_dict = isinstance(node, dict) and item in node
        in_list = isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node)
        if in_dict or in_list:
            path.append(item)
            node = node[item]
        elif isinstance(node, dict | list) and items:
            continue  # a union tag or a function name, not part of the document
        else:
            path.append(item)
            break
    return tuple(path)


_TAG_RE = re.compile(
    r"Input tag '([^']*)' found using '([^']*)' does not match any of the expected tags: (.*)"
)


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "union_tag_invalid":
        match = _TAG_RE.match(error["msg"])
        if match:
            tag, field, expected = match.groups()
            options = [t.strip().strip("'") for t in expected.split(",")]
            close = difflib.get_close_matches(tag, options, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of {expected}"
            return f"unknown {field} {tag!r}{hint}"
    if kind == "union_tag_not_found":
        return f"missing {error.get('ctx', {}).get('discriminator', 'kind')}".replace("'", "")
    if isinstance(error.get("input"), Secret) and kind.endswith("_type"):
        return "a ${secret:...} value is not allowed in this field"
    msg = error["msg"]
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def translate(exc: ValidationError, data: Any) -> list[tuple[Path, str]]:
    """Every error as (document path, message), in document order, without duplicates."""
    seen: set[tuple[Path, str]] = set()
    out: list[tuple[Path, str]] = []
    for error in exc.errors(include_url=False):
        path = data_path(data, error["loc"])
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            discriminator = str(error.get("ctx", {}).get("discriminator", "")).strip("'")
            if discriminator.isidentifier():
                path = (*path, discriminator)
        item = (path, _message(error))
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
