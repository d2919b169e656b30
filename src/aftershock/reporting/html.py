"""The HTML report: one self-contained page (inline CSS and SVG, no scripts, no network).

A Content-Security-Policy forbids every fetch, so the page looks the same
offline, in a CI artifact viewer or a mail attachment. Every string from the
journal goes through ``escaped``. The per-probe timelines are SVG, drawn by
``aftershock.reporting.charts``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aftershock.model.results import RunResult, RunStatus
from aftershock.reporting.charts import timeline
from aftershock.reporting.format import (
    STILL_APPLIED,
    escaped,
    fmt_clock,
    fmt_latency,
    fmt_moment,
    fmt_pct,
    fmt_seconds,
)
from aftershock.reporting.view import RunView

__all__ = ["COLOURS", "render_html"]

COLOURS = {
    RunStatus.PASSED: "#1a7f37",
    RunStatus.FAILED: "#cf222e",
    RunStatus.ABORTED: "#bc4c00",
    RunStatus.ERRORED: "#8250df",
    RunStatus.INTERRUPTED: "#57606a",
}
_FAULT_FILLS = ("#d4a72c", "#bf3989", "#0969da", "#1b7c83", "#8250df", "#953800")
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
margin:0;background:#f6f8fa}main{max-width:1200px;margin:0 auto;padding:20px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:14px 18px;margin:14px 0}
.verdict{border-left:10px solid var(--c)}.status{font-size:40px;font-weight:800;color:var(--c);
letter-spacing:.04em;line-height:1.1}.reason{font-size:17px;margin:4px 0 8px}
h1{font-size:20px;margin:6px 0}h2{font-size:16px;margin:0 0 8px}h3{font-size:15px;margin:16px 0 2px}
.muted{color:#59636e;font-weight:400}dl{display:flex;flex-wrap:wrap;gap:4px 26px;margin:8px 0 0}
dl div{display:flex;gap:6px}dt{color:#59636e}dd{margin:0;font-weight:600}
.grid{display:grid;gap:14px;grid-template-columns:2fr 1fr 1.1fr}
@media (max-width:900px){.grid{grid-template-columns:1fr}}
.grid .card{margin:0}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{color:#59636e;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.big{font-size:26px;font-weight:700}.ok{color:#1a7f37;font-weight:700}
.bad{color:#cf222e;font-weight:700}.bar{height:8px;background:#eaeef2;border-radius:4px;
position:relative;min-width:90px;margin:5px 0}.bar i{position:absolute;left:0;top:0;bottom:0;
border-radius:4px}.bar b{position:absolute;top:-3px;bottom:-3px;width:2px;background:#1f2328}
svg{width:100%;height:auto;display:block}svg text{font:11px system-ui,sans-serif;fill:#424a53}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;color:#59636e}
.legend span::before{content:"";display:inline-block;width:14px;height:9px;margin-right:5px;
vertical-align:middle;background:var(--k)}code{font-size:12px}
"""
_LEGEND = "".join(
    f'<span style="--k:{k}">{label}</span>'
    for k, label in (
        ("#0969da", "latency of successful samples"), ("#cf222e", "failed sample"),
        ("linear-gradient(90deg,#b7e4c7 60%,#ffd7d5 60%)", "success ratio (rolling)"),
        ("#d4a72c55", "fault window"), ("#f2f5f9", "phase"), ("#bc4c00", "SLO latency"),
        ("#cf222e", "abort"), ("#1a7f37", "recovered"), ("#8250df", "healing action"),
    )
)  # fmt: skip


def _card(title: str, body: str) -> str:
    return f'<section class="card"><h2>{escaped(title)}</h2>{body}</section>'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """Cells are markup (escape them first); ``numeric`` columns are right-aligned."""
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if i in numeric else ''}>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{''.join(f'<th>{escaped(h)}</th>' for h in head)}</tr>{body}</table>"


def _mark(ok: bool | None, yes: str = "✓ met", no: str = "✗ missed") -> str:
    if ok is None:
        return '<span class="muted">—</span>'
    return (
        f'<span class="ok">{escaped(yes)}</span>'
        if ok
        else f'<span class="bad">{escaped(no)}</span>'
    )


def _header(view: RunView) -> str:
    r = view.result
    meta = [
        ("run id", f"<code>{escaped(r.run_id)}</code>"),
        ("started", escaped(fmt_moment(r.started_at))),
        ("duration", escaped(fmt_seconds(view.duration))),
        ("seed", escaped(r.seed if r.seed is not None else "—")),
        ("forced", '<span class="bad">yes, budget gate skipped</span>' if r.forced else "no"),
        ("exit code", escaped(r.status.exit_code)),
    ] + ([("dry run", "yes")] if r.dry_run else [])
    desc = f'<p class="muted">{escaped(view.description)}</p>' if view.description else ""
    return (
        f'<section class="card verdict" style="--c:{COLOURS[r.status]}">'
        f'<div class="status">{escaped(r.status.value.upper())}</div>'
        f'<div class="reason">{escaped(r.reason or "—")}</div>'
        f"<h1>{escaped(r.experiment)}</h1>{desc}<dl>"
        + "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in meta)
        + "</dl></section>"
    )


