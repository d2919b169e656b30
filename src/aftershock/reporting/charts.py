"""The SVG timeline of the HTML report: one plot per probe, inline, no scripts.

Per probe, ``timeline`` draws latency (min/max-decimated to at most
``MAX_POINTS`` points), every failed sample, the rolling success ratio, fault
windows, phases, and the abort/recovery/healing moments. Every string from the
journal goes through ``escaped``; ``_el`` writes one element.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence

from aftershock.reporting.format import escaped, fmt_seconds
from aftershock.reporting.view import RunView, Sample

__all__ = ["MAX_POINTS", "element", "timeline"]

MAX_POINTS = 1500
"""At most this many latency points per probe; failed samples are all drawn on top."""
_PHASE_FILLS = {"method": "#f2f5f9", "recovery": "#eef9f0", "rollback": "#fbefff"}
_W, _L, _PW = 1160, 66, 1070  # SVG width, left margin, plot width


def _el(tag: str, markup: str = "", /, **attrs: object) -> str:
    """An SVG element; ``stroke_width`` names ``stroke-width``, floats get one decimal."""
    pairs = (
        f'{k.rstrip("_").replace("_", "-")}="{escaped(f"{v:.1f}" if isinstance(v, float) else v)}"'
        for k, v in attrs.items()
    )
    head = f"<{tag} {' '.join(pairs)}"
    return f"{head}>{markup}</{tag}>" if markup else f"{head}/>"


def element(tag: str, markup: str = "", /, **attrs: object) -> str:
    """One SVG element as the timeline writes it, for other plots of the reports.

    ``markup`` (already escaped) goes inside; attribute values are escaped,
    floats get one decimal and ``stroke_width`` names ``stroke-width``.
    """
    return _el(tag, markup, **attrs)


# ---------------------------------------------------------------- timeline geometry


def _time_ticks(span: float) -> list[float]:
    steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
    step = next((s for s in steps if span / s <= 12), 86400 * math.ceil(span / 86400 / 12))
    return [i * step for i in range(int(span // step) + 1)]


def _fmt_t(t: float) -> str:
    m, s = divmod(round(t), 60)
    if m == 0:
        return f"{s}s"
    return (f"{m}m" if s == 0 else f"{m}m{s:02d}s") if m < 60 else f"{m // 60}h{m % 60:02d}m"


def _fmt_ms(ms: float) -> str:
    return f"{ms / 1000:g} s" if ms >= 1000 else f"{ms:g} ms"


class _YScale:
    """Latency (ms) to y; logarithmic (1-2-5 ticks) when the values span more than 20 times."""

    def __init__(self, values: Sequence[float], top: float, height: float) -> None:
        self.top, self.height = top, height
        lo, hi = max(min(values), 0.01), min(max(*values, 0.02), 1e7)
        self.log = hi / lo > 20
        if self.log:
            k0 = math.floor(math.log10(lo))
            nice = [m * 10.0**k for k in range(k0, 8) for m in (1, 2, 5)]
            first = max(i for i, v in enumerate(nice) if v <= lo * 1.0001)
            ticks = nice[first : next(i for i, v in enumerate(nice) if v >= hi * 0.9999) + 1]
            if len(ticks) > 9:  # too dense: powers of ten only
                ticks = [10.0**k for k in range(k0, math.ceil(math.log10(hi) - 1e-9) + 1)]
            self.lo, self.hi = math.log10(ticks[0]), math.log10(ticks[-1])
        else:
            mag = 10.0 ** math.floor(math.log10(hi / 5))
            step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= hi / 5)
            ticks = [i * step for i in range(math.ceil(hi / step * 0.9999) + 1)]
            self.lo, self.hi = 0.0, ticks[-1]
        self.ticks = ticks

    def __call__(self, ms: float) -> float:
        v = math.log10(max(ms, self.ticks[0])) if self.log else ms
        return self.top + self.height * (1 - (v - self.lo) / (self.hi - self.lo))


def _median_gap(samples: Sequence[Sample]) -> float:
    gaps = sorted(b.t - a.t for a, b in itertools.pairwise(samples))
    return gaps[len(gaps) // 2] if gaps else 0.0


def _segments(samples: Sequence[Sample], span: float) -> list[list[tuple[float, float]]]:
    """Successful samples as (t, ms) runs, broken where a gap (an outage) would mislead a line."""
    limit = max(3 * _median_gap(samples), span / 300)
    runs: list[list[tuple[float, float]]] = []
    last = -math.inf
    for s in samples:
        if s.ok and s.latency is not None:
            if s.t - last > limit:
                runs.append([])
            runs[-1].append((s.t, s.latency * 1000))
            last = s.t
    return runs


def _thin(run: list[tuple[float, float]], span: float, buckets: int) -> list[tuple[float, float]]:
    """Min/max decimation per time bucket: spikes survive, the point count stays bounded."""
    out: list[tuple[float, float]] = []
    key, lo, hi = int(run[0][0] / span * buckets), run[0], run[0]
    for point in run:
        if (bucket := int(point[0] / span * buckets)) != key:
            out += sorted({lo, hi})
            key, lo, hi = bucket, point, point
        lo, hi = min(lo, point, key=lambda p: p[1]), max(hi, point, key=lambda p: p[1])
    return out + sorted({lo, hi})


def _ratio_path(samples: Sequence[Sample], x: _X, top: float, height: float) -> tuple[str, float]:
    """The rolling success ratio as a filled area; the window is 5 sample intervals or more."""
    ts, ok = [s.t for s in samples], [0]
    for s in samples:
        ok.append(ok[-1] + s.ok)
    window = max(5 * _median_gap(samples), x.span / 60, 1.0)
    n, base, path, open_ = min(400, max(2, len(ts))), f"{top + height:.1f}", [], False
    for i in range(n):
        t = ts[0] + (ts[-1] - ts[0]) * i / (n - 1)
        hi, lo = bisect.bisect_right(ts, t), bisect.bisect_right(ts, t - window)
        if hi > lo:
            y = top + height * (1 - (ok[hi] - ok[lo]) / (hi - lo))
            path.append(f"{'L' if open_ else f'M{x(t):.1f},{base}L'}{x(t):.1f},{y:.1f}")
        elif open_:
            path.append(f"L{x(t):.1f},{base}Z")
        open_ = hi > lo
    return "".join(path) + (f"L{x(ts[-1]):.1f},{base}Z" if open_ else ""), window


class _X:
    """Seconds since the start to x."""

    def __init__(self, span: float) -> None:
        self.span = span

    def __call__(self, t: float) -> float:
        return _L + _PW * min(max(t, 0.0), self.span) / self.span


def _lanes(view: RunView) -> list[int]:
    """A row per overlapping fault window, so concurrent faults' labels never collide."""
    ends: list[float] = []
    lanes = []
    for w in view.windows:
        lane = next((i for i, end in enumerate(ends) if end <= w.start_t), len(ends))
        ends[lane:] = [math.inf if w.end_t is None else w.end_t, *ends[lane + 1 :]]
        lanes.append(lane)
    return lanes


