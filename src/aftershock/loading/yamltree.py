"""Safe YAML to plain data, remembering where every node came from.

PyYAML's composer gives nodes with marks; we build the Python values ourselves
so that every value keeps its location, duplicate keys are errors, and depth,
size and alias expansion are bounded (an alias bomb is refused, not expanded).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from aftershock.loading.envsubst import SubstitutionError, substitute

__all__ = ["MAX_DEPTH", "MAX_NODES", "Located", "TreeError", "compose_documents"]

MAX_DEPTH: Final = 64
MAX_NODES: Final = 100_000

Path = tuple[str | int, ...]
_MERGE: Final = "tag:yaml.org,2002:merge"
_PLAIN_TAGS: Final = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


class TreeError(Exception):
    """A problem at a location: ``line``/``column`` are 1-based."""

    def __init__(self, message: str, line: int, column: int, path: Path = ()) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.path = path


@dataclass(slots=True)
class Located:
    """One document's data and the marks of its nodes by path."""

    data: Any
    line: int
    marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[TreeError] = field(default_factory=list)

    def mark(self, path: Path) -> tuple[int, int]:
        """The best location for ``path``: the key, else the value, else the nearest parent."""
        for end in range(len(path), -1, -1):
            sub = path[:end]
            if sub in self.key_marks:
                return self.key_marks[sub]
            if sub in self.marks:
                return self.marks[sub]
        return (self.line, 1)


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.nodes = 0
        self.scalars = yaml.SafeLoader("")

    def build(self, node: yaml.Node, doc: Located, path: Path, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            msg = f"document has more than {MAX_NODES} nodes (alias expansion bomb?)"
            raise TreeError(msg, *_pos(node))
        if depth > MAX_DEPTH:
            msg = f"nesting deeper than {MAX_DEPTH} levels"
            raise TreeError(msg, *_pos(node), path)
        doc.marks[path] = _pos(node)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
            msg = f"unsupported value: tag {node.tag!r} is not allowed"
            raise TreeError(msg, *_pos(node), path)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, doc, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(n, doc, (*path, i), depth + 1) for i, n in enumerate(node.value)]
        return self._scalar(node, doc, path)

    def _merged(self, node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        for key, value in node.value:
            if key.tag != _MERGE:
                continue
            sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise TreeError("a merge key (<<) needs a mapping", *_pos(source))
                pairs.extend((k, v) for k, v in source.value if k.tag != _MERGE)
                pairs.extend(self._merged(source))
        return pairs

    def _key(self, key_node: yaml.Node, doc: Located, path: Path) -> str:
        key = self._scalar(key_node, doc, path) if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str):
            raise TreeError("mapping keys must be strings", *_pos(key_node), path)
        return key

    def _mapping(self, node: yaml.MappingNode, doc: Located, path: Path, depth: int) -> Any:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self._key(key_node, doc, path)
            if key in result:
                msg = f"duplicate key {key!r}"
                doc.problems.append(TreeError(msg, *_pos(key_node), (*path, key)))
                continue
            doc.key_marks[(*path, key)] = _pos(key_node)
            result[key] = self.build(value_node, doc, (*path, key), depth + 1)
        # Merged keys (<<) never override the mapping's own keys, nor earlier merges.
        for key_node, value_node in self._merged(node):
            key = self._key(key_node, doc, path)
            if key not in result:
                doc.key_marks[(*path, key)] = _pos(key_node)
                result[key] = self.build(value_node, doc, (*path, key), depth + 1)
        return result

    def _scalar(self, node: yaml.Node, doc: Located, path: Path) -> Any:
        try:
            value = self.scalars.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            msg = f"unsupported value: {getattr(exc, 'problem', exc)}"
            raise TreeError(msg, *_pos(node), path) from None
        except (ValueError, OverflowError) as exc:
            raise TreeError(f"invalid value: {exc}", *_pos(node), path) from None
        if isinstance(value, str):
            try:
                return substitute(value, self.env)
            except SubstitutionError as exc:
                doc.problems.append(TreeError(str(exc), *_pos(node), path))
                return value
        return value


def compose_documents(text: str, env: Mapping[str, str]) -> tuple[list[Located], TreeError | None]:
    """Every non-empty document of ``text`` up to the first syntax error, and that error.

    Documents before a broken one are still returned, so their problems are
    reported together with the syntax error.
    """
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        return [], _reader_error(exc, text)
    documents: list[Located] = []
    error: TreeError | None = None
    builder = _Builder(env)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None or (isinstance(node, yaml.ScalarNode) and node.value == ""):
                continue
            located = Located(data=None, line=node.start_mark.line + 1)
            located.data = builder.build(node, located, (), 0)
            documents.append(located)
    except (TreeError, yaml.YAMLError, RecursionError) as exc:
        error = _as_tree_error(exc, text)
    finally:
        loader.dispose()
    return documents, error


def _as_tree_error(exc: BaseException, text: str) -> TreeError:
    if isinstance(exc, TreeError):
        return exc
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        return TreeError(f"YAML syntax error: {exc.problem or exc}", line, column)
    if isinstance(exc, yaml.reader.ReaderError):
        return _reader_error(exc, text)
    if isinstance(exc, RecursionError):
        return TreeError(f"nesting deeper than {MAX_DEPTH} levels", 0, 0)
    return TreeError(f"YAML error: {exc}", 0, 0)


def _reader_error(exc: yaml.reader.ReaderError, text: str) -> TreeError:
    before = text[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    return TreeError(f"character {exc.character!r} is not allowed in YAML", line, column)
