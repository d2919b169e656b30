"""What a Toxiproxy server reports: proxies and toxics, read strictly from its JSON.

Results are frozen dataclasses that ignore fields they do not know (a real 2.12
leaks ``"Logger": {}`` into every proxy). A field of the wrong type, or a
missing one, raises ``Malformed`` (a ``ValueError``) saying which; the client
turns that into ``aftershock.errors.UnexpectedAnswer``. ``json_object``,
``json_list`` and ``json_field`` are the checks the client's other answers use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

__all__ = ["Malformed", "Proxy", "Toxic", "json_field", "json_list", "json_object"]

T = TypeVar("T")


class Malformed(ValueError):
    """The JSON is not what the endpoint answers; the message says what is wrong."""


_KINDS: dict[type, str] = {type(None): "null", bool: "a boolean", int: "a number"}
_KINDS.update({float: "a number", str: "a string", list: "a list"})


def _kind(value: object) -> str:
    return _KINDS.get(type(value), "an object")


def json_object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{what} is {_kind(value)}, not an object")
    return value


def json_list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise Malformed(f"{what} is {_kind(value)}, not a list")
    return value


def json_field(data: Mapping[str, Any], key: str, cls: type[T], what: str, kind: str) -> T:
    if key not in data:
        raise Malformed(f"{what} has no {key!r}")
    value = data[key]
    # bool is an int in Python; JSON keeps them apart, and so do we.
    if not isinstance(value, cls) or (cls is not bool and isinstance(value, bool)):
        raise Malformed(f"{what}: {key!r} is {_kind(value)}, not {kind}")
    return value


def _number(data: Mapping[str, Any], key: str, what: str, default: float) -> float:
    if key not in data:
        return default
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Malformed(f"{what}: {key!r} is {_kind(value)}, not a number")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Toxic:
    """A toxic as the server reports it."""

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: object, what: str = "the toxic") -> Self:
        """Build from a server answer, ignoring unknown fields; ``ValueError`` if malformed.

        ``name``, ``type`` and ``stream`` must be strings; ``toxicity`` (default 1)
        a finite number and ``attributes`` an object when present.
        """
        obj = json_object(data, what)
        return cls(
            name=json_field(obj, "name", str, what, "a string"),
            type=json_field(obj, "type", str, what, "a string"),
            stream=json_field(obj, "stream", str, what, "a string"),
            toxicity=_number(obj, "toxicity", what, 1.0),
            attributes=dict(json_object(obj.get("attributes", {}), f"{what}'s attributes")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Proxy:
    """A proxy as the server reports it, with its toxics in creation order."""

    name: str
    listen: str
    upstream: str
    enabled: bool = True
    toxics: tuple[Toxic, ...] = ()

    @classmethod
    def from_json(cls, data: object, what: str = "the proxy") -> Self:
        """Build from a server answer, ignoring unknown fields (such as ``Logger``).

        ``name``, ``listen`` and ``upstream`` must be strings and ``enabled`` a
        boolean; ``toxics``, when present, a list of toxics. ``ValueError`` if not.
        """
        obj = json_object(data, what)
        name = json_field(obj, "name", str, what, "a string")
        listen = json_field(obj, "listen", str, what, "a string")
        upstream = json_field(obj, "upstream", str, what, "a string")
        enabled = json_field(obj, "enabled", bool, what, "a boolean")
        toxics = json_list(obj.get("toxics", []), f"{what}'s toxics")
        return cls(
            name=name,
            listen=listen,
            upstream=upstream,
            enabled=enabled,
            toxics=tuple(
                Toxic.from_json(t, f"toxic {i} of proxy {name!r}") for i, t in enumerate(toxics)
            ),
        )
