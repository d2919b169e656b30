"""Safe YAML to plain data, remembering where every node came from.

PyYAML's composer gives nodes with marks; we build the Python values ourselves
so that every value keeps its location, duplicate keys are errors, and depth,
size and alias expansion are bounded (an alias bomb is refused, not expanded).

Bounds hold while parsing, not after: the composer stops at the first node
nested deeper than ``MAX_DEPTH`` or past ``MAX_NODES`` nodes, and the builder
counts every node it produces, including each mapping merged in through ``<<``
and each value reached through an alias, so a merge chain that would expand
to millions of keys stops after ``MAX_NODES`` steps. Every failure, including
the ones PyYAML raises as plain Python exceptions (an explicit ``!!bool`` tag
on ``maybe``, a ``\\U`` escape above U+10FFFF), becomes a ``TreeError`` with a
line and a column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from aftershock.loading.composing import (
    MAX_DEPTH,
    MAX_NODES,
    BoundedComposer,
    BoundedLoader,
    TreeError,
    fast_loader,
    too_deep,
    too_many_nodes,
)
from aftershock.loading.composing import mark_position as _mark
from aftershock.loading.envsubst import SubstitutionError, substitute

__all__ = ["MAX_DEPTH", "MAX_NODES", "Located", "TreeError", "compose_documents"]

MAX_NUMBER_CHARS: Final = 100

Path = tuple[str | int, ...]
_CORE: Final = "tag:yaml.org,2002:"
_MERGE: Final = f"{_CORE}merge"
_MAP: Final = f"{_CORE}map"
_SEQ: Final = f"{_CORE}seq"
_STR: Final = f"{_CORE}str"
_NUMBER_TAGS: Final = frozenset({f"{_CORE}int", f"{_CORE}float"})
# What PyYAML's scalar constructors raise on values their tag does not fit
# (``!!bool maybe``: KeyError, ``!!int ""``: IndexError, ``!!timestamp ""``:
# AttributeError), besides its own ConstructorError.
_CONSTRUCTOR_FAILURES: Final = (
    ValueError,
    OverflowError,
    KeyError,
    IndexError,
    AttributeError,
    TypeError,
)
# What the scanner raises besides its own errors: ``chr()`` on a ``\U``
# escape above U+10FFFF raises ValueError or OverflowError.
_SCANNER_FAILURES: Final = (ValueError, OverflowError, IndexError, KeyError, TypeError)
_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")
_CONTEXT_RE: Final = re.compile(r"^while (?:parsing|scanning) an? (.+)$")


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
        # The collections being built, innermost last: an alias or a merge back
        # to one of them is a cycle (an infinite value), refused where it is written.
        self.open: list[yaml.Node] = []

    def count(self, node: yaml.Node, path: Path) -> None:
        """Count one produced node (built, merged or reached through an alias)."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise TreeError(too_many_nodes(), *_pos(node), path)

    def build(self, node: yaml.Node, doc: Located, path: Path, depth: int) -> Any:
        self.count(node, path)
        if depth > MAX_DEPTH:
            raise TreeError(too_deep(), *_pos(node), path)
        doc.marks[path] = _pos(node)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, doc, path)
        if any(node is outer for outer in self.open):
            msg = "an alias refers to a collection that contains it (a cycle)"
            raise TreeError(msg, *_pos(node), path)
        self.open.append(node)
        try:
            if isinstance(node, yaml.MappingNode):
                self._check_tag(node, _MAP, path)
                return self._mapping(node, doc, path, depth)
            self._check_tag(node, _SEQ, path)
            return [self.build(n, doc, (*path, i), depth + 1) for i, n in enumerate(node.value)]
        finally:
            self.open.pop()

    @staticmethod
    def _check_tag(node: yaml.Node, expected: str, path: Path) -> None:
        if node.tag != expected:
            msg = f"unsupported value: tag {node.tag!r} is not allowed here"
            raise TreeError(msg, *_pos(node), path)

    def _merged(
        self,
        node: yaml.MappingNode,
        path: Path,
        chain: tuple[yaml.MappingNode, ...] = (),
        at: yaml.Node | None = None,
    ) -> list[tuple[yaml.Node, yaml.Node]]:
        """The pairs merged into ``node`` by its ``<<`` keys, in priority order.

        Every source mapping visited and every pair taken from it counts as a
        node, so chains of merges cannot expand past ``MAX_NODES``; a limit
        reached deep in a chain is reported at the outermost ``<<`` key (``at``).
        """
        chain = (*chain, node)
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        for key, value in node.value:
            if key.tag != _MERGE:
                continue
            where = key if at is None else at
            sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
            for source in sources:
                self.count(where, path)
                if not isinstance(source, yaml.MappingNode):
                    raise TreeError("a merge key (<<) needs a mapping", *_pos(source), path)
                if any(source is seen for seen in (*chain, *self.open)):
                    msg = "a mapping merges itself (<< refers to an enclosing mapping)"
                    raise TreeError(msg, *_pos(where), path)
                for pair in source.value:
                    if pair[0].tag != _MERGE:
                        self.count(where, path)
                        pairs.append(pair)
                pairs.extend(self._merged(source, path, chain, where))
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
        for key_node, value_node in self._merged(node, path):
            key = self._key(key_node, doc, path)
            if key not in result:
                doc.key_marks[(*path, key)] = _pos(key_node)
                result[key] = self.build(value_node, doc, (*path, key), depth + 1)
        return result

    def _construct(self, node: yaml.Node, path: Path) -> Any:
        if node.tag == _STR and isinstance(node, yaml.ScalarNode):
            return node.value  # what SafeConstructor.construct_yaml_str returns, without the walk
        tag = node.tag.removeprefix(_CORE) if node.tag.startswith(_CORE) else node.tag
        if node.tag in _NUMBER_TAGS and isinstance(node.value, str):
            # Long numbers cost quadratic time (``1:59:59:...`` is a base-60 int in
            # YAML 1.1) and Python's int() accepts non-ASCII digits: neither is a number here.
            if len(node.value) > MAX_NUMBER_CHARS:
                msg = f"invalid !!{tag} value: longer than {MAX_NUMBER_CHARS} characters"
                raise TreeError(msg, *_pos(node), path)
            if not node.value.isascii():
                msg = f"invalid !!{tag} value {node.value!r}: only ASCII digits are numbers"
                raise TreeError(msg, *_pos(node), path)
        try:
            return self.scalars.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            msg = f"unsupported value: {getattr(exc, 'problem', None) or exc}"
            raise TreeError(msg, *_pos(node), path) from None
        except _CONSTRUCTOR_FAILURES:
            value = node.value if isinstance(node.value, str) else ""
            msg = f"invalid !!{tag} value {value[:80]!r}"
            raise TreeError(msg, *_pos(node), path) from None

    def _scalar(self, node: yaml.Node, doc: Located, path: Path) -> Any:
        value = self._construct(node, path)
        if isinstance(value, str):
            if _SURROGATE_RE.search(value):
                msg = "invalid value: a \\u escape names a surrogate, not a character"
                raise TreeError(msg, *_pos(node), path)
            try:
                return substitute(value, self.env)
            except SubstitutionError as exc:
                doc.problems.append(TreeError(str(exc), *_pos(node), path))
                return value
        return value


