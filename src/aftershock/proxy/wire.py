"""Wire format of the Toxiproxy API: JSON encoded and decoded the way Go's ``encoding/json`` does.

Toxiproxy clients compare bodies and error messages, so the embedded server
reproduces what Go writes: compact output, ``<``/``>``/``&`` escaped, float32
values printed with the shortest round-tripping digits, map keys sorted; and
what Go's decoder accepts: the first JSON value of the body (trailing bytes
ignored), ``null`` leaving a field unchanged, keys matched case-insensitively,
integers refused when written with a fraction or exponent.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = [
    "ApiError",
    "Float32",
    "GoObject",
    "GoTypeError",
    "JsonNumber",
    "bind",
    "decode_body",
    "encode",
    "float32",
    "kind_of",
]

_HTML_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


class ApiError(Exception):
    """An API failure answered as ``{"error": message, "status": status}``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def wrap(self, detail: str) -> ApiError:
        """The same error with ``": detail"`` appended, as Go's ``joinError`` builds it."""
        return ApiError(f"{self.message}: {detail}", self.status)


class GoTypeError(Exception):
    """A JSON value of the wrong kind for its Go field (``json.UnmarshalTypeError``)."""


class Float32(float):
    """A float encoded like a Go ``float32`` (shortest digits that round-trip in 32 bits)."""


class JsonNumber:
    """A JSON number with a fraction or exponent, kept as written (Go refuses it for ints)."""

    __slots__ = ("literal",)

    def __init__(self, literal: str) -> None:
        self.literal = literal

    def __float__(self) -> float:
        return float(self.literal)


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


def float32(value: float) -> float:
    """``value`` rounded to the nearest float32; raises OverflowError outside its range."""
    result: float = struct.unpack("f", struct.pack("f", value))[0]
    return result


def _format_float32(value: float) -> str:
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if float32(float(text)) == value:
            break
    if value == 0 or 1e-6 <= abs(value) < 1e21:
        formatted = format(Decimal(text), "f")
        return formatted.rstrip("0").rstrip(".") if "." in formatted else formatted
    mantissa, _, exponent = f"{Decimal(text):e}".partition("e")
    mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
    power = exponent.lstrip("+-").lstrip("0")
    # strconv writes two exponent digits at least; encoding/json then trims "e-07" to "e-7".
    if exponent.startswith("-"):
        return f"{mantissa}e-{power}"
    return f"{mantissa}e+{power.zfill(2)}"


def _encode_string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    for char, escape in _HTML_ESCAPES.items():
        encoded = encoded.replace(char, escape)
    return encoded


def encode(value: Any) -> bytes:
    """``value`` as Go's ``json.Marshal`` writes it (dicts keep their order; sort them first)."""
    return _encode(value).encode()


_LITERALS = {None: "null", True: "true", False: "false"}


