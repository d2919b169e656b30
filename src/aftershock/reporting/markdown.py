"""The Markdown summary of a run (a PR comment, a chat message).

Every table cell goes through ``_cell``: no pipes or newlines, no raw HTML.
"""

from __future__ import annotations

from collections.abc import Iterable

from aftershock.model.results import RunResult, RunStatus
from aftershock.reporting.format import (
    STILL_APPLIED,
    fmt_clock,
    fmt_latency,
    fmt_moment,
    fmt_pct,
    fmt_seconds,
)
from aftershock.reporting.view import RunView

__all__ = ["render_markdown"]

_PROBLEMS_SHOWN = 5


def _cell(value: object) -> str:
    """A Markdown table cell: no pipes or newlines, no raw HTML."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|")


def _table(head: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


_ICONS = {
    RunStatus.PASSED: "✅",
    RunStatus.FAILED: "❌",
    RunStatus.ABORTED: "🛑",
    RunStatus.ERRORED: "💥",
    RunStatus.INTERRUPTED: "⚠️",
}


def _recovery_line(r: RunResult) -> str:
    if r.recovery_seconds is None and r.recover_within is None:
        return "not measured"
    text = fmt_seconds(r.recovery_seconds) if r.recovery_seconds is not None else "not recovered"
    if r.recover_within is not None:
        met = r.recovery_seconds is not None and r.recovery_seconds <= r.recover_within
        text += f" (expected within {fmt_seconds(r.recover_within)}: {'met' if met else 'MISSED'})"
    return text


def _healing_line(r: RunResult) -> str:
    h = r.healing
    if h is None:
        return "no healer expected or seen"
    if not h.fired:
        expected = f" (expected `{_cell(h.expected_playbook)}`)" if h.expected_playbook else ""
        return f"did not fire{expected}"
    return (
        f"`{_cell(h.playbook)}` fired: first action after {fmt_seconds(h.first_action_after)}, "
        f"healthy after {fmt_seconds(h.healthy_after)}"
    )


def render_markdown(view: RunView) -> str:
    """A short summary of the run: verdict, budget, recovery, healing, checks and faults."""
    r = view.result
    lines = [
        f"### {_ICONS[r.status]} {r.status.value.upper()}: {_cell(r.experiment)}",
        "",
    ]
    if r.reason:
        lines += [f"> {_cell(r.reason)}", ""]
    meta = [f"run `{_cell(r.run_id)}`", f"started {fmt_moment(r.started_at)}"]
    meta.append(f"duration {fmt_seconds(view.duration)}")
    if r.seed is not None:
        meta.append(f"seed {r.seed}")
    meta += [flag for flag, on in (("**forced**", r.forced), ("dry run", r.dry_run)) if on]
    lines += [" · ".join(meta), ""]
    if r.budgets:
        lines += _table(
            ["SLO", "budget spent", "max spend", "burn rate", "remaining before"],
            (
                [
                    b.slo,
                    fmt_pct(b.spent),
                    fmt_pct(b.max_spend),
                    f"{b.burn_rate:.1f}×",  # noqa: RUF001
                    fmt_pct(b.remaining_before),
                ]
                for b in r.budgets
            ),
        )
        lines.append("")
    lines += [f"**Recovery:** {_recovery_line(r)}  ", f"**Healing:** {_healing_line(r)}", ""]
    if not view.finished:
        lines += ["_The run did not finish: no steady-state verdict, budget or expectations._", ""]
    if view.problems:
        lines.append(f"**Journal problems** ({len(view.problems)}, skipped):")
        lines += [f"- {_cell(p)}" for p in view.problems[:_PROBLEMS_SHOWN]]
        if len(view.problems) > _PROBLEMS_SHOWN:
            lines.append(
                f"- … and {len(view.problems) - _PROBLEMS_SHOWN} more (see the HTML report)"
            )
        lines.append("")
    if r.checks:
        lines += _table(
            ["phase", "probe", "ok", "samples", "success", "p95", "failures"],
            (
                [
                    c.phase,
                    c.probe,
                    "✅" if c.ok else "❌",
                    str(c.samples),
                    fmt_pct(c.success_ratio, 1),
                    fmt_latency(c.p95),
                    "; ".join(c.failures) or "—",
                ]
                for c in r.checks
            ),
        )
        lines.append("")
    if view.faults:
        lines += _table(
            ["step", "fault", "target", "reverted"],
            (
                [
                    row.record.step,
                    row.record.fault,
                    row.record.target,
                    STILL_APPLIED
                    if row.still_applied
                    else row.record.error or fmt_clock(row.record.reverted_at, r.started_at),
                ]
                for row in view.faults
            ),
        )
        lines.append("")
    return "\n".join(lines)
