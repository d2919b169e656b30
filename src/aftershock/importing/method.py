"""The method on a timeline, and what the rollbacks become.

Chaos Toolkit runs the method's activities one after the other, sleeping
``pauses.before`` and ``pauses.after`` around each. A fault therefore starts
(``at``) at the sum of the pauses before it, and lasts until an action of the
method undoes it (``delete_toxic``, ``enable_proxy``, ``uncordon_node``) or
else to the end of the method (``for``). The activities themselves are taken
to be instant: their own run time is not known before the run.

aftershock reverts every fault itself, at the end of its step, on abort and
after a crash. A rollback that only undoes a translated fault is therefore
dropped, with a note where it was; any other rollback is kept as a note, and
reported, because aftershock will not run it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from aftershock.importing import kubernetes, toxiproxy
from aftershock.importing.context import Activity, Context, duration_text
from aftershock.importing.source import Path
from aftershock.importing.steps import (
    Fault,
    Handler,
    NotTranslated,
    Phase,
    Setup,
    Translation,
    Undo,
)
from aftershock.importing.yamlout import Comment, Noted, dump

__all__ = ["HANDLERS", "Lookup", "Timeline", "translate_method", "translate_rollbacks"]

HANDLERS: Final[dict[tuple[str, str], Handler]] = {**toxiproxy.HANDLERS, **kubernetes.HANDLERS}
_PROVIDER_SECRETS: Final = (
    "provider secrets are not used: aftershock connects with its own configuration "
    "(kubeconfig, the Toxiproxy API URL)"
)


class Lookup:
    """Activities by name, for ``ref``: hypothesis probes, method and rollbacks."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.by_name: dict[str, Activity] = {}
        hypothesis = data.get("steady-state-hypothesis")
        probes = hypothesis.get("probes") if isinstance(hypothesis, dict) else None
        for section, items in (
            (("steady-state-hypothesis", "probes"), probes),
            (("method",), data.get("method")),
            (("rollbacks",), data.get("rollbacks")),
        ):
            for i, item in enumerate(items if isinstance(items, list) else []):
                if isinstance(item, dict) and "ref" not in item and "name" in item:
                    self.by_name.setdefault(str(item["name"]), Activity((*section, i), item))

    def resolve(self, ctx: Context, item: object, path: Path) -> Activity | None:
        """The activity at ``path`` (following a ``ref``), or ``None`` with a warning."""
        if not isinstance(item, dict):
            ctx.warn(path, "an activity must be a mapping; not translated")
            return None
        if "ref" in item:
            found = self.by_name.get(str(item["ref"]))
            if found is None:
                ctx.warn(path, f"ref {item['ref']!r} names no activity; not translated")
                return None
            return Activity(path, found.data)
        return Activity(path, item)


def activity_comment(act: Activity, headline: str) -> Comment:
    """The activity as written, under ``headline``, as comment lines."""
    body = dump(act.data, indent=2).rstrip("\n").split("\n")
    return Comment((headline, *body))


def _where(path: Path) -> str:
    head, *rest = path
    return str(head) + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest)


def translate_action(ctx: Context, act: Activity, phase: Phase) -> Translation:
    """What one method or rollback activity becomes."""
    kind = act.provider_type
    if act.kind == "probe":
        return NotTranslated(
            "a method probe only collects data in Chaos Toolkit (aftershock records the samples "
            "of its own probes throughout the run)"
        )
    if kind == "python":
        handler = HANDLERS.get(act.function)
        if handler is None:
            module, func = act.function
            return NotTranslated(f"{module}.{func} has no aftershock fault")
        if act.provider.get("secrets"):
            ctx.warn((*act.path, "provider", "secrets"), _PROVIDER_SECRETS)
        return handler(ctx, act, phase)
    if kind == "process":
        return NotTranslated(
            "aftershock runs no commands during the method (a command is a healing action); "
            "run it beside the experiment, or make it a process target"
        )
    if kind == "http":
        return NotTranslated("aftershock makes no HTTP calls during the method")
    return NotTranslated(f"provider type {kind!r} is not translated")


@dataclass
class Placed:
    """A fault placed on the timeline."""

    fault: Fault
    act: Activity
    at: float
    end: float | None = None
    name: str = ""


@dataclass
class Timeline:
    """The translated method: steps and comments in their order, and the method's length."""

    entries: list[Placed | Comment] = field(default_factory=list)
    length: float = 0.0

    @property
    def placed(self) -> list[Placed]:
        """Every placed fault."""
        return [e for e in self.entries if isinstance(e, Placed)]


def _pause(ctx: Context, act: Activity, which: str) -> float:
    pauses = act.data.get("pauses")
    if not isinstance(pauses, dict) or pauses.get(which) is None:
        return 0.0
    value = ctx.value(pauses[which], (*act.path, "pauses", which), _seconds)
    return float(value) if value is not None else 0.0


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"a pause is a number of seconds, got {value!r}")
    number = float(value)
    if not 0 <= number <= 86400:
        raise ValueError(f"a pause is 0 to 86400 seconds, got {value!r}")
    return number


