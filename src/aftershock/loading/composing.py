"""YAML text to PyYAML nodes, bounded in depth and size while it is read.

Two composers share the bounds: ``BoundedLoader`` runs PyYAML's pure-Python
reader, scanner and parser, whose error messages and marks every syntax problem
is reported with; ``libyaml.FastLoader`` takes the parse events from libyaml
(PyYAML's C extension, about ten times faster) and composes them with the same
Python composer, so anchors, aliases, tags and marks come out as the same nodes.

``FastLoader`` is only a shortcut for text it composes without any error: a
caller that sees it fail composes the text again with ``BoundedLoader``, so
what is reported for a bad file never depends on which parser is installed.
``fast_loader`` also declines text with a character PyYAML's reader refuses, so
the two never disagree about what is printable.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

import yaml
from yaml.composer import Composer

if TYPE_CHECKING:
    from aftershock.loading.libyaml import FastLoader

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "BoundedComposer",
    "BoundedLoader",
    "TreeError",
    "fast_loader",
    "mark_position",
    "too_deep",
    "too_many_nodes",
]

MAX_DEPTH: Final = 64
MAX_NODES: Final = 100_000

Path = tuple[str | int, ...]


class TreeError(Exception):
    """A problem at a location: ``line``/``column`` are 1-based."""

    def __init__(self, message: str, line: int, column: int, path: Path = ()) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.path = path


def mark_position(mark: Any) -> tuple[int, int]:
    """1-based line and column of a PyYAML mark (the start of the text if there is none)."""
    if mark is None:
        return 1, 1
    return int(mark.line) + 1, int(mark.column) + 1


def too_many_nodes() -> str:
    """The message for a document past ``MAX_NODES``."""
    return f"document has more than {MAX_NODES} nodes (alias expansion bomb?)"


def too_deep() -> str:
    """The message for a document nested past ``MAX_DEPTH``."""
    return f"nesting deeper than {MAX_DEPTH} levels"


class BoundedComposer(Composer):
    """A composer that refuses too deep or too many nodes as it reads them.

    PyYAML composes recursively, so ``[[[[...`` a thousand levels deep would
    otherwise end in a RecursionError with no location at all. The parser
    methods (``check_event``, ``peek_event``) come from the loader it is mixed into.
    """

    depth: int = 0
    composed: int = 0

    def compose_document(self) -> yaml.Node | None:
        self.composed = 0
        return super().compose_document()

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):  # type: ignore[attr-defined]
            return super().compose_node(parent, index)
        event: yaml.Event = self.peek_event()  # type: ignore[attr-defined]
        where = mark_position(event.start_mark)
        self.composed += 1
        if self.composed > MAX_NODES:
            raise TreeError(too_many_nodes(), *where)
        if self.depth > MAX_DEPTH:
            raise TreeError(too_deep(), *where)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class BoundedLoader(BoundedComposer, yaml.SafeLoader):
    """PyYAML's pure-Python SafeLoader with the bounded composer: the reference path."""


_UNLIKE: Final = re.compile("[\t\x85\u2028\u2029\ufeff]")
"""Characters libyaml and PyYAML's scanner treat differently (tabs, the YAML 1.1 line breaks)."""


def fast_loader(text: str) -> FastLoader | None:
    """A ``FastLoader`` for ``text``; ``None`` without libyaml, or if it might read differently.

    Text with a character PyYAML's reader refuses, or with one the two scanners
    treat differently (``_UNLIKE``), always takes the Python path.
    """
    if _UNLIKE.search(text) or yaml.reader.Reader.NON_PRINTABLE.search(text):
        return None
    try:
        from aftershock.loading.libyaml import FastLoader
    except ImportError:  # PyYAML built without libyaml: every text takes the Python path
        return None
    return FastLoader(text)
