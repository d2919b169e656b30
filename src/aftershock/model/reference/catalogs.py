"""The pages built from the catalogs: every fault, every healing action, and the index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from aftershock.model.actions import ActionStepBase, ActionType
from aftershock.model.faults import FaultStepBase, FaultType
from aftershock.model.reference import examples as ex
from aftershock.model.reference.fields import field_rows, table
from aftershock.model.reference.sections import GENERATED, LINKS, code, describe, section
from aftershock.model.targets import TargetKind

__all__ = ["actions_page", "faults_page", "index_page"]


def _with_line(entry: FaultType[Any] | ActionType[Any]) -> str:
    if not entry.params.model_fields:
        return "takes no parameters (`with:` is omitted)"
    if entry.params_required:
        return "`with:` is **required**"
    return "`with:` is optional: every parameter has a default"


def _entry(entry: FaultType[Any] | ActionType[Any], target: str, example: str) -> str:
    parts = [
        f'<a id="{entry.name}"></a>\n\n### `{entry.name}`\n',
        f"{entry.summary}\n",
        f"- Target: {target}\n- Parameters: {_with_line(entry)}\n",
    ]
    if entry.params.model_fields:
        parts.append(describe(entry.params) + "\n")
        parts.append(table(field_rows(entry.params, LINKS)))
    parts.append(code(example))
    return "\n".join(parts)


def _kind_link(kind: TargetKind) -> str:
    return f"a [`{kind.value}` target](targets.md#{kind.value})"


def faults_page(faults: Sequence[FaultType[Any]]) -> str:
    """``faults.md``: the method step, then every fault with its parameters and example."""
    parts = [
        GENERATED,
        "# Faults\n",
        (
            "An experiment's `spec.method` is a list of steps; each applies one fault to one "
            "target for a while, and every fault is reverted when its window (or the method) "
            "ends, or the run stops for any reason.\n"
        ),
        section(
            FaultStepBase,
            "Method steps",
            types_of={"fault": "a fault name (below)", "with": "the fault's parameters (below)"},
            defaults_of={"with": "`{}` unless the fault requires it"},
        ),
    ]
    for kind in TargetKind:
        of_kind = [f for f in faults if f.kind is kind]
        if of_kind:
            parts.append(f"## {kind.value}\n")
            parts.extend(_entry(f, _kind_link(f.kind), ex.fault_example(f)) for f in of_kind)
    return "\n".join(parts)


_ERRORS: Final = (
    "`errors` says what a failure of the step means: `temporary` retries the playbook later "
    "with backoff, `permanent` gives up and escalates, `ignore` goes on with the next step."
)


def actions_page(actions: Sequence[ActionType[Any]]) -> str:
    """``actions.md``: the playbook step, then every healing action with an example."""
    parts = [
        GENERATED,
        "# Healing actions\n",
        (
            "A playbook's `steps` run in order when its condition holds. Driver actions act on a "
            "named target of the policy; `http.call`, `command` and `wait.healthy` stand alone.\n"
        ),
        section(
            ActionStepBase,
            "Playbook steps",
            intro=_ERRORS,
            types_of={"action": "an action name (below)", "with": "the action's parameters"},
            defaults_of={"with": "`{}` unless the action requires it"},
        ),
    ]
    groups: list[tuple[str, list[ActionType[Any]]]] = [
        (kind.value, [a for a in actions if a.kind is kind]) for kind in TargetKind
    ]
    groups.append(("standalone", [a for a in actions if a.kind is None]))
    for title, entries in groups:
        if entries:
            parts.append(f"## {title}\n")
            for a in entries:
                target = _kind_link(a.kind) if a.kind is not None else "none (standalone)"
                parts.append(_entry(a, target, ex.action_example(a)))
    return "\n".join(parts)


_TYPES: Final[tuple[tuple[str, str, str], ...]] = (
    (
        "duration",
        "duration",
        (
            "A length of time with its unit: `300ms`, `5s`, `10m`, `1h30m`, `28d`, `2w` (units "
            "`ms`, `s`, `m`, `h`, `d`, `w`; parts add up). A bare number is an error: `5` could "
            "mean seconds or milliseconds. At most ten years."
        ),
    ),
    (
        "percentage",
        "percentage",
        "A share with its `%` sign, 0% to 100%: `99.9%`, `5%`. A bare number is an error.",
    ),
    (
        "comparison",
        "comparison",
        (
            "An operator (`<`, `<=`, `>`, `>=`, `==`, `!=`) and a value, quoted in YAML: "
            'a ratio (`">= 0.99"` or `">= 99%"`), a duration (`"< 200ms"`) or a plain '
            'number (`"< 0.05"`), as the field says.'
        ),
    ),
    (
        "text",
        "text",
        (
            "A string that may hold a secret: `${secret:NAME}` is replaced by the environment "
            "variable `NAME` and the value is never shown in journals, reports or logs (it "
            "prints as `***`). Any string field also takes `${VAR}` and `${VAR:-default}`, "
            "substituted when the file is loaded; only text fields take a secret."
        ),
    ),
    ("url", "URL", "An `http://` or `https://` URL with a host; text, so it may hold a secret."),
    (
        "name",
        "name",
        (
            "A reference name (targets, probes, SLOs, steps, playbooks, documents): 1 to 63 "
            "lowercase letters, digits, `-`, `_` or `.`, starting and ending with a letter or "
            "digit."
        ),
    ),
    ("hostport", "host:port", "An address such as `127.0.0.1:5432` or `[::1]:8080`."),
    ("regex", "regular expression", "A Python regular expression, checked when loaded."),
    (
        "signal",
        "signal",
        "A POSIX signal name, with or without `SIG`: `SIGKILL`, `TERM`, `sighup`.",
    ),
    (
        "jsonpath",
        "JSONPath",
        (
            "A path into a JSON body: `$.status`, `$.items[0].state`, `$['key with.dots']`. "
            "Filters, wildcards and slices are not supported."
        ),
    ),
    ("status", "HTTP status codes", "A list of codes between 100 and 599: `[200, 204]`."),
    (
        "pick",
        "count or share",
        "How many of the matching containers to act on: a count (`1`) or a share (`50%`).",
    ),
    (
        "mode",
        "selection mode",
        "Which of the selected pods: `one`, `all`, `fixed:N` or `percent:P` (1 to 100).",
    ),
    ("cron", "cron expression", "Five fields, as cron writes them: `0 3 * * MON`."),
    ("timezone", "time zone", "An IANA time zone name: `UTC`, `Europe/Berlin`."),
    ("time-of-day", "time of day", "`HH:MM` on a 24-hour clock: `09:30`, `23:59`."),
)


def _catalog_table(entries: Sequence[FaultType[Any] | ActionType[Any]], page: str) -> str:
    lines = ["| name | target | does |", "|---|---|---|"]
    for e in entries:
        kind = f"`{e.kind.value}`" if e.kind is not None else "—"
        lines.append(f"| [`{e.name}`]({page}#{e.name}) | {kind} | {e.summary} |")
    return "\n".join(lines) + "\n"


def index_page(faults: Sequence[FaultType[Any]], actions: Sequence[ActionType[Any]]) -> str:
    """``index.md``: the pages, the rules of every document, the scalar types, the catalogs."""
    types = "\n".join(f'<a id="{a}"></a>\n\n### {title}\n\n{text}\n' for a, title, text in _TYPES)
    return "\n".join(
        [
            GENERATED,
            "# aftershock reference\n",
            (
                "Every field of the YAML language, generated from the same models that give the "
                "JSON Schema (`aftershock schema`) and the CRDs (`aftershock schema --crd`), so "
                "these pages, the files and the custom resources cannot drift apart.\n"
            ),
            (
                "- [Experiment](experiment.md): steady state, method, abort rules, expectations, "
                "budget\n- [HealingPolicy](healing-policy.md): watches, playbooks, limits, "
                "escalation\n- [Targets](targets.md): `toxiproxy`, `docker`, `kubernetes`, "
                f"`process`\n- [Faults](faults.md): {len(faults)} faults for method steps\n"
                f"- [Healing actions](actions.md): {len(actions)} actions for playbook steps\n"
                "- [Probes](probes.md): `http`, `tcp`, `command`, `prometheus`, and watches\n"
                "- [Checks](checks.md): steady-state checks, tolerances, abort conditions, "
                "expectations\n"
            ),
            "## Every document\n",
            (
                "- `apiVersion: aftershock.dev/v1alpha1`, `kind: Experiment` or `HealingPolicy`, "
                "`metadata`, `spec`; several documents may share a file, separated by `---`.\n"
                "- Fields are spelled as in these tables (camelCase: `steadyState`, "
                "`unhealthyAfter`); an unknown key is an error, never ignored.\n"
                '- Numbers and booleans are strict: `toxicity: true` or `replicas: "3"` is an '
                "error.\n"
                "- Every problem is reported as `file:line:col: field.path: message` by "
                "`aftershock validate`.\n"
            ),
            "## Types\n",
            types,
            "## Faults\n",
            _catalog_table(faults, "faults.md"),
            "## Healing actions\n",
            _catalog_table(actions, "actions.md"),
        ]
    )
