"""Cross-reference checks that a single field's validator cannot see.

Pure functions over a validated document; each finding is a path into the
document (as in the YAML, e.g. ``("spec", "method", 1, "target")``) and a
message, so the loader can point at the exact line and column.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Final

from aftershock.model.actions import ACTIONS, ActionStep, WaitHealthyParams
from aftershock.model.experiment import BudgetAbort, Experiment, ProbeAbort
from aftershock.model.faults import FAULTS
from aftershock.model.policy import HealingPolicy
from aftershock.model.targets import TargetSpec

__all__ = ["MAX_METHOD_SPAN", "Finding", "check_document"]

Path = tuple[str | int, ...]
Finding = tuple[Path, str]

MAX_METHOD_SPAN: Final = timedelta(hours=24)
"""No step may start or end later than this after the method starts."""


def check_document(doc: Experiment | HealingPolicy) -> list[Finding]:
    """Every cross-reference problem of a document."""
    if isinstance(doc, Experiment):
        return list(_check_experiment(doc))
    return list(_check_policy(doc))


def _kind_mismatch(name: str, target: TargetSpec, expected_prefix: str) -> str | None:
    if target.kind.prefix != expected_prefix:
        return (
            f"{name} acts on {expected_prefix} targets, "
            f"but this target is a {target.kind.value} target"
        )
    return None


def _check_experiment(doc: Experiment) -> Iterator[Finding]:
    yield from _check_method(doc)
    yield from _check_references(doc)


def _check_method(doc: Experiment) -> Iterator[Finding]:
    spec = doc.spec
    seen: set[str] = set()
    for i, step in enumerate(spec.method):
        where: Path = ("spec", "method", i)
        if step.name in seen:
            yield (*where, "name"), f"duplicate step name {step.name!r}"
        seen.add(step.name)
        target = spec.targets.get(step.target)
        if target is None:
            yield (*where, "target"), _unknown("target", step.target, spec.targets)
        else:
            kind, _ = FAULTS[step.fault]
            problem = _kind_mismatch(step.fault, target, kind.prefix)
            if problem:
                yield (*where, "fault"), problem
        end = step.at + (step.for_ or timedelta(0))
        if step.at > MAX_METHOD_SPAN or end > MAX_METHOD_SPAN:
            yield (*where, "for" if step.for_ else "at"), "the step would end more than 24h in"
        if step.for_ is not None and step.for_ <= timedelta(0):
            yield (*where, "for"), "for must be longer than 0s"


def _check_references(doc: Experiment) -> Iterator[Finding]:
    spec = doc.spec
    for name, slo in spec.slo.items():
        if slo.probe not in spec.probes:
            yield ("spec", "slo", name, "probe"), _unknown("probe", slo.probe, spec.probes)
    for i, check in enumerate(spec.steady_state):
        if check.probe not in spec.probes:
            path: Path = ("spec", "steadyState", i, "probe")
            yield path, _unknown("probe", check.probe, spec.probes)
        elif check.expect.body is not None and spec.probes[check.probe].http is None:
            yield ("spec", "steadyState", i, "expect", "body"), "body needs an http probe"
        elif check.over < (every := spec.probes[check.probe].every):
            # A window shorter than the probe's interval may hold no sample at all,
            # and a verdict on no samples is a guess: refuse it here, not at run time.
            yield (
                ("spec", "steadyState", i, "over"),
                (
                    f"over ({_seconds(check.over)}) is shorter than probe {check.probe!r}'s every"
                    f" ({_seconds(every)}), so the window could hold no sample;"
                    f" make it at least {_seconds(every)}"
                ),
            )
    for i, cond in enumerate(spec.abort):
        if isinstance(cond, BudgetAbort) and cond.budget not in spec.slo:
            yield ("spec", "abort", i, "budget"), _unknown("slo", cond.budget, spec.slo)
        if isinstance(cond, ProbeAbort) and cond.probe not in spec.probes:
            yield ("spec", "abort", i, "probe"), _unknown("probe", cond.probe, spec.probes)
    if spec.budget is not None and spec.budget.slo not in spec.slo:
        yield ("spec", "budget", "slo"), _unknown("slo", spec.budget.slo, spec.slo)
    if spec.expect.within is not None and spec.expect.healed_by is None:
        yield ("spec", "expect", "within"), "within needs healedBy"
    if spec.expect.healed_by is not None and spec.healing_policy is None:
        yield ("spec", "expect", "healedBy"), "healedBy needs healingPolicy (the policy file)"


def _seconds(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"


def _check_policy(doc: HealingPolicy) -> Iterator[Finding]:
    spec = doc.spec
    for name, watch in spec.watch.items():
        if watch.target is not None and watch.target not in spec.targets:
            path: Path = ("spec", "watch", name, "target")
            yield path, _unknown("target", watch.target, spec.targets)
    seen: set[str] = set()
    for i, book in enumerate(spec.playbooks):
        where: Path = ("spec", "playbooks", i)
        if book.name in seen:
            yield (*where, "name"), f"duplicate playbook name {book.name!r}"
        seen.add(book.name)
        if book.when.unhealthy not in spec.watch:
            path = (*where, "when", "unhealthy")
            yield path, _unknown("watched probe", book.when.unhealthy, spec.watch)
        for j, step in enumerate(book.steps):
            yield from _check_step(doc, step, (*where, "steps", j))


def _check_step(doc: HealingPolicy, step: ActionStep, at: Path) -> Iterator[Finding]:
    spec = doc.spec
    kind, _ = ACTIONS[step.action]
    if kind is not None:
        if step.target is None:
            yield (*at, "action"), f"{step.action} needs a target"
        elif step.target not in spec.targets:
            yield (*at, "target"), _unknown("target", step.target, spec.targets)
        else:
            problem = _kind_mismatch(step.action, spec.targets[step.target], kind.prefix)
            if problem:
                yield (*at, "action"), problem
    params = step.params
    if isinstance(params, WaitHealthyParams):
        if params.probe not in spec.watch:
            yield (*at, "with", "probe"), _unknown("watched probe", params.probe, spec.watch)
        if params.within > step.timeout:
            yield (*at, "with", "within"), "within is longer than the step's timeout"


def _unknown(what: str, name: str, known: dict[str, object] | object) -> str:
    names = sorted(known) if isinstance(known, dict) else []
    hint = f"; known: {', '.join(names)}" if names else f"; no {what}s are declared"
    return f"unknown {what} {name!r}{hint}"
