"""Field tables: every field of a model as users write it, read from the model itself.

A field's name is its YAML spelling (``exitCode``, ``with``, ``for``); its type
is told in the language's terms (a duration, a percentage, text that may hold a
secret), its default is serialized as a document would write it (``10s``, not
``0:00:10``), and its limits are those of the JSON Schema the same model yields.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, TypeAdapter
from pydantic.fields import FieldInfo

from aftershock.model.base import Name
from aftershock.model.params import Signal
from aftershock.model.probes import JsonPath, StatusSet
from aftershock.model.reference.writing import flow
from aftershock.model.secrets import HttpUrlText, Text
from aftershock.model.targets import HostPort, Pick, Regex
from aftershock.model.units import (
    Duration,
    DurationThreshold,
    NumberThreshold,
    Percentage,
    RatioThreshold,
)

__all__ = ["Links", "Row", "field_rows", "table"]

Links = Mapping[type[BaseModel], tuple[str, str]]
"""Where each documented model has its section (``page.md#anchor``), and what a link says."""


def _validators(metadata: Iterable[Any]) -> frozenset[Callable[..., Any]]:
    return frozenset(m.func for m in metadata if isinstance(m, BeforeValidator | AfterValidator))


def _alias_validators(alias: Any) -> frozenset[Callable[..., Any]]:
    return _validators(getattr(alias, "__metadata__", ()))


_TEXT_NOTE: Final = " (may hold `${secret:NAME}`)"

# Most specific first: an http(s) URL is also text.
_SCALARS: Final[tuple[tuple[frozenset[Callable[..., Any]], str], ...]] = tuple(
    (_alias_validators(alias), label)
    for alias, label in (
        (HttpUrlText, f"[URL](index.md#url){_TEXT_NOTE}"),
        (Text, f"[text](index.md#text){_TEXT_NOTE}"),
        (Duration, "[duration](index.md#duration)"),
        (Percentage, "[percentage](index.md#percentage)"),
        (RatioThreshold, "[ratio comparison](index.md#comparison)"),
        (DurationThreshold, "[duration comparison](index.md#comparison)"),
        (NumberThreshold, "[number comparison](index.md#comparison)"),
        (Name, "[name](index.md#name)"),
        (HostPort, "[host:port](index.md#hostport)"),
        (Regex, "[regular expression](index.md#regex)"),
        (Signal, "[signal](index.md#signal)"),
        (JsonPath, "[JSONPath](index.md#jsonpath)"),
        (StatusSet, "list of [HTTP status codes](index.md#status)"),
        (Pick, "[count or share](index.md#pick)"),
    )
)

# Validators written inline on one field, known by the function's name.
_INLINE: Final[dict[str, str]] = {
    "_check_mode": "[selection mode](index.md#mode)",
    "_check_cron": "[cron expression](index.md#cron)",
    "_check_timezone": "[time zone](index.md#timezone)",
    "_check_hhmm": "[time of day](index.md#time-of-day)",
    "_check_labels": "map: label key → string",
}

_PLAIN: Final[dict[Any, str]] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    timedelta: "[duration](index.md#duration)",
}


def _scalar(metadata: Sequence[Any]) -> str | None:
    found = _validators(metadata)
    if not found:
        return None
    for needed, label in _SCALARS:
        if needed <= found:
            return label
    names = sorted(getattr(func, "__name__", "") for func in found)
    return next((_INLINE[name] for name in names if name in _INLINE), None)


def type_label(tp: Any, metadata: Sequence[Any], links: Links) -> str:
    """``tp`` (with its ``Annotated`` metadata) in the words of the language, linked."""
    if (scalar := _scalar(metadata)) is not None:
        return scalar
    if get_origin(tp) is None:
        return _class_label(tp, links)
    return _generic_label(tp, links)


def _generic_label(tp: Any, links: Links) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return type_label(args[0], args[1:], links)
    if origin in (Union, types.UnionType):
        labels: list[str] = []
        for arg in args:
            if arg is not type(None) and (label := type_label(arg, (), links)) not in labels:
                labels.append(label)
        return " or ".join(labels)
    if origin is Literal:
        values = [f"`{value}`" for value in args]
        return values[0] if len(values) == 1 else "one of " + ", ".join(values)
    if origin is list:
        return f"list of {type_label(args[0], (), links)}"
    if origin is dict:
        return f"map: {type_label(args[0], (), links)} → {type_label(args[1], (), links)}"
    msg = f"no wording for the type {tp!r} in the reference"
    raise LookupError(msg)


