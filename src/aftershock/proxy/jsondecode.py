"""Reading one JSON value from a request body the way Go's ``json.Decoder`` does.

Toxiproxy decodes every body with ``json.NewDecoder(body).Decode(&v)``, so the
embedded server follows that decoder rather than Python's ``json`` module:

- only the first value is read; bytes after it are ignored;
- a body of nothing but whitespace is "EOF", one that stops inside a value
  "unexpected EOF", and any other syntax error names the offending byte and
  what the scanner was looking for ("invalid character 'x' after object key");
- nesting deeper than 10,000 arrays or objects is refused ("exceeded max
  depth"); anything shallower is read without recursion;
- numbers are kept as written, so a number of any length or exponent is
  read, and only the field that needs it converts it (with Go's range checks);
- in strings, invalid UTF-8 bytes and unpaired surrogate escapes (``\\ud83d``)
  become U+FFFD, one per byte or escape, so every decoded string is valid
  Unicode and can always be written back out.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

__all__ = ["MAX_DEPTH", "GoObject", "JsonNumber", "JsonSyntaxError", "decode_value"]

MAX_DEPTH = 10_000  # Go's maxNestingDepth

_SPACE = re.compile(rb"[ \t\r\n]*")
# A string up to its closing quote or its first mistake; never backtracks.
_STRING = re.compile(rb'"(?:[^"\\\x00-\x1f]+|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*')
_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "/": "/"}
_SURROGATE = re.compile("[\ud800-\udfff]")
_LITERALS = {ord("t"): (b"true", True), ord("f"): (b"false", False), ord("n"): (b"null", None)}
_QUOTE, _BACKSLASH, _COLON, _COMMA, _DOT = 0x22, 0x5C, 0x3A, 0x2C, 0x2E
_OPEN_OBJECT, _CLOSE_OBJECT, _OPEN_ARRAY, _CLOSE_ARRAY = 0x7B, 0x7D, 0x5B, 0x5D
_SPACES = frozenset(b" \t\r\n")
_NUMBER_START = frozenset(b"-0123456789")
_EXPONENT = frozenset(b"eE")
_UNEXPECTED_EOF = "unexpected EOF"


class JsonSyntaxError(ValueError):
    """The body is not one JSON value; ``str()`` is Go's message for it."""


class JsonNumber:
    """A JSON number kept as written, as Go's ``json.Number``: the field it goes to converts it."""

    __slots__ = ("literal",)

    def __init__(self, literal: str) -> None:
        self.literal = literal

    def __float__(self) -> float:
        return float(self.literal)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonNumber) and other.literal == self.literal

    def __hash__(self) -> int:
        return hash(self.literal)

    def __repr__(self) -> str:
        return f"JsonNumber({self.literal!r})"


class GoObject(list[tuple[str, Any]]):
    """A decoded JSON object: its members in order, duplicates kept (the last one wins in Go)."""

    def lookup(self, key: str) -> tuple[bool, Any]:
        """The last member named ``key`` ignoring case, as Go's decoder matches fields."""
        found: tuple[bool, Any] = (False, None)
        folded = key.casefold()
        for name, value in self:
            if name.casefold() == folded:
                found = (True, value)
        return found


