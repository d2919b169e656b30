"""The trends page: weeks of chaos runs on one self-contained page (inline CSS and SVG).

Like the run report it fetches nothing and runs no script: the same
Content-Security-Policy forbids both. Per week and per experiment it shows
runs by verdict, error budget spent per SLO against its window's allowance,
recovery times and MTTR per fault family, and the healer's actions (the plotted
sections come from ``trends_sections``), then every week's figures in a table.
Every string from the ledger goes through ``escaped``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Final

from aftershock.model.results import RunStatus
from aftershock.reporting.format import escaped, fmt_moment, fmt_pct, fmt_seconds
from aftershock.reporting.trends import MAX_PERIODS, UNRECORDED, Cell, Trends, iso_week
from aftershock.reporting.trends_sections import (
    budget,
    card,
    experiment,
    healer,
    mttr,
    table,
    verdicts,
)

__all__ = ["CONTENT_SECURITY_POLICY", "TRENDS_FILE", "render_trends", "write_trends"]

TRENDS_FILE: Final = "trends.html"
"""What ``write_trends`` writes into its directory."""
CONTENT_SECURITY_POLICY: Final = "default-src 'none'; style-src 'unsafe-inline'"
"""The run report's policy: no fetch of any kind, no script, inline styles only."""
_FOLDED_ROWS: Final = 60  # a longer week-by-week table starts folded
_CSS: Final = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
margin:0;background:#f6f8fa}main{max-width:1200px;margin:0 auto;padding:20px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:14px 18px;margin:14px 0}
h1{font-size:22px;margin:4px 0}h2{font-size:17px;margin:0 0 8px;overflow-wrap:anywhere}
h3{font-size:15px;margin:16px 0 2px;overflow-wrap:anywhere}.muted{color:#59636e;font-weight:400}
dl{display:flex;flex-wrap:wrap;gap:4px 26px;margin:8px 0 0}dl div{display:flex;gap:6px}
dt{color:#59636e}dd{margin:0;font-weight:600}
ul.notes{margin:8px 0 0;padding-left:20px;color:#59636e}
nav{display:flex;flex-wrap:wrap;gap:4px 14px;margin:8px 0 0}
nav a{color:#0969da;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
td{overflow-wrap:anywhere}th{color:#59636e;font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.scroll{overflow-x:auto}.weeks td:first-child{white-space:nowrap}
summary{cursor:pointer;color:#0969da;margin:4px 0}
svg{width:100%;height:auto;display:block}svg text{font:11px system-ui,sans-serif;fill:#424a53}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:#59636e;margin:4px 0}
.legend span{overflow-wrap:anywhere}
.legend span::before{content:"";display:inline-block;width:14px;height:9px;margin-right:5px;
vertical-align:middle;background:var(--k)}.legend .line::before{height:3px}
.legend .rule::before{height:0;background:none;border-top:2px dashed var(--k)}
"""


def _notes(trends: Trends, total: Cell) -> list[str]:
    first = trends.periods[0]
    notes = []
    if first.weeks > 1:
        weeks = len(trends.periods) * first.weeks
        notes.append(f"Each bar is {first.weeks} weeks: {weeks} weeks exceed {MAX_PERIODS} bars.")
    if trends.skipped:
        notes.append(
            f"{trends.skipped} figure(s) in the ledger were not finite, non-negative numbers"
            " and are left out."
        )
    if UNRECORDED in trends.families:
        notes.append(
            "Runs recorded before the ledger kept their faults count under the fault family"
            f" “{UNRECORDED}”."
        )
    if total.unitemised:
        notes.append(
            f"{total.unitemised} run(s) were recorded without their healer actions one by one:"
            " they count in “healer acted”, not in the actions."
        )
    return notes


def _header(trends: Trends, total: Cell, anchors: dict[str, str]) -> str:
    first, last = trends.periods[0], trends.periods[-1]
    weeks = f"{iso_week(first.start)} to {iso_week(last.end - timedelta(days=1))}"
    span = f"{weeks}: {first.start.isoformat()} to {last.end.isoformat()}"
    span += f" (UTC) · the last {trends.weeks} week(s) asked for · made {fmt_moment(trends.now)}"
    facts = [("runs", str(total.runs)), ("experiments", str(len(trends.experiments)))]
    facts += [(s.value, str(total.verdict(s))) for s in RunStatus]
    facts += [("forced", str(total.forced))]
    facts += [("median recovery", fmt_seconds(total.recovery_median))]
    notes = "".join(f"<li>{escaped(n)}</li>" for n in _notes(trends, total))
    links = [("#verdicts", "verdicts"), ("#budget", "error budget"), ("#mttr", "MTTR")]
    links += [("#healer", "healer"), ("#weeks", "week by week")]
    links += [(f"#{anchor}", name) for name, anchor in anchors.items()]
    return (
        '<section class="card"><h1>aftershock: chaos trends</h1>'
        f'<p class="muted">{escaped(span)}</p><dl>'
        + "".join(f"<div><dt>{escaped(k)}</dt><dd>{escaped(v)}</dd></div>" for k, v in facts)
        + "</dl>"
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
        + "<nav>"
        + "".join(f'<a href="{a}">{escaped(t)}</a>' for a, t in links)
        + "</nav></section>"
    )


def _week_rows(trends: Trends) -> list[list[str]]:
    rows = []
    for i in reversed(range(len(trends.periods))):  # the latest week first
        period = trends.periods[i]
        for name in trends.experiments:
            c = trends.cell(i, name)
            if not c.runs:
                continue
            spend = "<br>".join(
                f"{escaped(slo)}: {escaped(fmt_pct(v, 3))}" for slo, v in sorted(c.spend.items())
            )
            families = "<br>".join(
                f"{escaped(f)}: {escaped(fmt_seconds(c.mttr(f)))}" for f in sorted(c.family_runs)
            )
            itemised = c.runs - c.unitemised
            actions = str(sum(c.actions.values())) if itemised else "—"
            rows.append(
                [escaped(period.label), escaped(name), str(c.runs)]
                + [str(c.verdict(s)) for s in RunStatus]
                + [str(c.forced), spend or "—"]
                + [escaped(fmt_seconds(v)) for v in (c.recovery_median, c.recovery_max)]
                + [families or "—", str(c.healer_fired), actions]
            )
    return rows


def _weeks(trends: Trends) -> str:
    rows = _week_rows(trends)
    head = ["week", "experiment", "runs", *(s.value for s in RunStatus), "forced"]
    head += ["budget spent", "median recovery", "max recovery", "MTTR by family"]
    head += ["healer acted", "healer actions"]
    body = table(head, rows, (2, 3, 4, 5, 6, 7, 8, 10, 11, 13, 14))
    folded = len(rows) > _FOLDED_ROWS
    summary = f"<summary>{len(rows)} rows, the latest week first</summary>"
    return card(
        "Week by week",
        f"<details{'' if folded else ' open'} class=weeks>{summary}{body}</details>",
        "weeks",
    )


def render_trends(trends: Trends) -> str:
    """The trends page of ``trends``, one self-contained HTML document."""
    title = "aftershock: chaos trends"
    if not trends.periods:
        body = card(
            title,
            f'<p class="muted">No runs recorded in the last {trends.weeks} week(s)'
            f" up to {escaped(fmt_moment(trends.now))} (dry runs are not counted).</p>",
        )
    else:
        anchors = {name: f"experiment-{i + 1}" for i, name in enumerate(trends.experiments)}
        totals = [trends.period_total(i) for i in range(len(trends.periods))]
        body = (
            _header(trends, Cell.merge(totals), anchors)
            + verdicts(trends, totals)
            + budget(trends)
            + mttr(trends, totals)
            + healer(trends, totals)
            + "".join(experiment(trends, name, anchor) for name, anchor in anchors.items())
            + _weeks(trends)
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escaped(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def write_trends(trends: Trends, directory: Path | str) -> Path:
    """Write ``trends.html`` into ``directory`` (created); return its path."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    path = target / TRENDS_FILE
    path.write_text(render_trends(trends), encoding="utf-8")
    return path
