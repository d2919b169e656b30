"""Wire format of the Toxiproxy API: JSON encoded and decoded the way Go's ``encoding/json`` does.

Toxiproxy clients compare bodies and error messages, so the embedded server
reproduces what Go writes: compact output, ``<``/``>``/``&`` escaped, float32
values printed with the shortest round-tripping digits, map keys sorted; and
what Go's decoder accepts: the first JSON value of the body (trailing bytes
ignored; see :mod:`aftershock.proxy.jsondecode`), ``null`` leaving a field
unchanged, keys matched case-insensitively, integers refused when written with
a fraction or exponent or out of the int64 range, float32 fields refused beyond
the float32 range. NaN and Infinity are neither read nor written.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import struct
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from aftershock.proxy.jsondecode import GoObject, JsonNumber, JsonSyntaxError, decode_value

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
    "parse_float32",
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


def _round32(value: float) -> float:
    """``value`` rounded to float32, ties to even; infinite beyond the float32 range."""
    result: float = struct.unpack("f", struct.pack("f", value))[0]
    return result


def _step32(value: float, step: int) -> float:
    """The float32 ``step`` places from the non-negative float32 ``value``."""
    (bits,) = struct.unpack("<I", struct.pack("<f", value))
    result: float = struct.unpack("<f", struct.pack("<I", bits + step))[0]
    return result


def float32(value: float) -> float:
    """``value`` rounded to the nearest float32; OverflowError if that is not finite."""
    result = _round32(value)
    if not math.isfinite(result):
        raise OverflowError(f"{value!r} is out of the float32 range")
    return result


# Go's strconv.ParseFloat(s, 32) fails with ErrRange from half an ulp above the largest float32.
_FLOAT32_OVERFLOW = Decimal(2**128 - 2**103)


_NUMBER = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([-+]?)([0-9]+))?")


def _scaled(literal: str) -> tuple[bool, str, int]:
    """A JSON number as sign, significant digits D (no leading zero) and S: it is 0.D * 10**S."""
    match = _NUMBER.fullmatch(literal)
    assert match is not None, literal  # the decoder only passes JSON numbers
    sign, whole, fraction, exponent_sign, exponent_digits = match.groups("")
    digits = (whole + fraction).lstrip("0")
    exponent_digits = exponent_digits.lstrip("0")
    # Any exponent this long is far outside float32, and int() has a limit on digits.
    exponent = int(exponent_digits or "0") if len(exponent_digits) <= 7 else 10**8
    exponent = -exponent if exponent_sign == "-" else exponent
    return sign == "-", digits, exponent - len(fraction) + len(digits)


def parse_float32(literal: str) -> float:
    """A JSON number literal rounded once to float32, as Go parses it; OverflowError if too big."""
    negative, digits, scale = _scaled(literal)
    if not digits or scale < -46:  # zero, or below half the smallest float32
        return -0.0 if negative else 0.0
    if scale > 39:  # 1e39 and above
        raise OverflowError(f"{literal} is out of the float32 range")
    normal = f"0.{digits}e{scale}"  # an exponent Decimal and float() both take
    exact = Decimal(normal)
    if exact >= _FLOAT32_OVERFLOW:
        raise OverflowError(f"{literal} is out of the float32 range")
    magnitude = abs(float(normal))
    nearest = _round32(magnitude)
    # Rounding to float64 first may land exactly halfway between two float32 although the
    # literal is not; then the literal itself decides, as Go rounds it only once.
    if nearest > magnitude:
        low, high = _step32(nearest, -1), nearest
    else:
        low, high = nearest, _step32(nearest, 1)
    if nearest != magnitude and (low + min(high, 2.0**128)) / 2 == magnitude:
        halfway = Decimal(magnitude)
        if exact > halfway:
            nearest = high
        elif exact < halfway:
            nearest = low
    return -nearest if negative else nearest


def _format_float32(value: float) -> str:
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if _round32(float(text)) == value:
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


_SURROGATE = re.compile("[\ud800-\udfff]")


def _encode_string(text: str) -> str:
    # Decoded strings never hold surrogates; any other source gets U+FFFD, as Go's encoder writes.
    encoded = json.dumps(_SURROGATE.sub("\ufffd", text), ensure_ascii=False)
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
    if isinstance(value, float) and not math.isfinite(value):
        # Go's json.Marshal refuses these too: NaN and Infinity are not JSON.
        raise ValueError(f"json: unsupported value: {value!r}")
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


def decode_body(body: bytes) -> Any:
    """The first JSON value of ``body``, or ApiError 400 "bad request body: <decoder message>"."""
    try:
        return decode_value(body)
    except JsonSyntaxError as exc:
        raise ApiError("bad request body", 400).wrap(str(exc)) from None


_GO_TYPES = {"string": "string", "bool": "bool", "int": "int", "int64": "int64"}


_INTEGER = re.compile(r"-?[0-9]{1,19}")  # longer ones are outside int64


def _convert(kind: str, value: Any) -> Any:
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind not in ("int", "int64", "float32") or not isinstance(value, JsonNumber):
        raise GoTypeError(kind_of(value))
    literal = value.literal
    if kind == "float32":
        with contextlib.suppress(OverflowError):
            return Float32(parse_float32(literal))
    elif _INTEGER.fullmatch(literal) and -(2**63) <= int(literal) < 2**63:
        return int(literal)
    # Go's strconv refused it: a fraction or exponent for an integer, or out of range.
    raise GoTypeError(f"number {literal}")


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