def _budget(r: RunResult) -> str:
    rows = []
    for b in r.budgets:
        ok = None if b.max_spend is None else b.spent <= b.max_spend
        # The max-spend tick sits at 70% of the bar, so an overspend still shows.
        width = b.spent / b.max_spend * 70 if b.max_spend else b.spent * 100
        width = min(max(width, 0.0), 100.0)  # a tiny max_spend can make the share infinite
        tick = '<b style="left:70%"></b>' if b.max_spend else ""
        colour = "#cf222e" if ok is False else "#1a7f37"
        bar = f'<div class="bar"><i style="width:{width:.1f}%;background:{colour}"></i>{tick}</div>'
        cells = [fmt_pct(b.spent), fmt_pct(b.max_spend), f"{b.burn_rate:.1f}×"]  # noqa: RUF001
        cells.append(fmt_pct(b.remaining_before))
        rows.append([escaped(b.slo), *map(escaped, cells), bar + _mark(ok)])
    head = ["SLO", "spent", "max spend", "burn rate", "left before", ""]
    body = _table(head, rows, (1, 2, 3, 4)) if rows else '<p class="muted">not computed</p>'
    return _card("Error budget (share of the SLO window)", body)


def _recovery(r: RunResult) -> str:
    if r.recover_within is None:
        value, expect = fmt_seconds(r.recovery_seconds), "no recoverWithin expectation"
        value = "not measured" if r.recovery_seconds is None else value
    else:
        met = r.recovery_seconds is not None and r.recovery_seconds <= r.recover_within
        value = fmt_seconds(r.recovery_seconds) if r.recovery_seconds is not None else "none"
        expect = f"expected within {escaped(fmt_seconds(r.recover_within))} {_mark(met)}"
    return _card("Recovery", f'<div class="big">{escaped(value)}</div><div>{expect}</div>')


def _healing(view: RunView) -> str:
    h = view.result.healing
    if h is None:
        return _card("Healing", '<p class="muted">no healer expected or seen</p>')
    expected = None if not h.expected_playbook else h.fired and h.playbook == h.expected_playbook
    rows = [
        ["expected", f"{escaped(h.expected_playbook or '—')} {_mark(expected)}"],
        ["fired", _mark(h.fired, "✓ yes", "✗ no")],
        ["playbook", escaped(h.playbook or "—")],
        ["first action after", escaped(fmt_seconds(h.first_action_after))],
        ["healthy after", escaped(fmt_seconds(h.healthy_after))],
    ]
    return _card("Healing", _table(["", ""], rows))


def _checks(r: RunResult) -> str:
    rows = [
        [escaped(c.phase), escaped(c.probe), _mark(c.ok, "✓ ok", "✗ deviated"), escaped(c.samples)]
        + [escaped(fmt_pct(c.success_ratio))]
        + [escaped(fmt_latency(v)) for v in (c.p50, c.p95, c.p99)]
        + ["<br>".join(escaped(f) for f in c.failures) or "—"]
        for c in r.checks
    ]
    head = ["phase", "probe", "result", "samples", "success", "p50", "p95", "p99", "failures"]
    body = _table(head, rows, (3, 4, 5, 6, 7)) if rows else '<p class="muted">none evaluated</p>'
    return _card("Steady state", body)


def _faults(view: RunView) -> str:
    start, rows = view.result.started_at, []
    for row in view.faults:
        f = row.record
        state = [escaped(f.error)] if f.error else []
        if row.still_applied:
            state.append(f'<span class="bad">{escaped(STILL_APPLIED)}</span>')
        rows.append(
            [escaped(f.step), escaped(f.fault), escaped(f.target)]
            + ["<br>".join(f"<code>{escaped(x)}</code>" for x in f.resources) or "—"]
            + [
                escaped(fmt_clock(at, start))
                for at in (f.injected_at, f.reverted_at, f.verified_at)
            ]
            + ["<br>".join(state) or '<span class="ok">reverted</span>']
        )
    head = ["step", "fault", "target", "resources", "injected", "reverted", "verified", "error"]
    return _card("Faults", _table(head, rows) if rows else '<p class="muted">none injected</p>')


def _extras(view: RunView) -> str:
    """Healing actions and journal problems, when there are any."""
    out = ""
    if view.healing:
        rows = [
            [
                escaped(fmt_seconds(h.t)),
                escaped(h.playbook),
                escaped(h.action),
                escaped(h.outcome or "—"),
            ]
            for h in view.healing
        ]
        out += _card("Healing actions", _table(["at", "playbook", "action", "outcome"], rows))
    if view.problems:
        items = "".join(f"<li><code>{escaped(p)}</code></li>" for p in view.problems)
        out += _card("Journal problems", f"<ul>{items}</ul>")
    return out


def _probe_heading(view: RunView, probe: str) -> str:
    facts = f"{len(view.samples[probe])} samples"
    for p in view.result.probes:
        if p.probe == probe:
            facts += f" · success {fmt_pct(p.success_ratio)}" + "".join(
                f" · {n} {fmt_latency(v)}"
                for n, v in (("p50", p.p50), ("p95", p.p95), ("p99", p.p99))
            )
    return f'<h3>{escaped(probe)} <span class="muted">{escaped(facts)}</span></h3>'


def render_html(view: RunView) -> str:
    """The report page: verdict, figures, per-probe timelines and the faults, in one file."""
    r, colours = view.result, dict[str, str]()
    for w in view.windows:
        colours.setdefault(w.step, _FAULT_FILLS[len(colours) % len(_FAULT_FILLS)])
    plots = "".join(
        _probe_heading(view, p) + timeline(view, p, samples, colours)
        for p, samples in view.samples.items()
    )
    timelines = f'<div class="legend">{_LEGEND}</div>{plots or "<p>no probes</p>"}'
    csp = "default-src 'none'; style-src 'unsafe-inline'"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escaped(f'aftershock: {r.experiment} {r.status.value}')}</title>"
        f"<style>{_CSS}</style></head><body><main>{_header(view)}"
        f'<div class="grid">{_budget(r)}{_recovery(r)}{_healing(view)}</div>'
        f"{_checks(r)}{_card('Timeline', timelines)}{_faults(view)}{_extras(view)}"
        f'<p class="muted">journal: <code>{escaped(view.journal)}</code></p></main></body></html>\n'
    )
