"""Examples written as YAML: whole documents in blocks, their leaves in compact flow style.

``model/`` imports no YAML library, and the examples need none: they are plain
data (strings, numbers, lists, maps), written here the way people write them
(``{name: slow-db, fault: toxiproxy.latency}``), quoted only where YAML would
read the text as something else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from aftershock.model.common import API_VERSION

__all__ = ["Data", "document", "flow", "slug"]

Data = Mapping[str, Any]
"""Plain data as a document holds it: strings, numbers, lists, maps."""

_PLAIN_TEXT: Final = re.compile(r"-{0,2}[A-Za-z_/][A-Za-z0-9_./-]*|[0-9][A-Za-z0-9_.]*[A-Za-z]")
# YAML 1.1 (PyYAML) reads these words as booleans or null, in any case.
_YAML_WORDS: Final = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null"])


def flow(value: Any) -> str:
    """``value`` (JSON-like data) as compact YAML flow style, quoting only where needed."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        plain = _PLAIN_TEXT.fullmatch(value) and value.lower() not in _YAML_WORDS
        return value if plain else json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{flow(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    msg = f"cannot write {value!r} as YAML"
    raise TypeError(msg)


_WIDTH: Final = 100


def _container(value: Any) -> bool:
    return isinstance(value, Mapping | list) and bool(value)


def _forced(value: Any) -> bool:
    """Whether a forced level is written as a block: lists, and maps of maps or lists."""
    if isinstance(value, list):
        return bool(value)
    return isinstance(value, Mapping) and any(_container(v) for v in value.values())


def _entry(key: str, value: Any, indent: int, force: int) -> list[str]:
    pad = " " * indent
    one = f"{pad}{flow(key)}: {flow(value)}"
    block = _forced(value) if force > 0 else len(one) > _WIDTH and _container(value)
    if not block:
        return [one]
    return [f"{pad}{flow(key)}:", *_block(value, indent + 2, force - 1)]


def _block(value: Any, indent: int, force: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, Mapping):
        return [line for k, v in value.items() for line in _entry(k, v, indent, force)]
    lines: list[str] = []
    for item in value:
        one = f"{pad}- {flow(item)}"
        if len(one) <= _WIDTH or not isinstance(item, Mapping):
            lines.append(one)
            continue
        inner = _block(item, indent + 2, force)
        lines.extend([f"{pad}- {inner[0].lstrip()}", *inner[1:]])
    return lines


def document(kind: str, name: str, spec: Data) -> str:
    """A whole document of ``kind`` as YAML: ``spec`` in blocks, its leaves in flow style."""
    head = [f"apiVersion: {API_VERSION}", f"kind: {kind}", f"metadata: {flow({'name': name})}"]
    return "\n".join([*head, "spec:", *_block(spec, 2, 1)]) + "\n"


def slug(name: str) -> str:
    """``k8s.deletePod`` → ``k8s-delete-pod``: a document name from a fault or action name."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name)
    return re.sub(r"[._]", "-", spaced).lower()