def _quote_char(byte: int) -> str:
    """A byte as Go's scanner quotes it in messages (``quoteChar``, via ``strconv.Quote``)."""
    if byte == 0x27:
        return "'\\''"
    if byte == 0x22:
        return "'\"'"
    named = {0x07: "\\a", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
    named |= {0x0B: "\\v", 0x5C: "\\\\"}
    char = chr(byte)  # Go converts the byte to the rune of the same number
    if byte in named:
        text = named[byte]
    elif char.isprintable():
        text = char
    elif byte < 0x20 or byte == 0x7F:
        text = f"\\x{byte:02x}"
    else:
        text = f"\\u{byte:04x}"
    return f"'{text}'"


def _invalid(byte: int, context: str) -> JsonSyntaxError:
    return JsonSyntaxError(f"invalid character {_quote_char(byte)} {context}")


def _skip_space(data: bytes, pos: int) -> int:
    """The position of the next non-space byte; unexpected EOF if there is none."""
    if pos < len(data) and data[pos] not in _SPACES:
        return pos
    pos = _SPACE.match(data, pos).end()  # type: ignore[union-attr]  # matches ""
    if pos >= len(data):
        raise JsonSyntaxError(_UNEXPECTED_EOF)
    return pos


def _string(data: bytes, pos: int) -> tuple[str, int]:
    """The string whose opening quote is at ``pos``, unquoted as Go's ``unquote``."""
    end = _STRING.match(data, pos).end()  # type: ignore[union-attr]  # pos is at a quote
    if end < len(data) and data[end] == _QUOTE:
        return _unquote(data[pos + 1 : end]), end + 1
    raise _string_error(data, end)


def _string_error(data: bytes, at: int) -> JsonSyntaxError:
    if at >= len(data):
        return JsonSyntaxError(_UNEXPECTED_EOF)
    if data[at] != _BACKSLASH:  # a control character
        return _invalid(data[at], "in string literal")
    if at + 1 >= len(data):
        return JsonSyntaxError(_UNEXPECTED_EOF)
    if data[at + 1] != ord("u"):
        return _invalid(data[at + 1], "in string escape code")
    for index in range(at + 2, at + 6):
        if index >= len(data):
            return JsonSyntaxError(_UNEXPECTED_EOF)
        if data[index] not in _HEX:
            return _invalid(data[index], "in \\u hexadecimal character escape")
    raise AssertionError("unreachable: the escape is valid")  # pragma: no cover


def _number(data: bytes, pos: int) -> tuple[JsonNumber, int]:
    """The number starting at ``pos``."""
    match = _NUMBER.match(data, pos)
    if match is None:  # a minus sign without a digit
        _number_error(data, pos + 1, "in numeric literal")
    end = match.end()
    parts = match.lastindex  # None: an integer; 1: with a fraction; 2: with an exponent
    following = data[end] if end < len(data) else -1
    if parts is None and following == _DOT:
        _number_error(data, end + 1, "after decimal point in numeric literal")
    if parts != 2 and following in _EXPONENT:
        sign = end + 1 < len(data) and data[end + 1] in b"+-"
        _number_error(data, end + 1 + sign, "in exponent of numeric literal")
    return JsonNumber(data[pos:end].decode("ascii")), end


def _number_error(data: bytes, at: int, context: str) -> NoReturn:
    if at >= len(data):
        raise JsonSyntaxError(_UNEXPECTED_EOF)
    raise _invalid(data[at], context)


def _literal(data: bytes, pos: int) -> tuple[Any, int]:
    """``true``, ``false`` or ``null`` starting at ``pos``."""
    word, value = _LITERALS[data[pos]]
    for offset in range(1, len(word)):
        index = pos + offset
        if index >= len(data):
            raise JsonSyntaxError(_UNEXPECTED_EOF)
        if data[index] != word[offset]:
            context = f"in literal {word.decode()} (expecting '{chr(word[offset])}')"
            raise _invalid(data[index], context)
    return value, pos + len(word)


def _key(data: bytes, pos: int) -> tuple[str, int]:
    """An object key whose quote is at ``pos``, and the position after its colon."""
    key, pos = _string(data, pos)
    pos = _skip_space(data, pos)
    if data[pos] != _COLON:
        raise _invalid(data[pos], "after object key")
    return key, pos + 1


def _unquote(raw: bytes) -> str:
    # surrogateescape turns each invalid byte into one lone surrogate: one U+FFFD per byte.
    text = _SURROGATE.sub("\ufffd", raw.decode("utf-8", "surrogateescape"))
    if "\\" not in text:
        return text
    out: list[str] = []
    start = 0
    while (slash := text.find("\\", start)) >= 0:
        out.append(text[start:slash])
        kind = text[slash + 1]
        if kind != "u":
            out.append(_ESCAPES[kind])
            start = slash + 2
            continue
        code = int(text[slash + 2 : slash + 6], 16)
        start = slash + 6
        if 0xD800 <= code < 0xE000:
            low = int(text[start + 2 : start + 6], 16) if text.startswith("\\u", start) else 0
            if code < 0xDC00 and 0xDC00 <= low < 0xE000:
                out.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)))
                start += 6
                continue
            code = 0xFFFD  # an unpaired surrogate; the next escape is read on its own
        out.append(chr(code))
    out.append(text[start:])
    return "".join(out)