# ---------------------------------------------------------------- timeline drawing


def _backdrop(
    view: RunView, x: _X, top: float, bottom: float, colours: dict[str, str]
) -> list[str]:
    """Phases as bands with labels, the time grid, and the fault lanes and shading."""
    out, span = [], x.span
    for phase, nxt in zip(view.phases, [*view.phases[1:], None], strict=False):
        x0, x1 = x(phase.t), x(nxt.t if nxt else span)
        if (fill := _PHASE_FILLS.get(phase.name)) and x1 > x0:
            out.append(_el("rect", x=x0, y=18.0, width=x1 - x0, height=bottom - 18, fill=fill))
        out.append(
            _el("line", x1=x0, x2=x0, y1=4, y2=bottom, stroke="#8c959f", stroke_dasharray="3 3")
        )
        if x1 - x0 > 6.5 * len(phase.name) or (nxt is None and x0 + 6.5 * len(phase.name) < _W):
            out.append(_el("text", escaped(phase.name), x=x0 + 3, y=14))
    for t in _time_ticks(span):
        out.append(_el("line", x1=x(t), x2=x(t), y1=top, y2=bottom, stroke="#eaeef2"))
        out.append(_el("text", _fmt_t(t), x=x(t), y=bottom + 15, text_anchor="middle"))
    for w, lane in zip(view.windows, _lanes(view), strict=True):
        x0 = x(w.start_t)
        x1, y = max(x(span if w.end_t is None else w.end_t), x0 + 2), 24.0 + lane * 17
        tip = f"{w.step}: {w.fault} on {w.target}, from {fmt_seconds(w.start_t)} to "
        tip += "the end (still applied)" if w.end_t is None else fmt_seconds(w.end_t)
        fit = int((x1 - x0 - 6) / 6.3)
        label = w.step if len(w.step) <= fit else w.step[: max(fit - 1, 0)] + "…"
        shade = _el("rect", class_="fault", x=x0, y=top, width=x1 - x0, height=bottom - top - 50)
        bar = _el("rect", x=x0, y=y, width=x1 - x0, height=15, rx=3, fill=colours[w.step])
        text = _el("text", escaped(label), x=x0 + 4, y=y + 11, style="fill:#fff;font-weight:600")
        shade = shade.replace("/>", f' fill="{colours[w.step]}" fill-opacity=".14"/>')
        out.append(f"<g><title>{escaped(tip)}</title>{shade}{bar}{text}</g>")
    return out


