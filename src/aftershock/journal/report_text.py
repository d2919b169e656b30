"""Text renderings of a run: a Markdown summary (PR comment, chat) and JUnit XML (CI).

Also holds the number and time formats every renderer shares, so the HTML page,
the Markdown and the JUnit messages print the same figures the same way.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aftershock.model.results import RunResult, RunStatus

if TYPE_CHECKING:
    from aftershock.journal.report import RunView

__all__ = [
    "STILL_APPLIED",
    "fmt_clock",
    "fmt_latency",
    "fmt_moment",
    "fmt_pct",
    "fmt_seconds",
    "render_junit",
    "render_markdown",
]

STILL_APPLIED = "still applied — run `aftershock recover`"
_PROBLEMS_SHOWN = 5
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


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


# ---------------------------------------------------------------- Markdown


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


# ---------------------------------------------------------------- JUnit


def _clean(value: object) -> str:
    """Text XML 1.0 can carry: control characters from probe output are dropped."""
    return _XML_INVALID.sub("", str(value))


class _Suite:
    def __init__(self, element: ET.Element, classname: str) -> None:
        self.element, self.classname = element, classname
        self.tests = self.failures = self.errors = 0

    def case(self, group: str, name: str, *, failure: str = "", error: str = "") -> None:
        case = ET.SubElement(
            self.element,
            "testcase",
            {"classname": _clean(f"{self.classname}.{group}"), "name": _clean(name), "time": "0"},
        )
        self.tests += 1
        if error:
            self.errors += 1
            ET.SubElement(case, "error", {"message": _clean(error), "type": "error"}).text = _clean(
                error
            )
        elif failure:
            self.failures += 1
            ET.SubElement(
                case, "failure", {"message": _clean(failure), "type": "failure"}
            ).text = _clean(failure)


def _verdict_case(suite: _Suite, r: RunResult) -> None:
    message = f"{r.status.value}: {r.reason or 'no reason given'}"
    if r.status in (RunStatus.ERRORED, RunStatus.INTERRUPTED):
        suite.case("run", "verdict", error=message)
    elif r.status in (RunStatus.FAILED, RunStatus.ABORTED):
        suite.case("run", "verdict", failure=message)
    else:
        suite.case("run", "verdict")


def _expectation_cases(suite: _Suite, r: RunResult) -> None:
    if r.recover_within is not None:
        failure = ""
        if r.recovery_seconds is None:
            failure = f"did not recover (expected within {fmt_seconds(r.recover_within)})"
        elif r.recovery_seconds > r.recover_within:
            failure = (
                f"recovered after {fmt_seconds(r.recovery_seconds)}, "
                f"expected within {fmt_seconds(r.recover_within)}"
            )
        suite.case("expect", "recoverWithin", failure=failure)
    if r.healing is not None and r.healing.expected_playbook:
        h, failure = r.healing, ""
        if not h.fired:
            failure = f"healer did not fire (expected {h.expected_playbook})"
        elif h.playbook != h.expected_playbook:
            failure = f"playbook {h.playbook} fired, expected {h.expected_playbook}"
        suite.case("expect", f"healedBy {h.expected_playbook}", failure=failure)
    for b in r.budgets:
        if b.max_spend is not None:
            failure = ""
            if b.spent > b.max_spend:
                failure = f"spent {fmt_pct(b.spent)} of the budget, max {fmt_pct(b.max_spend)}"
            suite.case("budget", f"maxSpend {b.slo}", failure=failure)


def render_junit(view: RunView) -> str:
    """JUnit XML: one suite for the run; a case for the verdict, each check, expectation, fault."""
    r = view.result
    root = ET.Element("testsuites", {"name": "aftershock"})
    element = ET.SubElement(
        root,
        "testsuite",
        {
            "name": _clean(r.experiment),
            "id": _clean(r.run_id),
            "timestamp": r.started_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "time": f"{view.duration or 0:.3f}",
        },
    )
    props = ET.SubElement(element, "properties")
    for name, value in (
        ("run_id", r.run_id),
        ("status", r.status.value),
        ("exit_code", r.status.exit_code),
        ("seed", r.seed),
        ("forced", r.forced),
        ("dry_run", r.dry_run),
    ):
        if value is not None:
            ET.SubElement(props, "property", {"name": name, "value": _clean(value)})
    suite = _Suite(element, f"aftershock.{r.experiment}")
    _verdict_case(suite, r)
    for c in r.checks:
        failure = "" if c.ok else "; ".join(c.failures) or "steady state deviated"
        suite.case("steady-state", f"{c.phase}: {c.probe}", failure=failure)
    _expectation_cases(suite, r)
    for row in view.faults:
        f, error = row.record, row.record.error or ""
        if row.still_applied:
            error = f"{error}; {STILL_APPLIED}" if error else STILL_APPLIED
        suite.case("revert", f"{f.step} ({f.fault} on {f.target})", error=error)
    element.attrib.update(
        tests=str(suite.tests),
        failures=str(suite.failures),
        errors=str(suite.errors),
        skipped="0",
    )
    root.attrib.update(
        tests=str(suite.tests), failures=str(suite.failures), errors=str(suite.errors)
    )
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
