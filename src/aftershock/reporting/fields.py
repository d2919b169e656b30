"""Values read out of a journal note's fields for a report: numbers, times and text.

A note is JSON written by the runner, but a report reads files that may have
been damaged or edited, so every field is checked as it is read: a number is
finite and within ``LIMIT`` (else ``BadNumber``), a time is an aware datetime
that stays in range in UTC, and text is a string (a list, an object or NaN where
text belongs shows as nothing). ``TypeError``/``ValueError`` from these readers
mean "skip this note".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aftershock.reporting.view import LIMIT

__all__ = ["BadNumber", "moment", "non_finite", "number", "offset", "text"]


class BadNumber(ValueError):
    """A number that is not finite or beyond ``LIMIT``; its record is skipped."""


def number(value: Any) -> float | None:
    """A number as a float; ``None`` when it is not a number; ``BadNumber`` when unusable."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # Compared before float(): an int too large for a float would raise OverflowError.
    if not (-LIMIT <= value <= LIMIT):  # also false for NaN
        raise BadNumber(value)
    return float(value)


def non_finite(value: Any) -> bool:
    """True if NaN or an infinity is anywhere inside ``value`` (JSON data, any depth)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def moment(value: Any) -> datetime:
    """An ISO time as an aware UTC datetime; ``ValueError`` if it is not one."""
    if not isinstance(value, str):
        raise TypeError(value)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(value) from exc


def offset(value: Any) -> float:
    """A required time offset (seconds since the start); a record without one is skipped."""
    if (found := number(value)) is None:
        raise TypeError(value)
    return found


def text(value: Any) -> str:
    """A display string; a list, an object or NaN where text belongs shows as nothing."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return str(value) if math.isfinite(value) else ""
    return str(value) if isinstance(value, int) else ""