def _encode(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return _LITERALS[value]
    if isinstance(value, str):
        return _encode_string(value)
    if isinstance(value, Float32):
        return _format_float32(float32(value))
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, Mapping):
        members = (f"{_encode_string(str(k))}:{_encode(v)}" for k, v in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")


def kind_of(value: Any) -> str:
    """How Go's decoder names a JSON value in a type error."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, GoObject):
        return "object"
    if isinstance(value, list):
        return "array"
    return "number"


def _refuse_constant(name: str) -> Any:
    raise _ConstantError(name)


class _ConstantError(ValueError):
    pass


def _quote_char(char: str) -> str:
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    return "'" + json.dumps(char, ensure_ascii=False)[1:-1] + "'"


def _container_at(text: str, pos: int) -> str:
    """The innermost open container (``{`` or ``[``) at ``pos``, skipping strings."""
    stack: list[str] = []
    in_string = escaped = False
    for char in text[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append(char)
        elif char in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


# Python's decoder messages and the context Go's scanner names for the same mistake.
_SYNTAX = (
    ("Expecting ':'", "after object key"),
    ("Expecting property name", "looking for beginning of object key string"),
    ("Invalid control character", "in string literal"),
)


def _syntax_message(text: str, error: json.JSONDecodeError) -> str:
    rest = text[error.pos :]
    if not rest.strip() or error.msg.startswith("Unterminated string"):
        return "unexpected EOF"
    char = rest[0]
    if error.msg.startswith("Expecting ','"):
        inside = _container_at(text, error.pos)
        where = "after object key:value pair" if inside == "{" else "after array element"
    elif error.msg.startswith("Invalid \\escape"):
        char, where = rest[1:2] or char, "in string escape code"
    else:
        default = "looking for beginning of value"
        where = next((w for p, w in _SYNTAX if error.msg.startswith(p)), default)
    return f"invalid character {_quote_char(char)} {where}"


_DECODER = json.JSONDecoder(
    object_pairs_hook=GoObject,
    parse_float=JsonNumber,
    parse_constant=_refuse_constant,
)


def decode_body(body: bytes) -> Any:
    """The first JSON value of ``body``, or ApiError 400 "bad request body: <decoder message>"."""
    bad_body = ApiError("bad request body", 400)
    text = body.decode("utf-8", "replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise bad_body.wrap("EOF")
    try:
        value, _ = _DECODER.raw_decode(text, start)
    except _ConstantError as exc:
        position = text.find(str(exc), start)
        char = _quote_char(text[position] if position >= 0 else text[start])
        raise bad_body.wrap(f"invalid character {char} looking for beginning of value") from None
    except json.JSONDecodeError as exc:
        raise bad_body.wrap(_syntax_message(text, exc)) from None
    return value


_GO_TYPES = {"string": "string", "bool": "bool", "int": "int", "int64": "int64"}


def _convert(kind: str, value: Any) -> Any:
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    integer = isinstance(value, int) and not isinstance(value, bool)
    if kind in ("int", "int64") and integer and -(2**63) <= value < 2**63:
        return value
    if kind == "float32" and isinstance(value, int | JsonNumber) and not isinstance(value, bool):
        try:
            return Float32(float32(float(value)))
        except OverflowError:
            pass
    if kind in ("int", "int64", "float32") and isinstance(value, JsonNumber):
        raise GoTypeError(f"number {value.literal}")
    if kind in ("int", "int64", "float32") and type(value) is int:
        raise GoTypeError(f"number {value}")
    raise GoTypeError(kind_of(value))


def bind(
    source: Any,
    fields: Mapping[str, str],
    target: dict[str, Any],
    *,
    struct: str,
    go_type: str,
    field: str = "",
) -> None:
    """Decode ``source`` into ``target`` as Go decodes JSON into a struct.

    ``fields`` maps JSON keys to Go kinds (string, bool, int, int64, float32);
    keys missing from ``source`` or set to ``null`` leave ``target`` unchanged.
    ``struct`` and ``go_type`` name the Go struct for error messages, ``field``
    the path of ``source`` when it is itself a member ("attributes").
    Raises ApiError 400 with Go's message for the first value of the wrong kind.
    """
    bad_body = ApiError("bad request body", 400)
    if source is None:
        return
    if not isinstance(source, GoObject):
        where = f"Go struct field {field}" if field else "Go value"
        raise bad_body.wrap(
            f"json: cannot unmarshal {kind_of(source)} into {where} of type {go_type}"
        )
    prefix = f"{field.partition('.')[2]}." if field else ""
    first_error: str | None = None
    for key, kind in fields.items():
        present, value = source.lookup(key)
        if not present or value is None:
            continue
        try:
            target[key] = _convert(kind, value)
        except GoTypeError as exc:
            if first_error is None:
                first_error = (
                    f"json: cannot unmarshal {exc} into Go struct field "
                    f"{struct}.{prefix}{key} of type {_GO_TYPES.get(kind, kind)}"
                )
    if first_error is not None:
        raise bad_body.wrap(first_error)
