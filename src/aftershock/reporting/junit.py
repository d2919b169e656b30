"""The JUnit XML of a run, for CI: one suite, a case per verdict, check, expectation and fault.

Every string goes through ``_clean``: control characters from probe output that
XML 1.0 cannot carry are dropped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC

from aftershock.model.results import RunResult, RunStatus
from aftershock.reporting.format import STILL_APPLIED, fmt_pct, fmt_seconds
from aftershock.reporting.view import RunView

__all__ = ["render_junit"]

_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


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
