"""The SVG plots of the trends page: one x slot per period, bars, lines, ranges and rules.

``week_plot`` draws stacked bars (runs by verdict, budget by experiment, healer
actions by outcome), lines with optional min-max ranges (recovery, MTTR, the
rolling budget) and horizontal rules (the budget allowance, a recovery limit)
over a row of periods. The plot area is filled with ``PLOT_FILL`` so a
screenshot shows where each plot is. The y axis starts at 0 with 1-2-5 steps
(durations in whole seconds, minutes or hours); x labels are the periods'
Mondays, thinned so they never overlap. Every string goes through ``element``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from aftershock.reporting.charts import element
from aftershock.reporting.format import escaped, fmt_pct, fmt_seconds
from aftershock.reporting.trends import Period

__all__ = [
    "CHAR_WIDTH",
    "PLOT_FILL",
    "PLOT_WIDTH",
    "Band",
    "Rule",
    "Series",
    "YKind",
    "week_plot",
    "x_labels",
    "y_ticks",
]

PLOT_FILL: Final = "#f5f9ff"
"""The plot area's background; nothing else on the page has this colour."""
CHAR_WIDTH: Final = 6.6
"""Width of one character of an 11 px label, generously estimated."""
PLOT_WIDTH: Final = 1160
"""The width of every plot's view box (the run report's timelines are as wide)."""
_W, _L, _PW = PLOT_WIDTH, 66, 1070  # SVG width, left margin, plot width
_DATE_WIDTH: Final = 10 * CHAR_WIDTH  # an x label: the period's Monday, 2026-03-02
_LABEL_GAP: Final = 10.0
_TOP = 8.0
_DURATIONS: Final = tuple(
    m * unit for unit in (1, 60, 3600, 86400) for m in (1, 2, 5, 10, 15, 30) if m * unit <= 86400
) + tuple(86400 * m for m in (2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000))
_MIN_SHARE: Final = 1e-6  # the smallest y step of a share axis (0.0001%)

YKind = Literal["count", "share", "seconds"]
"""What the y axis holds: whole counts, shares (0..1) as percentages, or durations in seconds."""


@dataclass(frozen=True, slots=True)
class Series:
    """One named row of values, one per period (None: nothing to draw there)."""

    label: str
    colour: str
    values: Sequence[float | None]


@dataclass(frozen=True, slots=True)
class Band:
    """A low-high range per period, drawn as a whisker behind a line."""

    label: str
    colour: str
    lows: Sequence[float | None]
    highs: Sequence[float | None]


@dataclass(frozen=True, slots=True)
class Rule:
    """A horizontal reference line (an allowance, a limit)."""

    label: str
    colour: str
    value: float


def _nice_step(raw: float, kind: YKind) -> float:
    if kind == "seconds" and raw <= _DURATIONS[-1]:
        return next(d for d in _DURATIONS if d >= raw)
    if kind == "seconds":  # beyond the table: 1-2-5 steps of days
        return 86400 * _nice_step(raw / 86400, "count")
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * 0.9999)
    if kind == "count":
        return max(1.0, float(math.ceil(step)))
    return max(step, _MIN_SHARE)


def y_ticks(top: float, kind: YKind, count: int = 4) -> list[float]:
    """Ticks from 0 to at least ``top`` in about ``count`` nice steps."""
    top = top if math.isfinite(top) and top > 0 else (1.0 if kind != "share" else 0.01)
    step = _nice_step(top / count, kind)
    return [i * step for i in range(math.ceil(top / step * 0.9999) + 1)]


def _y_label(value: float, kind: YKind, step: float) -> str:
    if kind == "count":
        return f"{value:.0f}"
    if kind == "share":
        return fmt_pct(value, max(0, -math.floor(math.log10(step * 100) + 1e-9)))
    if value == 0:
        return "0"
    return fmt_seconds(value).replace(".0 s", " s")


def x_labels(count: int, width: float) -> list[tuple[int, float]]:
    """(slot, centre x) of the labels ``width`` wide to draw under ``count`` slots.

    Every ``n``-th slot, counted back from the last so the latest period is always
    labelled; a label that would run past the right edge moves left, and ``n``
    grows until no two labels are closer than ``_LABEL_GAP``.
    """
    if count < 1:
        return []
    slot = _PW / count
    every = max(1, math.ceil((width + _LABEL_GAP) / slot))
    while True:
        chosen = range((count - 1) % every, count, every)
        placed = [(i, min(_L + slot * (i + 0.5), _W - width / 2)) for i in chosen]
        if all(b - a >= width + _LABEL_GAP for (_, a), (_, b) in itertools.pairwise(placed)):
            return placed
        every += 1


class _Y:
    """A value to its y; values beyond the last tick stay on the frame."""

    def __init__(self, ticks: Sequence[float], height: float) -> None:
        self.height, self.hi = height, ticks[-1]

    def __call__(self, value: float) -> float:
        return _TOP + self.height * (1 - min(max(value, 0.0), self.hi) / self.hi)


_Fmt = Callable[[float], str]


def _bars(
    bars: Sequence[Series], periods: Sequence[Period], y: _Y, slot: float, fmt: _Fmt
) -> list[str]:
    out, width = [], min(slot * 0.72, 56.0)
    for i, period in enumerate(periods):
        base, x = 0.0, _L + slot * i + (slot - width) / 2
        for s in bars:
            value = s.values[i]
            if not value:
                continue
            tip = f"{period.label}: {s.label} {fmt(value)}"
            y0, y1 = y(base), y(base + value)
            rect = element("rect", x=x, y=y1, width=width, height=max(y0 - y1, 1.0), fill=s.colour)
            out.append(f'<g class="bar"><title>{escaped(tip)}</title>{rect}</g>')
            base += value
    return out