def compose_documents(
    text: str, env: Mapping[str, str], *, fast_path: bool = True
) -> tuple[list[Located], TreeError | None]:
    """Every non-empty document of ``text`` up to the first syntax error, and that error.

    Documents before a broken one are still returned, so their problems are
    reported together with the syntax error. Text that libyaml parses and the
    builder accepts without an error takes that path; anything else is read
    again by the pure-Python parser, whose messages and marks are the ones
    reported. ``fast_path=False`` reads with the Python parser alone: the
    reference the shortcut is tested against.
    """
    fast = fast_loader(text) if fast_path else None
    if fast is not None:
        try:
            return _documents(fast, env), None
        except Exception:  # noqa: BLE001, S110 - read again below; that path reports it
            pass
        finally:
            fast.dispose()
    try:
        loader = BoundedLoader(text)
    except yaml.reader.ReaderError as exc:
        return [], _reader_error(exc, text)
    documents: list[Located] = []
    error: TreeError | None = None
    try:
        documents = _documents(loader, env, documents)
    except (TreeError, yaml.YAMLError) as exc:
        error = _as_tree_error(exc, text, loader)
    except RecursionError:
        error = TreeError(too_deep(), *_mark(loader.get_mark()))
    except _SCANNER_FAILURES as exc:
        error = _scanner_failure(exc, loader, text)
    finally:
        loader.dispose()
    return documents, error


