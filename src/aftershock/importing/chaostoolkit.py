"""A Chaos Toolkit experiment (JSON or YAML bytes) as an aftershock ``Experiment`` document.

``import_chaostoolkit`` is pure: bytes in, YAML text and located warnings out;
the caller reads and writes the files. The YAML says where each part came from
(``method[1] "terminate-pods" (chaosk8s.pod.actions.terminate_pods)``) and
keeps what it could not translate as comments at the place it had; every such
place is also a warning, so an import with no warning translated everything.

A method in which nothing translates still needs one step to be a valid
document: a placeholder freezes (SIGSTOP) a ``sleep`` that aftershock starts
itself, so the document validates and its steady state can be run as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Final

from aftershock.errors import Problem
from aftershock.importing.context import Context, slug
from aftershock.importing.method import (
    Lookup,
    activity_comment,
    method_steps,
    translate_method,
    translate_rollbacks,
)
from aftershock.importing.probes import EVERY, OVER, translate_probe
from aftershock.importing.refs import References
from aftershock.importing.source import NotChaosToolkit, parse_source
from aftershock.importing.yamlout import Comment, Flow, Noted, dump, scalar
from aftershock.model.common import API_VERSION
from aftershock.model.faults import PROCESS_STOP

__all__ = ["ImportResult", "NotChaosToolkit", "import_chaostoolkit"]

_KNOWN: Final = frozenset(
    {
        "version", "title", "description", "tags", "contributions", "configuration", "secrets",
        "steady-state-hypothesis", "method", "rollbacks", "controls", "runtime", "extensions",
    }
)  # fmt: skip
_NOT_RUN: Final = {
    "controls": "controls (extensions hooked into the run) are not translated",
    "runtime": "runtime settings are not translated; aftershock always reverts every fault",
    "extensions": "extensions are not translated",
}
_PLACEHOLDER: Final = "placeholder"


@dataclass(frozen=True, slots=True)
class ImportResult:
    """One imported experiment: its aftershock YAML and what did not translate."""

    source: str
    name: str
    yaml: str
    warnings: tuple[Problem, ...]


def _name(data: dict[str, Any], file: str) -> str:
    title = str(data.get("title", ""))
    return slug(title, "") or slug(PurePath(file).stem, "imported")


def _literal(text: str) -> str:
    """Text from the input that aftershock must not read as a ``${...}`` reference."""
    return text.replace("${", "$${")


def _annotations(data: dict[str, Any], file: str) -> dict[str, str]:
    out = {"aftershock.dev/imported-from": f"chaostoolkit:{PurePath(file).name}"}
    tags = data.get("tags")
    if isinstance(tags, list) and tags:
        out["chaostoolkit.org/tags"] = ", ".join(str(t) for t in tags)
    contributions = data.get("contributions")
    if isinstance(contributions, dict) and contributions:
        out["chaostoolkit.org/contributions"] = ", ".join(
            f"{k}={v}" for k, v in contributions.items()
        )
    return {key: _literal(value) for key, value in out.items()}


def _description(data: dict[str, Any]) -> str:
    title = str(data.get("title", "")).strip()
    description = data.get("description")
    if not isinstance(description, str) or description.strip() in ("", "n/a", title):
        return _literal(title)
    return _literal(f"{title} — {description.strip()}")


def _hypothesis(
    ctx: Context, data: dict[str, Any], lookup: Lookup
) -> tuple[dict[str, Any], list[object]]:
    probes: dict[str, Any] = {}
    checks: list[object] = []
    hypothesis = data.get("steady-state-hypothesis")
    if hypothesis is None:
        return probes, checks
    items = hypothesis.get("probes") if isinstance(hypothesis, dict) else None
    if not isinstance(items, list):
        ctx.warn(("steady-state-hypothesis",), "the hypothesis has no list of probes")
        return probes, checks
    for i, item in enumerate(items):
        path = ("steady-state-hypothesis", "probes", i)
        act = lookup.resolve(ctx, item, path)
        if act is None:
            continue
        where = f"steady-state-hypothesis.probes[{i}] {act.describe()}"
        out = translate_probe(ctx, act, tolerance=True)
        if out.reason is not None or out.probe is None:
            ctx.warn(path, f"not translated: {act.describe()}: {out.reason}")
            checks.append(activity_comment(act, f"{where}: not translated: {out.reason}"))
            continue
        name = ctx.unique(act.name, "probe")
        probes[name] = Noted(out.probe, (where, *out.notes))
        if out.expect is not None:
            check = {"probe": name, "over": OVER, "expect": out.expect}
            checks.append(Noted(check, (f"tolerance of {where}: {_short(act.data['tolerance'])}",)))
        else:
            checks.append(Comment((f"{where}: no check (its tolerance did not translate)",)))
    return probes, checks


def _short(value: object) -> str:
    if isinstance(value, dict | list):
        return dump(Flow(value)).strip()
    return scalar(value)


def _header(ctx: Context, data: dict[str, Any], file: str) -> list[str]:
    lines = [
        f"Imported by `aftershock import chaostoolkit` from {PurePath(file).name}:",
        f"  {data.get('title')!s}",
        "What differs from `chaos run`, for every imported experiment:",
        f"  - each probe is sampled every {EVERY} and checked over {OVER}, not run once;",
        "  - the hypothesis is checked again after aftershock has reverted the faults and the",
        "    system has recovered; Chaos Toolkit checks it with the faults still applied;",
        "  - aftershock reverts every fault itself (at the end of its step, on abort, after a",
        "    crash), so rollbacks that only undo a fault are dropped.",
    ]
    if ctx.refs.names:
        lines.append("configuration and secrets, as aftershock reads them:")
        for name, ref in sorted(ctx.refs.names.items()):
            shown = ref.described or ref.text or f"not translated: {ref.problem}"
            lines.append(f"  {name} = {shown}")
    for key, reason in _NOT_RUN.items():
        if data.get(key):
            ctx.warn((key,), reason)
            lines.append(f"{key}: not translated: {reason}")
            lines.extend(dump({key: data[key]}, indent=2).rstrip("\n").split("\n"))
    for key in data:
        if key not in _KNOWN:
            ctx.warn((key,), f"unknown key {key!r} is not translated")
    return lines


def _placeholder(ctx: Context, targets: dict[str, Any]) -> list[object]:
    ctx.warn(
        ("method",),
        "no method step translates; a placeholder step (SIGSTOP on a sleep that aftershock "
        "starts) keeps the document valid",
    )
    targets[_PLACEHOLDER] = Noted(
        {"process": {"command": Flow(["sleep", "86400"])}},
        ("placeholder: a process aftershock starts itself, so the placeholder step harms nothing",),
    )
    step = {"name": _PLACEHOLDER, "fault": PROCESS_STOP.name, "target": _PLACEHOLDER}
    note = "placeholder: nothing in the Chaos Toolkit method translated; replace this step"
    return [Noted(step, (note,))]


def import_chaostoolkit(raw: bytes, file: str) -> ImportResult:
    """Translate one experiment; ``NotChaosToolkit`` when ``raw`` is not one."""
    source = parse_source(raw, file)
    data = source.data
    ctx = Context(source, References(data.get("configuration"), data.get("secrets")))
    ctx.warnings.extend(source.notes)
    lookup = Lookup(data)
    probes, checks = _hypothesis(ctx, data, lookup)
    timeline = translate_method(ctx, data["method"], lookup)
    rollbacks = data.get("rollbacks")
    notes = translate_rollbacks(
        ctx, rollbacks if isinstance(rollbacks, list) else [], lookup, timeline
    )
    steps = method_steps(ctx, timeline)
    used = {p.fault.target for p in timeline.placed}
    targets: dict[str, Any] = {n: s for n, s in ctx.targets.items() if n in used}
    if not timeline.placed:
        steps.extend(_placeholder(ctx, targets))
    spec: dict[object, Any] = {"description": _description(data)}
    if targets:
        spec["targets"] = targets
    if probes:
        spec["probes"] = probes
    if checks:
        spec["steadyState"] = checks
    spec["method"] = steps
    if notes:
        spec[Comment(("rollbacks:", *(f"  {n}" for n in notes)))] = None
    header = _header(ctx, data, file)
    if ctx.warnings:
        header.append(
            f"Not translated as written: {len(ctx.warnings)} item(s), marked in the comments"
            " below and listed by the import on stderr."
        )
    document: dict[object, Any] = {
        Comment(tuple(header)): None,
        "apiVersion": API_VERSION,
        "kind": "Experiment",
        "metadata": {"name": _name(data, file), "annotations": _annotations(data, file)},
        "spec": spec,
    }
    return ImportResult(file, _name(data, file), dump(document), tuple(ctx.warnings))
