"""The plotted sections of the trends page, each a card of HTML around ``week_plot`` SVGs.

``verdicts`` (runs by verdict, all experiments), ``budget`` (per SLO: spend by
experiment against the window's allowance), ``mttr`` (per fault family),
``healer`` (actions by outcome) and ``experiment`` (one experiment's verdicts,
recovery times and MTTR per family). Every string from the ledger goes through
``escaped``; ``card``, ``legend`` and ``table`` are the page's building blocks.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Final

from aftershock.model.results import RunStatus
from aftershock.reporting.format import escaped, fmt_pct, fmt_seconds
from aftershock.reporting.html import COLOURS
from aftershock.reporting.trends import UNKNOWN_OUTCOME, UNRECORDED, Cell, Trends
from aftershock.reporting.trends_charts import Band, Rule, Series, week_plot

__all__ = [
    "PALETTE",
    "budget",
    "card",
    "experiment",
    "healer",
    "legend",
    "mttr",
    "table",
    "verdicts",
    "window",
]

PALETTE: Final = ("#0969da", "#bf3989", "#1b7c83", "#d4a72c", "#8250df", "#953800", "#2da44e")
"""Colours of named series (experiments, families, outcomes) in order."""
_OTHERS: Final = "#8c959f"
_FAMILIES: Final = {
    "toxiproxy": "#0969da",
    "docker": "#1b7c83",
    "k8s": "#8250df",
    "process": "#bf3989",
    UNRECORDED: _OTHERS,
}
_OUTCOMES: Final = {
    "ok": "#1a7f37",
    "failed": "#cf222e",
    "timeout": "#bc4c00",
    "ignored": "#8c959f",
    "dry-run": "#54aeff",
    UNKNOWN_OUTCOME: "#57606a",
}
_ROLLING, _ALLOWANCE, _LIMIT = "#1f2328", "#cf222e", "#bc4c00"
_MEDIAN, _RANGE, _FIRED = "#1a7f37", "#6e7781", "#1f2328"
_STACKED: Final = len(PALETTE)  # at most this many experiments stacked by name
_ALLOWANCE_SHOWN: Final = 0.2  # below this peak share the 100% allowance would flatten the plot


def card(title: str, body: str, anchor: str = "") -> str:
    """A section with a heading; ``body`` is markup."""
    ident = f' id="{anchor}"' if anchor else ""
    return f'<section class="card"{ident}><h2>{escaped(title)}</h2>{body}</section>'


def legend(items: Iterable[tuple[str, str, str]]) -> str:
    """A legend of (label, colour, kind) with kind ``bar``, ``line`` or ``rule``."""
    spans = "".join(f'<span class="{k}" style="--k:{c}">{escaped(t)}</span>' for t, c, k in items)
    return f'<div class="legend">{spans}</div>'


def table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """A table that scrolls sideways when too wide; cells are markup, ``numeric`` right-aligned."""
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if i in numeric else ''}>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    heads = "".join(
        f"<th{' class=n' if i in numeric else ''}>{escaped(h)}</th>" for i, h in enumerate(head)
    )
    return f'<div class="scroll"><table><tr>{heads}</tr>{body}</table></div>'


def window(seconds: float) -> str:
    """An SLO window for people: ``28d``, or a duration when it is not whole days."""
    days = seconds / 86400
    return f"{days:g}d" if days >= 1 and days == round(days) else fmt_seconds(seconds)


def _named(name: str, known: dict[str, str], names: Sequence[str]) -> str:
    if name in known:
        return known[name]
    unknown = sorted(n for n in names if n not in known)
    return PALETTE[unknown.index(name) % len(PALETTE)]


def _verdict_bars(cells: Sequence[Cell]) -> list[Series]:
    return [Series(s.value, COLOURS[s], [c.verdict(s) for c in cells]) for s in RunStatus]


_VERDICT_LEGEND: Final = [(s.value, COLOURS[s], "bar") for s in RunStatus]


def verdicts(trends: Trends, totals: Sequence[Cell]) -> str:
    """Runs by verdict per period, every experiment together."""
    plot = week_plot(
        trends.periods, label="runs by verdict", kind="count", bars=_verdict_bars(totals)
    )
    return card("Runs by verdict, all experiments", legend(_VERDICT_LEGEND) + plot, "verdicts")


def _stacked(trends: Trends) -> list[tuple[str, str, list[str]]]:
    """(label, colour, experiments): the busiest stacked by name, the rest as one."""
    by_runs = sorted(trends.experiments, key=lambda e: (-trends.experiment_total(e).runs, e))
    named = by_runs if len(by_runs) <= _STACKED + 1 else sorted(by_runs[:_STACKED])
    groups = [(e, PALETTE[i % len(PALETTE)], [e]) for i, e in enumerate(sorted(named))]
    rest = [e for e in trends.experiments if e not in named]
    return groups + ([(f"{len(rest)} other experiments", _OTHERS, rest)] if rest else [])


def _slo(trends: Trends, index: int, groups: list[tuple[str, str, list[str]]]) -> str:
    slo, n = trends.slos[index], len(trends.periods)
    bars = [
        Series(name, colour, [sum(trends.cell(i, e).spend.get(slo.name, 0.0) for e in members)
                              for i in range(n)])
        for name, colour, members in groups
    ]  # fmt: skip
    stacks = [sum(b.values[i] or 0.0 for b in bars) for i in range(n)]
    rolling = f"spent over the rolling {window(slo.window_seconds)} window"
    shown = max(*stacks, *slo.rolling) >= _ALLOWANCE_SHOWN
    rules = [Rule("allowance", _ALLOWANCE, 1.0)] if shown else []
    facts = f"objective {fmt_pct(slo.objective, 3)} · " if slo.objective is not None else ""
    facts += f"window {window(slo.window_seconds)} · {rolling} up to the last week:"
    facts += f" {fmt_pct(slo.rolling[-1])} of the allowance"
    if not rules:
        facts += " (the allowance, 100%, is far above this plot's scale)"
    items = [(b.label, b.colour, "bar") for b in bars] + [(rolling, _ROLLING, "line")]
    items += [("allowance: the window's whole budget", _ALLOWANCE, "rule")] if rules else []
    plot = week_plot(
        trends.periods,
        label=f"error budget of {slo.name}",
        kind="share",
        bars=bars,
        lines=[Series(rolling, _ROLLING, list(slo.rolling))],
        rules=rules,
    )
    heading = f'<h3>{escaped(slo.name)} <span class="muted">{escaped(facts)}</span></h3>'
    return heading + legend(items) + plot


def budget(trends: Trends) -> str:
    """Per SLO: each period's spend by experiment, the rolling window's spend, the allowance."""
    if not trends.slos:
        return card("Error budget per SLO", '<p class="muted">no budget spent in these weeks</p>')
    intro = (
        '<p class="muted">Bars: the budget the runs of each week spent, as a share of the SLO'
        " window's whole budget (its allowance). Line: what runs spent over the window ending"
        " with each bar, as the budget gate counts it.</p>"
    )
    groups = _stacked(trends)
    body = "".join(_slo(trends, i, groups) for i in range(len(trends.slos)))
    return card("Error budget per SLO", intro + body, "budget")


def mttr(trends: Trends, totals: Sequence[Cell]) -> str:
    """Mean time to recovery per fault family and period, every experiment together."""
    families = trends.families
    if not any(c.family_recoveries for c in totals):
        body = '<p class="muted">no recovery measured in these weeks</p>'
        return card("MTTR per fault family", body, "mttr")
    lines = [
        Series(f, _named(f, _FAMILIES, families), [c.mttr(f) for c in totals]) for f in families
    ]
    intro = (
        '<p class="muted">Mean recovery time of the runs that injected a fault of each family'
        " (the part of the fault's name before the dot); a run with faults of two families"
        " counts for both.</p>"
    )
    plot = week_plot(trends.periods, label="MTTR per fault family", kind="seconds", lines=lines)
    items = [(s.label, s.colour, "line") for s in lines]
    return card(
        "MTTR per fault family", intro + legend(items) + plot + _families(trends.total), "mttr"
    )


def _families(total: Cell) -> str:
    rows = []
    for f in sorted(total.family_runs):
        found = total.family_recoveries.get(f, ())
        figures = (
            total.mttr(f),
            statistics.median(found) if found else None,
            max(found, default=None),
        )
        rows.append(
            [escaped(f), str(total.family_runs[f]), str(len(found))]
            + [escaped(fmt_seconds(v)) for v in figures]
        )
    head = ["fault family", "runs", "recoveries", "MTTR", "median", "max"]
    return table(head, rows, (1, 2, 3, 4, 5)) if rows else ""


def healer(trends: Trends, totals: Sequence[Cell]) -> str:
    """Healer actions per period by outcome, and the runs in which the healer acted."""
    outcomes = trends.outcomes
    bars = [
        Series(o, _named(o, _OUTCOMES, outcomes), [c.actions.get(o, 0) for c in totals])
        for o in outcomes
    ]
    fired = Series("runs in which the healer acted", _FIRED, [c.healer_fired for c in totals])
    items = [(f"action {b.label}", b.colour, "bar") for b in bars] + [(fired.label, _FIRED, "line")]
    plot = week_plot(trends.periods, label="healer actions", kind="count", bars=bars, lines=[fired])
    rows = []
    for e in trends.experiments:
        total = trends.experiment_total(e)
        actions = ", ".join(f"{k} ×{v}" for k, v in sorted(total.action_names.items()))  # noqa: RUF001
        outcome = ", ".join(f"{k} {v}" for k, v in sorted(total.actions.items()))
        counts = (total.runs, total.healer_fired, sum(total.actions.values()))
        rows.append(
            [escaped(e), *map(str, counts), escaped(outcome or "—"), escaped(actions or "—")]
        )
    head = ["experiment", "runs", "healer acted", "actions", "by outcome", "by playbook: action"]
    return card("Healer actions", legend(items) + plot + table(head, rows, (1, 2, 3)), "healer")


def experiment(trends: Trends, name: str, anchor: str) -> str:
    """One experiment: runs by verdict, recovery times (median, range, limit), MTTR per family."""
    cells = [trends.cell(i, name) for i in range(len(trends.periods))]
    total = trends.experiment_total(name)
    verdict_plot = week_plot(
        trends.periods, label=f"{name}: runs by verdict", kind="count", bars=_verdict_bars(cells)
    )
    median = Series("median recovery", _MEDIAN, [c.recovery_median for c in cells])
    spread = Band(
        "recovery, fastest to slowest",
        _RANGE,
        [min(c.recoveries, default=None) for c in cells],
        [c.recovery_max for c in cells],
    )
    limit = trends.limits.get(name)
    rules = [Rule("recoverWithin", _LIMIT, limit)] if limit is not None else []
    items = [(median.label, _MEDIAN, "line"), (spread.label, _RANGE, "line")]
    items += [("expect.recoverWithin", _LIMIT, "rule")] if rules else []
    recovery_plot = week_plot(
        trends.periods,
        label=f"{name}: recovery time",
        kind="seconds",
        lines=[median],
        ranges=[spread],
        rules=rules,
    )
    facts = [
        f"{total.runs} runs",
        f"{total.verdict(RunStatus.PASSED)} passed",
        f"{total.forced} forced",
        f"median recovery {fmt_seconds(total.recovery_median)}",
        f"healer acted in {total.healer_fired}",
    ]
    body = (
        f'<p class="muted">{escaped(" · ".join(facts))}</p><h3>Runs by verdict</h3>'
        + legend(_VERDICT_LEGEND)
        + verdict_plot
        + "<h3>Recovery time</h3>"
        + legend(items)
        + recovery_plot
        + _families(total)
    )
    return card(name, body, anchor)