def _latency(view: RunView, probe: str, samples: Sequence[Sample], x: _X, top: float) -> list[str]:
    runs = _segments(samples, x.span)
    values = [v for run in runs for _, v in run]
    slo = [
        s.latency_seconds * 1000
        for s in view.slos.values()
        if s.probe == probe and s.latency_seconds
    ]
    if not values:
        note = "no successful samples" if samples else "no samples"
        mid = _el("text", note, x=_L + _PW / 2, y=top + 100, text_anchor="middle")
        return [mid, _el("text", "latency", x=_L + 4, y=top + 12, style="font-weight:600")]
    y, out = _YScale(values + slo, top + 20, 176), []  # room for the label above
    for tick in y.ticks:
        out.append(_el("line", x1=_L - 4, x2=_L + _PW, y1=y(tick), y2=y(tick), stroke="#eaeef2"))
        out.append(_el("text", _fmt_ms(tick), x=_L - 7, y=y(tick) + 4, text_anchor="end"))
    for ms in slo:
        dash = {"stroke": "#bc4c00", "stroke_dasharray": "6 4"}
        out.append(_el("line", x1=_L, x2=_L + _PW, y1=y(ms), y2=y(ms), **dash))
        label = f"SLO {_fmt_ms(ms)}"
        out.append(
            _el("text", label, x=_L + _PW - 4, y=y(ms) - 4, text_anchor="end", style="fill:#bc4c00")
        )
    if len(values) > MAX_POINTS:
        buckets = max((MAX_POINTS - 2 * len(runs)) // 2, 50)
        runs = [_thin(run, x.span, buckets) for run in runs]
    count = sum(len(run) for run in runs)
    d = "".join("M" + "L".join(f"{x(t):.1f},{y(v):.1f}" for t, v in run) for run in runs)
    line = {"fill": "none", "stroke": "#0969da", "stroke_width": 1.4, "stroke_linejoin": "round"}
    out.append(_el("path", class_="latency", data_points=count, d=d, **line))
    if count <= 300:
        out += [_el("circle", cx=x(t), cy=y(v), r=2, fill="#0969da") for r in runs for t, v in r]
    label = f"latency ({'log' if y.log else 'linear'} scale)"
    return [*out, _el("text", label, x=_L + 4, y=top + 12, style="font-weight:600")]


_Moment = tuple[float, str, str, str, int]  # x, label, colour, dash, label row


def _moments(view: RunView, x: _X) -> list[_Moment]:
    """Healing actions, the abort and the recovery, each label on the first row it fits in."""
    marks = [
        (h.t, f"{h.playbook}: {h.action}", "#8250df", "4 3")
        for h in view.healing
        if h.t is not None
    ]
    if view.abort and view.abort.t is not None:
        marks.append((view.abort.t, f"abort: {view.abort.reason}", "#cf222e", "none"))
    if view.recovery and view.recovery.t is not None:
        took = fmt_seconds(view.recovery.seconds)
        marks.append((view.recovery.t, f"recovered after {took}", "#1a7f37", "none"))
    placed, row_ends = [], [0.0]
    for t, label, colour, dash in sorted(marks, key=lambda m: m[0]):
        xt, text = x(t), label if len(label) <= 60 else label[:59] + "…"
        row = next((i for i, end in enumerate(row_ends) if end < xt), len(row_ends))
        row_ends[row:] = [xt + 6.4 * len(text) + 12, *row_ends[row + 1 :]]
        placed.append((xt, text, colour, dash, row))
    return placed


def _draw_moments(moments: list[_Moment], y0: float, bottom: float) -> list[str]:
    out = []
    for xt, label, colour, dash, row in moments:
        y = y0 + row * 14
        line = {"x1": xt, "x2": xt, "y1": y - 10, "y2": bottom, "stroke": colour}
        line |= {"stroke_width": 2, "stroke_dasharray": dash}
        style = f"fill:{colour};font-weight:600"
        # Near the right edge the label would run off the plot: end it at the line instead.
        text = _el("text", escaped(label), x=xt + 4, y=y, style=style)
        if xt + 6.4 * len(label) > _W:
            text = _el("text", escaped(label), x=xt - 4, y=y, style=style, text_anchor="end")
        out.append(f"<g><title>{escaped(label)}</title>{_el('line', **line)}{text}</g>")
    return out


def timeline(view: RunView, probe: str, samples: Sequence[Sample], colours: dict[str, str]) -> str:
    """One probe's SVG: phases and faults above, latency, failures, rolling success ratio."""
    x, lanes = _X(view.span), _lanes(view)
    moments = _moments(view, x)
    labels = 24.0 + (max(lanes) + 1 if lanes else 0) * 17 + 11
    top = labels + 14 * (max(m[4] for m in moments) + 1 if moments else 0) - 5
    fail, ratio = top + 206, top + 228
    bottom = ratio + 44
    out = [f'<svg viewBox="0 0 {_W} {bottom + 24:.0f}" role="img" aria-label="{escaped(probe)}">']
    out += _backdrop(view, x, top, bottom, colours)
    out.append(_el("rect", x=_L, y=top, width=_PW, height=200, fill="none", stroke="#d0d7de"))
    out += _latency(view, probe, samples, x, top)
    out.append(
        _el("text", "failed", x=_L - 7, y=fail + 10, text_anchor="end", style="fill:#cf222e")
    )
    for s in samples:
        if not s.ok:
            tip = f"{fmt_seconds(s.t)}: status {s.status if s.status is not None else '—'}"
            tip += f", {s.detail or 'failed'}"
            line = {"x1": x(s.t), "x2": x(s.t), "y1": fail, "y2": fail + 12, "stroke": "#cf222e"}
            out.append(
                _el(
                    "line",
                    f"<title>{escaped(tip)}</title>",
                    class_="fail",
                    stroke_width=1.5,
                    **line,
                )
            )
    if samples:
        d, window = _ratio_path(samples, x, ratio, 44)
        x0, x1 = x(samples[0].t), x(samples[-1].t)
        out.append(_el("rect", x=x0, y=ratio, width=max(x1 - x0, 1.0), height=44, fill="#ffd7d5"))
        out.append(_el("path", d=d, fill="#b7e4c7", stroke="#1a7f37", stroke_width=1))
        label = f"success ratio (rolling {fmt_seconds(window)})"
        out.append(_el("text", escaped(label), x=_L + 4, y=ratio + 11, style="font-weight:600"))
    out.append(_el("rect", x=_L, y=ratio, width=_PW, height=44, fill="none", stroke="#d0d7de"))
    out.append(_el("text", "100%", x=_L - 7, y=ratio + 8, text_anchor="end"))
    out.append(_el("text", "0%", x=_L - 7, y=bottom, text_anchor="end"))
    out += _draw_moments(moments, labels, bottom)
    return "\n".join([*out, "</svg>"])
