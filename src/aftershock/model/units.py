"""Scalar types of the experiment language: durations, percentages, thresholds.

Durations always carry a unit (``300ms``, ``5s``, ``10m``, ``1h30m``, ``28d``):
a bare number is ambiguous and refused. Percentages always carry ``%``. Each
type validates from its YAML string, keeps a typed value, and serializes back to
the same compact string, so a document round-trips unchanged.

Numbers are ASCII only. Python's ``float()``, ``int()`` and ``\\d`` also accept
other scripts' digits (fullwidth or Arabic-Indic ``300ms``) and underscores
(``1_000``); every number here is matched by an ASCII pattern before it is
converted.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Final

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

__all__ = [
    "Duration",
    "DurationThreshold",
    "NumberThreshold",
    "Percentage",
    "RatioThreshold",
    "Threshold",
    "format_duration",
    "parse_duration",
    "parse_percentage",
]

_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)"
_DURATION_RE: Final = re.compile(rf"(?:{_PART})+", re.ASCII)
_PART_RE: Final = re.compile(_PART, re.ASCII)
# JSON Schema patterns are ECMA-262 regular expressions, where \d is ASCII 0-9.
DURATION_PATTERN: Final = r"^((\d+(?:\.\d+)?)(ms|s|m|h|d|w))+$"
_NUMBER: Final = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBER_RE: Final = re.compile(_NUMBER, re.ASCII)
_PERCENT_RE: Final = re.compile(rf"({_NUMBER})[ \t]*%", re.ASCII)
_BLANK: Final = " \t\r\n"
_MAX_SECONDS: Final = 366 * 86400.0 * 10  # ten years: anything longer is a typo


def parse_duration(value: object) -> timedelta:
    """Parse ``"300ms"``, ``"1h30m"`` or a ``timedelta``; refuse bare numbers."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        msg = "expected a duration with a unit, e.g. 300ms, 5s, 10m, 28d"
        raise ValueError(msg)
    if isinstance(value, int | float):
        msg = f"duration {value!r} has no unit; write e.g. {value}s or {value}ms"
        raise ValueError(msg)
    text = value.strip(_BLANK)
    if not _DURATION_RE.fullmatch(text):
        msg = f"invalid duration {value!r}; expected e.g. 300ms, 5s, 10m, 1h30m, 28d"
        raise ValueError(msg)
    seconds = sum(float(n) * _UNITS[u] for n, u in _PART_RE.findall(text))
    if not math.isfinite(seconds) or seconds > _MAX_SECONDS:
        msg = f"duration {value!r} is longer than ten years"
        raise ValueError(msg)
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Render a duration compactly: ``1h30m``, ``250ms``, ``0s``."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, total_ms = divmod(total_ms, size)
        if count:
            parts.append(f"{count}{unit}")
    if total_ms:
        parts.append(f"{total_ms}ms")
    return "".join(parts)


def parse_percentage(value: object) -> float:
    """Parse ``"99.9%"`` into the fraction 0.999; the ``%`` is required."""
    if isinstance(value, bool) or not isinstance(value, str):
        msg = f"percentage {value!r} needs a % sign, e.g. 99.9%"
        raise ValueError(msg)
    text = value.strip(_BLANK)
    if not text.endswith("%"):
        msg = f"percentage {value!r} needs a % sign, e.g. 99.9%"
        raise ValueError(msg)
    match = _PERCENT_RE.fullmatch(text)
    if match is None:
        msg = f"invalid percentage {value!r}; expected ASCII digits, e.g. 99.9%"
        raise ValueError(msg)
    number = float(match.group(1))
    if not math.isfinite(number) or not 0.0 <= number <= 100.0:
        msg = f"percentage {value!r} must be between 0% and 100%"
        raise ValueError(msg)
    return number / 100.0


def _format_percentage(value: float) -> str:
    return f"{round(value * 100, 6):g}%"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["300ms", "5m"]}),
]
"""A length of time written with units, held as a ``timedelta``."""

Percentage = Annotated[
    float,
    BeforeValidator(parse_percentage),
    PlainSerializer(_format_percentage, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d+)?%$", "examples": ["99.9%"]}),
]
"""A share written as ``NN%``, held as a fraction between 0 and 1."""


_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_THRESHOLD_RE: Final = re.compile(r"\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*", re.ASCII)


def _number(raw: str) -> float:
    """An ASCII decimal number; ``ValueError`` for anything else (``1_0``, ``nan``, ``\\uff11``)."""
    if not _NUMBER_RE.fullmatch(raw):
        raise ValueError(raw)
    return float(raw)


@dataclass(frozen=True, slots=True)
class Threshold:
    """A comparison such as ``>= 0.99`` or ``< 200ms``; ``value`` in base units."""

    op: str
    value: float
    text: str

    def holds(self, observed: float) -> bool:
        """True when ``observed <op> value``."""
        return _OPS[self.op](observed, self.value)

    def __str__(self) -> str:
        return self.text


def _split_threshold(value: object, example: str) -> tuple[str, str]:
    if not isinstance(value, str):
        msg = f"expected a comparison such as {example!r}, got {value!r}"
        raise ValueError(msg)
    match = _THRESHOLD_RE.fullmatch(value)
    if match is None:
        msg = f"invalid comparison {value!r}; expected e.g. {example!r}"
        raise ValueError(msg)
    return match.group(1), match.group(2)


def _ratio_threshold(value: object) -> Threshold:
    if isinstance(value, Threshold):
        return value
    op, raw = _split_threshold(value, ">= 0.99")
    if raw.endswith("%"):
        number = parse_percentage(raw)
    else:
        try:
            number = _number(raw)
        except ValueError:
            msg = f"invalid ratio {raw!r} in {value!r}; expected 0..1 or NN%"
            raise ValueError(msg) from None
        if not 0.0 <= number <= 1.0:
            msg = f"ratio {raw!r} in {value!r} must be between 0 and 1 (or write NN%)"
            raise ValueError(msg)
    return Threshold(op, number, f"{op} {raw}")


def _duration_threshold(value: object) -> Threshold:
    if isinstance(value, Threshold):
        return value
    op, raw = _split_threshold(value, "< 200ms")
    return Threshold(op, parse_duration(raw).total_seconds(), f"{op} {raw}")


def _number_threshold(value: object) -> Threshold:
    if isinstance(value, Threshold):
        return value
    op, raw = _split_threshold(value, "< 0.05")
    try:
        number = _number(raw)
    except ValueError:
        msg = f"invalid number {raw!r} in {value!r}"
        raise ValueError(msg) from None
    if not math.isfinite(number):
        msg = f"number {raw!r} in {value!r} must be finite"
        raise ValueError(msg)
    return Threshold(op, number, f"{op} {raw}")


_THRESHOLD_SCHEMA: Final = r"^\s*(<=|>=|==|!=|<|>)\s*\S+\s*$"

RatioThreshold = Annotated[
    Threshold,
    BeforeValidator(_ratio_threshold),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": _THRESHOLD_SCHEMA, "examples": [">= 0.99"]}),
]
"""A comparison against a ratio (``>= 0.99`` or ``>= 99%``)."""

DurationThreshold = Annotated[
    Threshold,
    BeforeValidator(_duration_threshold),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": _THRESHOLD_SCHEMA, "examples": ["< 200ms"]}),
]
"""A comparison against a duration (``< 200ms``); the value is in seconds."""


NumberThreshold = Annotated[
    Threshold,
    BeforeValidator(_number_threshold),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": _THRESHOLD_SCHEMA, "examples": ["< 0.05"]}),
]
"""A comparison against a plain number (``< 0.05``)."""