def _lines(
    lines: Sequence[Series], ranges: Sequence[Band], y: _Y, slot: float, fmt: _Fmt
) -> list[str]:
    out = []
    for band in ranges:
        for i, (lo, hi) in enumerate(zip(band.lows, band.highs, strict=True)):
            if lo is None or hi is None:
                continue
            x = _L + slot * (i + 0.5)
            d = f"M{x - 4:.1f},{y(hi):.1f}H{x + 4:.1f}M{x:.1f},{y(hi):.1f}V{y(lo):.1f}"
            d += f"M{x - 4:.1f},{y(lo):.1f}H{x + 4:.1f}"
            tip = f"{band.label}: {fmt(lo)} to {fmt(hi)}"
            path = element("path", d=d, stroke=band.colour, stroke_width=1.5, fill="none")
            out.append(f'<g class="range"><title>{escaped(tip)}</title>{path}</g>')
    radius = 4.5 if slot > _PW / 13 else 3.0  # few points: each must stand out on its own
    for s in lines:
        points = [(i, v) for i, v in enumerate(s.values) if v is not None]
        d, last = "", -2
        for i, v in points:
            d += f"{'L' if i == last + 1 else 'M'}{_L + slot * (i + 0.5):.1f},{y(v):.1f}"
            last = i
        if d:
            stroke = {"fill": "none", "stroke": s.colour, "stroke_width": 2}
            out.append(element("path", class_="line", d=d, **stroke))
        for i, v in points:
            dot = element("circle", cx=_L + slot * (i + 0.5), cy=y(v), r=radius, fill=s.colour)
            tip = escaped(f"{s.label}: {fmt(v)}")
            out.append(f'<g class="point"><title>{tip}</title>{dot}</g>')
    return out


def _rules(rules: Sequence[Rule], y: _Y, fmt: _Fmt) -> list[str]:
    out = []
    for rule in rules:
        at = y(rule.value)
        line = {"stroke": rule.colour, "stroke_dasharray": "6 4", "stroke_width": 1.5}
        out.append(element("line", class_="rule", x1=_L, x2=_L + _PW, y1=at, y2=at, **line))
        text = escaped(f"{rule.label} {fmt(rule.value)}")
        below = at - 4 < _TOP + 12  # at the top of the frame: the label goes under the line
        style = f"fill:{rule.colour};font-weight:600"
        where = {"x": _L + _PW - 4, "y": at + 13 if below else at - 4, "text_anchor": "end"}
        out.append(element("text", text, style=style, **where))
    return out


def _x_axis(periods: Sequence[Period], bottom: float, slot: float) -> list[str]:
    out = []
    for i, at in x_labels(len(periods), _DATE_WIDTH):
        x, period = _L + slot * (i + 0.5), periods[i]
        out.append(element("line", x1=x, x2=x, y1=bottom, y2=bottom + 4, stroke="#8c959f"))
        date = escaped(period.start.isoformat())
        text = element("text", date, class_="x", x=at, y=bottom + 16, text_anchor="middle")
        out.append(f"<g><title>{escaped(period.label)}</title>{text}</g>")
    return out


def week_plot(
    periods: Sequence[Period],
    *,
    label: str,
    kind: YKind,
    bars: Sequence[Series] = (),
    lines: Sequence[Series] = (),
    ranges: Sequence[Band] = (),
    rules: Sequence[Rule] = (),
    height: float = 170.0,
) -> str:
    """One plot over ``periods``: stacked ``bars``, ``ranges`` and ``lines`` on top, ``rules``."""
    n = max(len(periods), 1)
    slot = _PW / n
    stacks = [sum(s.values[i] or 0.0 for s in bars) for i in range(len(periods))]
    tops = [v for s in lines for v in s.values] + [v for b in ranges for v in b.highs]
    found = [v for v in [*stacks, *tops, *(r.value for r in rules)] if v]
    ticks = y_ticks(max(found, default=0.0), kind)
    y, bottom = _Y(ticks, height), _TOP + height
    step = ticks[1] - ticks[0]

    def fmt(value: float) -> str:
        return _y_label(value, kind, step)

    head = f'<svg class="plot" viewBox="0 0 {_W} {bottom + 24:.0f}" role="img"'
    out = [
        f'{head} aria-label="{escaped(label)}">',
        element("rect", class_="frame", x=_L, y=_TOP, width=_PW, height=height, fill=PLOT_FILL),
    ]
    for tick in ticks:
        at = y(tick)
        out.append(element("line", x1=_L - 4, x2=_L + _PW, y1=at, y2=at, stroke="#dde3ea"))
        out.append(element("text", escaped(fmt(tick)), x=_L - 7, y=at + 4, text_anchor="end"))
    out += _bars(bars, periods, y, slot, fmt)
    out += _lines(lines, ranges, y, slot, fmt)
    out += _rules(rules, y, fmt)
    if not found:
        note = "nothing in these weeks"
        out.append(element("text", note, x=_L + _PW / 2, y=_TOP + height / 2, text_anchor="middle"))
    frame = {"fill": "none", "stroke": "#d0d7de"}
    out.append(element("rect", x=_L, y=_TOP, width=_PW, height=height, **frame))
    out += _x_axis(periods, bottom, slot)
    return "\n".join([*out, "</svg>"])