def _documents(
    loader: BoundedComposer, env: Mapping[str, str], into: list[Located] | None = None
) -> list[Located]:
    """Build every non-empty document the loader composes, appending to ``into`` as it goes."""
    documents = [] if into is None else into
    builder = _Builder(env)
    while loader.check_node():
        node = loader.get_node()
        if node is None or (isinstance(node, yaml.ScalarNode) and node.value == ""):
            continue
        located = Located(data=None, line=node.start_mark.line + 1)
        located.data = builder.build(node, located, (), 0)
        documents.append(located)
    return documents


def _scanner_failure(exc: Exception, loader: yaml.SafeLoader, text: str) -> TreeError:
    """A plain exception from inside PyYAML's scanner, at the reader's position."""
    mark = loader.get_mark()
    line, column = _mark(mark)
    if text[max(mark.index - 2, 0) : mark.index] == "\\U":
        digits = text[mark.index : mark.index + 8]
        msg = f"invalid escape \\U{digits}: above U+10FFFF, the largest Unicode code point"
        return TreeError(msg, line, max(column - 2, 1))
    return TreeError(f"YAML error: {exc}", line, column)


def _open_flow_collection(loader: yaml.SafeLoader, text: str) -> tuple[str, Any] | None:
    """The innermost flow collection the parser was inside, from its stack of start marks."""
    marks: list[Any] = getattr(loader, "marks", [])
    if not marks:
        return None
    mark = marks[-1]
    kind = {"{": "flow mapping", "[": "flow sequence"}.get(text[mark.index : mark.index + 1])
    return (f"while parsing a {kind}", mark) if kind else None


def _same_place(first: Any, second: Any) -> bool:
    return first is None or second is None or _mark(first) == _mark(second)


def _syntax_message(exc: yaml.MarkedYAMLError, loader: yaml.SafeLoader, text: str) -> str:
    """The problem, and where the construct it belongs to began (like yamllint's two marks)."""
    message = f"YAML syntax error: {exc.problem or exc.context or 'invalid YAML'}"
    context, where = exc.context, exc.context_mark
    if not exc.problem:
        return message
    if _same_place(where, exc.problem_mark):
        # "while parsing a flow node" at the very place of the problem says nothing;
        # the flow collection left open says where to look.
        context, where = _open_flow_collection(loader, text) or (None, None)
    if not context or _same_place(where, exc.problem_mark):
        return message
    line, column = _mark(where)
    if context.endswith("; first occurrence"):
        found = context.removesuffix("; first occurrence")
        return f"YAML syntax error: {found} (first at {line}:{column})"
    match = _CONTEXT_RE.match(context)
    started = f"the {match.group(1)} started" if match else context
    return f"{message} ({started} at {line}:{column})"


def _as_tree_error(exc: BaseException, text: str, loader: yaml.SafeLoader) -> TreeError:
    if isinstance(exc, TreeError):
        return exc
    if isinstance(exc, yaml.MarkedYAMLError):
        line, column = _mark(exc.problem_mark or exc.context_mark)
        return TreeError(_syntax_message(exc, loader, text), line, column)
    if isinstance(exc, yaml.reader.ReaderError):
        return _reader_error(exc, text)
    return TreeError(f"YAML error: {exc}", 1, 1)


def _reader_error(exc: yaml.reader.ReaderError, text: str) -> TreeError:
    before = text[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    return TreeError(f"character {exc.character!r} is not allowed in YAML", line, column)