def _class_label(tp: Any, links: Links) -> str:
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(f"`{member.value}`" for member in tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _model_link(tp, links)
    if tp in _PLAIN:
        return _PLAIN[tp]
    msg = f"no wording for the type {tp!r} in the reference"
    raise LookupError(msg)


def _model_link(model: type[BaseModel], links: Links) -> str:
    for cls in model.__mro__:
        if cls in links:
            href, title = links[cls]
            return f"[{title}]({href})"
    msg = f"{model.__name__} has no section in the reference docs; give it one"
    raise LookupError(msg)


def _annotated(field: FieldInfo) -> Any:
    if field.metadata:
        return Annotated[field.annotation, *field.metadata]
    return field.annotation


_ARBITRARY: Final = ConfigDict(arbitrary_types_allowed=True)  # ``Secret`` is a plain class


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    factory = field.default_factory
    value = factory() if factory is not None else field.default  # type: ignore[call-arg]
    if value is None:
        return "—"
    if isinstance(value, BaseModel):
        return "`{}`"  # every field of it at its own default
    adapter = TypeAdapter(_annotated(field), config=_ARBITRARY)
    dumped = adapter.dump_python(value, mode="json", by_alias=True)
    return f"`{flow(dumped)}`"


# ------------------------------------------------------------------ limits


def _constraints(prop: Mapping[str, Any]) -> Mapping[str, Any]:
    """The constraint-bearing node of a property (the non-null side of an optional)."""
    for variant in prop.get("anyOf", ()):
        if variant.get("type") != "null" and "$ref" not in variant:
            return {**variant, **{k: v for k, v in prop.items() if k != "anyOf"}}
    return prop


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _limits(prop: Mapping[str, Any], *, typed_scalar: bool) -> str:
    node = _constraints(prop)
    parts: list[str] = []
    for key, words in (
        ("minimum", "≥ {}"),
        ("exclusiveMinimum", "> {}"),
        ("maximum", "≤ {}"),
        ("exclusiveMaximum", "< {}"),
    ):
        if key in node:
            parts.append(words.format(_number(node[key])))
    for key, noun in (
        ("minItems", "item"),
        ("minLength", "character"),
        ("minProperties", "entry"),
    ):
        if key in node:
            count = node[key]
            parts.append(f"at least {count} {noun}{'' if count == 1 else 's'}")
    for key, noun in (("maxItems", "items"), ("maxLength", "characters")):
        if key in node:
            parts.append(f"at most {node[key]} {noun}")
    if "pattern" in node and not typed_scalar:
        parts.append(f"matches `{node['pattern']}`")
    return ", ".join(parts)


# ------------------------------------------------------------------ tables


@dataclass(frozen=True, slots=True)
class Row:
    """One field of a model, ready to print."""

    name: str
    type: str
    default: str
    limits: str
    description: str


def field_rows(
    model: type[BaseModel],
    links: Links,
    *,
    skip: Iterable[str] = (),
    types_of: Mapping[str, str] | None = None,
    defaults_of: Mapping[str, str] | None = None,
) -> list[Row]:
    """The rows of ``model``'s fields in declaration order.

    ``types_of`` and ``defaults_of`` (by YAML name) word a field that a base
    model only declares in general (a step's ``fault`` and ``with``).
    """
    schema = model.model_json_schema(by_alias=True)
    properties: Mapping[str, Any] = schema.get("properties", {})
    overrides = types_of or {}
    defaults = defaults_of or {}
    rows: list[Row] = []
    for name, field in model.model_fields.items():
        alias = field.alias or name
        if name in skip or alias in skip:
            continue
        label = overrides.get(alias) or type_label(field.annotation, field.metadata, links)
        scalar = _scalar(field.metadata) is not None or _typed_optional(field.annotation)
        rows.append(
            Row(
                name=alias,
                type=label,
                default=defaults.get(alias) or _default(field),
                limits=_limits(properties.get(alias, {}), typed_scalar=scalar),
                description=field.description or "",
            )
        )
    return rows


def _typed_optional(tp: Any) -> bool:
    """Whether an optional's inner type is one of the language's scalars (own pattern)."""
    return any(
        get_origin(arg) is Annotated and _scalar(get_args(arg)[1:]) is not None
        for arg in get_args(tp)
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(rows: Sequence[Row]) -> str:
    """A Markdown table of ``rows``; an empty string when there are none."""
    if not rows:
        return ""
    lines = [
        "| field | type | default | limits | description |",
        "|---|---|---|---|---|",
    ]
    lines.extend(
        "| "
        + " | ".join(
            _cell(cell)
            for cell in (f"`{r.name}`", r.type, r.default, r.limits or "", r.description)
        )
        + " |"
        for r in rows
    )
    return "\n".join(lines) + "\n"