# What the helpers below return instead of a value when the next value must be read first.
_PENDING: Any = object()
# Open containers, innermost last: (container, is an object, key of the member being read).
_Stack = list[tuple[list[Any], bool, str]]


def _begin_value(data: bytes, pos: int, stack: _Stack) -> tuple[Any, int]:
    """A scalar or an empty container at ``pos``, or _PENDING after opening a container."""
    byte = data[pos]
    if byte == _QUOTE:
        return _string(data, pos)
    if byte in _NUMBER_START:
        return _number(data, pos)
    if byte in _LITERALS:
        return _literal(data, pos)
    if byte not in (_OPEN_OBJECT, _OPEN_ARRAY):
        raise _invalid(byte, "looking for beginning of value")
    if len(stack) >= MAX_DEPTH:
        raise _invalid(byte, "exceeded max depth")
    return _open(data, pos, stack)


def _open(data: bytes, pos: int, stack: _Stack) -> tuple[Any, int]:
    """The container opening at ``pos``: an empty one, or _PENDING with it pushed on ``stack``."""
    inner_pos = _skip_space(data, pos + 1)
    inner = data[inner_pos]
    if data[pos] == _OPEN_ARRAY:
        if inner == _CLOSE_ARRAY:
            return [], inner_pos + 1
        stack.append(([], False, ""))
        return _PENDING, inner_pos
    if inner == _CLOSE_OBJECT:
        return GoObject(), inner_pos + 1
    if inner != _QUOTE:
        raise _invalid(inner, "looking for beginning of object key string")
    key, pos = _key(data, inner_pos)
    stack.append((GoObject(), True, key))
    return _PENDING, pos


def _end_value(data: bytes, pos: int, stack: _Stack, value: Any) -> tuple[Any, int]:
    """Store ``value`` in its container and close every container that ends after it.

    Returns _PENDING when another member follows, else the complete top-level value.
    """
    while stack:
        container, is_object, key = stack[-1]
        container.append((key, value) if is_object else value)
        pos = _skip_space(data, pos)
        byte = data[pos]
        if byte == _COMMA:
            if is_object:
                pos = _skip_space(data, pos + 1)
                if data[pos] != _QUOTE:
                    raise _invalid(data[pos], "looking for beginning of object key string")
                key, pos = _key(data, pos)
                stack[-1] = (container, True, key)
                return _PENDING, pos
            return _PENDING, pos + 1
        if byte != (_CLOSE_OBJECT if is_object else _CLOSE_ARRAY):
            context = "after object key:value pair" if is_object else "after array element"
            raise _invalid(byte, context)
        pos += 1
        stack.pop()
        value = container
    return value, pos


def decode_value(data: bytes) -> Any:
    """The first JSON value of ``data``: GoObject, list, str, JsonNumber, bool or None.

    Raises JsonSyntaxError with Go's message ("EOF" for an empty body).
    """
    pos = _SPACE.match(data).end()  # type: ignore[union-attr]  # matches ""
    if pos >= len(data):
        raise JsonSyntaxError("EOF")
    stack: _Stack = []
    while True:
        value, pos = _begin_value(data, _skip_space(data, pos), stack)
        if value is _PENDING:
            continue
        value, pos = _end_value(data, pos, stack, value)
        if value is not _PENDING:
            return value
