"""A small YAML writer for imported documents: block style, comments where they belong.

``dump_yaml`` (PyYAML) cannot place comments, and an imported document is read
by people who need to see what came from where. This writer covers what the
importer produces and nothing more: mappings, sequences, strings, numbers,
booleans and null, with ``Comment`` entries between items, a ``Noted`` value
that carries a comment on its own line, and ``Flow`` for short inline lists and
mappings. Output is a pure function of the input, so an import is reproducible.

Strings are written plain only when they cannot be read back as anything else
(no YAML 1.1 booleans, nulls or numbers, no indicator characters); everything
else is double-quoted, with every character YAML would not take as it is
escaped. Comment text is escaped the way the loader escapes problem messages,
so no input can end a comment line early or put control characters in the file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from aftershock.loading.problems import escape_text

__all__ = ["Comment", "Flow", "Noted", "comment_lines", "dump", "scalar"]

INDENT: Final = 2


@dataclass(frozen=True, eq=False)
class Comment:
    """Comment lines between the entries of a mapping (as a key) or a sequence (as an item).

    Compared by identity, so two equal comments can be keys of one mapping.
    """

    lines: tuple[str, ...]


@dataclass(frozen=True)
class Flow:
    """A short list or mapping written inline: ``[a, b]``, ``{a: 1}``."""

    value: Sequence[object] | Mapping[str, object]


@dataclass(frozen=True)
class Noted:
    """A value with comment lines written just before it (before its key or its ``-``)."""

    value: object
    lines: tuple[str, ...]


_PLAIN: Final = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@-]*", re.ASCII)
_PLAIN_DURATION: Final = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d|w))+", re.ASCII)
_RESERVED: Final = frozenset(
    {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "nan", "inf"}
)
_ESCAPES: Final = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def _escape_char(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    # YAML reads C0/C1 controls, DEL, line separators, BOM and non-characters only escaped.
    if code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF):
        return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
    if 0xD800 <= code <= 0xDFFF:
        return "\ufffd"  # a lone surrogate is not a character; the reader refuses its escape
    return char


def _quoted(text: str) -> str:
    return '"' + "".join(_escape_char(c) for c in text) + '"'


def _string(text: str) -> str:
    if text.lower() not in _RESERVED and (
        _PLAIN.fullmatch(text) or _PLAIN_DURATION.fullmatch(text)
    ):
        return text
    return _quoted(text)


def scalar(value: object) -> str:
    """One scalar as YAML text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    return _string(str(value))


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    # YAML 1.1 reads a float only with a dot in it: 5e-324 would be a string.
    return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text


def comment_lines(lines: Sequence[str], indent: int) -> list[str]:
    """``lines`` as comment lines at ``indent``, each escaped to stay one line."""
    pad = " " * indent
    return [f"{pad}# {escape_text(line)}".rstrip() for line in lines]


def _inline(value: object) -> str:
    if isinstance(value, Flow):
        value = value.value
    if isinstance(value, Mapping):
        parts = [
            f"{scalar(k)}: {_inline(v)}" for k, v in value.items() if not isinstance(k, Comment)
        ]
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_inline(v) for v in value if not isinstance(v, Comment)) + "]"
    return scalar(value)


def _is_block(value: object) -> bool:
    """A list or mapping with at least one entry that is not a comment."""
    return isinstance(value, Mapping | list | tuple) and any(
        not isinstance(item, Comment) for item in value
    )


def _only_comments(value: object) -> list[Comment]:
    if isinstance(value, Mapping | list | tuple) and not _is_block(value):
        return [item for item in value if isinstance(item, Comment)]
    return []


def _unwrap(value: object) -> tuple[object, tuple[str, ...]]:
    if isinstance(value, Noted):
        return value.value, value.lines
    return value, ()


def _mapping(value: Mapping[object, object], indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    for key, raw in value.items():
        if isinstance(key, Comment):
            out.extend(comment_lines(key.lines, indent))
            continue
        item, notes = _unwrap(raw)
        out.extend(comment_lines(notes, indent))
        if _is_block(item):
            out.append(f"{pad}{scalar(key)}:")
            out.extend(_block(item, indent + INDENT))
        else:
            out.append(f"{pad}{scalar(key)}: {_inline(item)}")
            for comment in _only_comments(item):
                out.extend(comment_lines(comment.lines, indent + INDENT))
    return out


def _sequence(value: Sequence[object], indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    for raw in value:
        if isinstance(raw, Comment):
            out.extend(comment_lines(raw.lines, indent))
            continue
        item, notes = _unwrap(raw)
        out.extend(comment_lines(notes, indent))
        if not _is_block(item):
            out.append(f"{pad}- {_inline(item)}")
            for comment in _only_comments(item):
                out.extend(comment_lines(comment.lines, indent + INDENT))
            continue
        inner = _block(item, indent + INDENT)
        first = inner[0]
        if first.lstrip().startswith("#"):
            out.append(f"{pad}-")
            out.extend(inner)
        else:
            out.append(f"{pad}- {first[indent + INDENT :]}")
            out.extend(inner[1:])
    return out


def _block(value: object, indent: int) -> list[str]:
    if isinstance(value, Mapping):
        return _mapping(value, indent)
    assert isinstance(value, list | tuple)
    return _sequence(value, indent)


def dump(value: object, indent: int = 0) -> str:
    """``value`` as YAML text ending in a newline."""
    if not _is_block(value):
        return _inline(value) + "\n"
    return "\n".join(_block(value, indent)) + "\n"
