"""Bytes of a Chaos Toolkit experiment to located plain data, or located problems.

JSON is read with the ``json`` module (as ``chaos run`` reads it: tabs, ``1e5``
and escaped surrogate pairs are fine) and YAML through the loader's composer,
which bounds depth, node count and alias expansion and gives every node its
line and column. JSON gets its locations from the same composer where it can
(tabs between tokens are blanked first, which keeps every column); where it
cannot, everything is located at the start of the file.

The composer substitutes aftershock's own ``${...}`` references while it
builds strings. In a Chaos Toolkit document those are Chaos Toolkit's, and
must come through as written: the environment handed to it refuses every
lookup, so each string holding a reference is kept verbatim (its substitution
"problem" is dropped), and the one rewrite it still does, ``$${`` to ``${`` in
a string with no reference, is undone afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aftershock.errors import Problem
from aftershock.loading.envsubst import SubstitutionError
from aftershock.loading.problems import make_problem
from aftershock.loading.yamltree import MAX_DEPTH, Located, compose_documents

__all__ = ["CtkSource", "NotChaosToolkit", "Path", "parse_source"]

Path = tuple[str | int, ...]
_KEPT: Final = "chaostoolkit reference kept as written"


class NotChaosToolkit(Exception):
    """The input is not a Chaos Toolkit experiment; ``problems`` say where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class _Refusing(Mapping[str, str]):
    """An environment in which every name is missing, loudly: references stay as written."""

    def __getitem__(self, key: str) -> str:
        raise SubstitutionError(_KEPT)

    def __contains__(self, key: object) -> bool:
        raise SubstitutionError(_KEPT)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@dataclass(frozen=True, slots=True)
class CtkSource:
    """One experiment's data and where each of its nodes is in the file."""

    file: str
    data: dict[str, Any]
    located: Located | None = None
    notes: list[Problem] = field(default_factory=list)
    """Problems that do not stop the import (duplicate keys, replaced characters)."""

    def at(self, path: Path) -> tuple[int, int]:
        """Line and column of ``path`` (its key), else of its nearest parent."""
        return self.located.mark(path) if self.located is not None else (1, 1)

    def problem(self, path: Path, message: str) -> Problem:
        """A located, escaped problem at ``path``."""
        line, column = self.at(path)
        return make_problem(self.file, line, column, path, message)


def _decode(raw: bytes, file: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        message = f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})"
        raise NotChaosToolkit([make_problem(file, line, column, "", message)]) from None


def _restore_escapes(value: Any, path: Path, kept: set[Path]) -> Any:
    if isinstance(value, dict):
        return {k: _restore_escapes(v, (*path, k), kept) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_escapes(v, (*path, i), kept) for i, v in enumerate(value)]
    if isinstance(value, str) and path not in kept and "${" in value:
        # Only "$${" becomes "${" in a string the composer could substitute without a lookup.
        return value.replace("${", "$${")
    return value


def _compose(text: str, file: str) -> tuple[Located | None, Problem | None]:
    documents, error = compose_documents(text, _Refusing())
    if error is not None:
        return None, make_problem(file, error.line, error.column, error.path, error.message)
    if not documents:
        return None, make_problem(file, 1, 1, "", "no document in file")
    if len(documents) > 1:
        line = documents[1].line
        message = f"{len(documents)} documents in file; a Chaos Toolkit experiment is one"
        return None, make_problem(file, line, 1, "", message)
    return documents[0], None


def _left_as_written(message: str) -> bool:
    """A substitution the composer gave up on: the string is kept exactly as written."""
    return message == _KEPT or message.startswith("malformed reference")


def _yaml(text: str, file: str) -> tuple[Any, Located, list[Problem]]:
    located, problem = _compose(text, file)
    if problem is not None:
        raise NotChaosToolkit([problem])
    assert located is not None
    substituted = [p for p in located.problems if _left_as_written(p.message)]
    kept = {p.path for p in substituted}
    notes = [
        make_problem(file, p.line, p.column, p.path, p.message)
        for p in located.problems
        if not _left_as_written(p.message)
    ]
    located.data = _restore_escapes(located.data, (), kept)
    return located.data, located, notes


def _clean(value: Any, path: Path, depth: int, notes: list[str]) -> Any:
    if depth > MAX_DEPTH:
        raise ValueError(f"nesting deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        return {
            _clean(k, path, depth, notes): _clean(v, (*path, k), depth + 1, notes)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_clean(v, (*path, i), depth + 1, notes) for i, v in enumerate(value)]
    if isinstance(value, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        notes.append("a \\u escape names a lone surrogate; replaced by U+FFFD")
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _not_a_number(text: str) -> float:
    raise ValueError(f"{text} is not a JSON number")


def _json(text: str, file: str) -> tuple[Any, Located | None, list[Problem]]:
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_not_a_number)
    except json.JSONDecodeError as exc:
        problem = make_problem(file, exc.lineno, exc.colno, "", f"JSON syntax error: {exc.msg}")
        raise NotChaosToolkit([problem]) from None
    except (ValueError, RecursionError) as exc:
        message = "JSON nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise NotChaosToolkit([make_problem(file, 1, 1, "", message)]) from None
    notes: list[str] = []
    try:
        data = _clean(data, (), 0, notes)
    except ValueError as exc:
        raise NotChaosToolkit([make_problem(file, 1, 1, "", str(exc))]) from None
    # JSON has no tab inside a string, so blanking tabs moves nothing and changes no value.
    located, _ = _compose(text.replace("\t", " "), file)
    if located is not None:
        located.data = data
    problems = [make_problem(file, 1, 1, "", n) for n in dict.fromkeys(notes)]
    return data, located, problems


def _looks_like_json(text: str, file: str) -> bool:
    lower = file.lower()
    if lower.endswith(".json"):
        return True
    if lower.endswith((".yaml", ".yml")):
        return False
    return text.lstrip().startswith(("{", "["))


def parse_source(raw: bytes, file: str) -> CtkSource:
    """The experiment in ``raw`` (JSON or YAML); ``NotChaosToolkit`` if it is none.

    The checks are the ones ``chaos`` makes before anything else: one mapping,
    with a ``title`` and a ``method`` list (which may be empty).
    """
    text = _decode(raw, file)
    if _looks_like_json(text, file):
        data, located, notes = _json(text, file)
    else:
        data, located, notes = _yaml(text, file)
    source = CtkSource(file, data if isinstance(data, dict) else {}, located, notes)
    problems = _shape_problems(data, source)
    if problems:
        raise NotChaosToolkit(problems)
    return source


def _shape_problems(data: Any, source: CtkSource) -> list[Problem]:
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "empty"
        return [
            source.problem(
                (),
                f"not a Chaos Toolkit experiment: the document is {_kind(kind)}, "
                "expected a mapping with title and method",
            )
        ]
    if "apiVersion" in data and "kind" in data:
        message = "this is already an aftershock (or Kubernetes) document, not a Chaos Toolkit one"
        return [source.problem(("apiVersion",), message)]
    problems: list[Problem] = []
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        where: Path = ("title",) if "title" in data else ()
        problems.append(
            source.problem(
                where, "not a Chaos Toolkit experiment: title must be a non-empty string"
            )
        )
    method = data.get("method")
    if not isinstance(method, list):
        where = ("method",) if "method" in data else ()
        message = "not a Chaos Toolkit experiment: method must be a list of activities"
        problems.append(source.problem(where, message))
    return problems


def _kind(name: str) -> str:
    return {
        "list": "a list",
        "str": "a string",
        "int": "a number",
        "float": "a number",
        "bool": "a boolean",
        "empty": "empty",
    }.get(name, name)