def _matches(keys: tuple[tuple[str, ...], ...], fault: Fault) -> bool:
    for key in keys:
        if key == ("*toxiproxy",) and fault.fault.startswith("toxiproxy."):
            return True
        if fault.key and key == fault.key:
            return True
    return False


def translate_method(ctx: Context, items: list[Any], lookup: Lookup) -> Timeline:
    """Every method activity placed on the timeline, or kept as a comment."""
    timeline = Timeline()
    t = 0.0
    for i, item in enumerate(items):
        path: Path = ("method", i)
        act = lookup.resolve(ctx, item, path)
        if act is None:
            timeline.entries.append(
                Comment((f"{_where(path)}: not translated (see the warnings)",))
            )
            continue
        t += _pause(ctx, act, "before")
        result = translate_action(ctx, act, "method")
        headline = f"{_where(path)} {act.describe()}"
        if isinstance(result, list):
            for fault in result:
                # A later change of the same thing (scaling again) ends the earlier step.
                for placed in timeline.placed:
                    if placed.end is None and fault.key and placed.fault.key == fault.key:
                        placed.end = t
                timeline.entries.append(Placed(fault, act, t))
        elif isinstance(result, Undo):
            ended = [p for p in timeline.placed if p.end is None and _matches(result.keys, p.fault)]
            for placed in ended:
                placed.end = t
            if not ended:
                ctx.warn(path, f"{result.what}, but no earlier step of the method applied it")
            timeline.entries.append(Comment((f"{headline}: {result.what}; ends a step here",)))
        elif isinstance(result, Setup):
            timeline.entries.append(Comment((f"{headline}: {result.note}",)))
        else:
            ctx.warn(path, f"not translated: {act.describe()}: {result.reason}")
            timeline.entries.append(
                activity_comment(act, f"{headline}: not translated: {result.reason}")
            )
        t += _pause(ctx, act, "after")
    timeline.length = t
    for placed in timeline.placed:
        placed.name = ctx.unique(placed.fault.name, "step")
    return timeline


def _duration(seconds: float) -> str:
    return duration_text(timedelta(seconds=seconds))


def _pauses(act: Activity) -> str:
    pauses = act.data.get("pauses")
    if not isinstance(pauses, dict):
        return ""
    parts = [f"{k} {pauses[k]}s" for k in ("before", "after") if pauses.get(k) is not None]
    return f", pauses {', '.join(parts)}" if parts else ""


def method_steps(ctx: Context, timeline: Timeline) -> list[object]:
    """The ``method:`` list: each step with a note on where it came from."""
    out: list[object] = []
    for entry in timeline.entries:
        if isinstance(entry, Comment):
            out.append(entry)
            continue
        fault, act = entry.fault, entry.act
        step: dict[str, Any] = {"name": entry.name, "fault": fault.fault, "target": fault.target}
        if fault.params:
            step["with"] = fault.params
        if entry.at:
            step["at"] = _duration(entry.at)
        end = timeline.length if entry.end is None else entry.end
        timing = "instant"
        if not fault.instant and end > entry.at:
            step["for"] = _duration(end - entry.at)
            until = "an action undoes it" if entry.end is not None else "the method ends"
            timing = f"lasts until {until}"
        notes = (f"{_where(act.path)} {act.describe()}{_pauses(act)}; {timing}", *fault.notes)
        out.append(Noted(step, notes))
    return out


def translate_rollbacks(
    ctx: Context, items: list[Any], lookup: Lookup, timeline: Timeline
) -> list[str]:
    """A note per rollback: dropped as an implicit revert, or kept (and reported)."""
    notes: list[str] = []
    for i, item in enumerate(items):
        path: Path = ("rollbacks", i)
        act = lookup.resolve(ctx, item, path)
        if act is None:
            notes.append(f"{_where(path)}: not translated (see the warnings)")
            continue
        headline = f"{_where(path)} {act.describe()}"
        result = translate_action(ctx, act, "rollbacks")
        if isinstance(result, list):
            keys = tuple(f.key for f in result if f.key)
            result = Undo(keys, "restores what a step changed") if keys else result
        if isinstance(result, Undo):
            undone = [p.name for p in timeline.placed if _matches(result.keys, p.fault)]
            if undone:
                names = ", ".join(undone)
                notes.append(f"{headline}: {result.what}; aftershock reverts {names} itself")
                continue
            ctx.warn(
                path,
                f"this rollback {result.what}, which no translated step applied; dropped "
                "(aftershock reverts every fault it applies)",
            )
            notes.append(f"{headline}: {result.what}, but no step applied it; dropped")
            continue
        if isinstance(result, Setup):
            notes.append(f"{headline}: {result.note}")
            continue
        reason = result.reason if isinstance(result, NotTranslated) else "it applies a fault"
        ctx.warn(path, f"rollback not translated (not run): {act.describe()}: {reason}")
        body = dump(act.data, indent=2).rstrip("\n").split("\n")
        notes.extend((f"{headline}: kept as a note, not run: {reason}", *body))
    return notes
