"""How every report prints figures: durations, latencies, percentages and times.

The HTML page, the Markdown summary and the JUnit messages share these, so they
print the same figures the same way. ``escaped`` is the one way journal text
gets into HTML or SVG markup.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

__all__ = [
    "STILL_APPLIED",
    "escaped",
    "fmt_clock",
    "fmt_latency",
    "fmt_moment",
    "fmt_pct",
    "fmt_seconds",
]

STILL_APPLIED = "still applied — run `aftershock recover`"
"""What every report says of a fault the journal shows no revert for."""


def escaped(value: object) -> str:
    """``value`` as text for HTML or SVG markup, quotes included."""
    return escape(str(value), quote=True)


def fmt_seconds(value: float | None) -> str:
    """A duration for people: ``850 ms``, ``12.3 s``, ``4m 05s``, ``2h 10m``."""
    if value is None:
        return "—"
    if abs(value) < 1:
        return f"{value * 1000:.0f} ms"
    if abs(value) < 60:
        return f"{value:.1f} s"
    whole = round(value)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def fmt_latency(value: float | None) -> str:
    """A latency given in seconds, printed in ms (or s when it is long)."""
    if value is None:
        return "—"
    ms = value * 1000
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 10_000:
        return f"{ms:.0f} ms"
    return f"{value:.1f} s"


def fmt_pct(value: float | None, digits: int = 2) -> str:
    """A ratio (0..1) as a percentage: ``fmt_pct(0.0123)`` is ``1.23%``."""
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def fmt_moment(value: datetime | None) -> str:
    """A wall-clock time in UTC, to the second."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_clock(value: datetime | None, start: datetime) -> str:
    """A time of day in UTC with milliseconds, and its offset from the run start."""
    if value is None:
        return "—"
    offset = (value - start).total_seconds()
    return f"{value.astimezone(UTC).strftime('%H:%M:%S.%f')[:-3]} (+{fmt_seconds(offset)})"
