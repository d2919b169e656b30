"""The libyaml shortcut: C parse events, composed by the bounded Python composer.

Imported only by ``composing.fast_loader``, which falls back to the pure-Python
parser when PyYAML was built without libyaml (this import then fails).
"""

from __future__ import annotations

from typing import Any, Final

from yaml._yaml import CParser
from yaml.composer import Composer
from yaml.events import ScalarEvent
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from aftershock.loading.composing import BoundedComposer

__all__ = ["FastLoader"]

_TAGS: Final[dict[tuple[str, Any], str]] = {}
"""Implicit tags of short plain scalars already resolved: keys, names, units repeat a lot."""
_TAGS_MAX: Final = 4096
_TAG_VALUE_MAX: Final = 64


class _Declined(Exception):
    """Raised to hand the text to the Python parser."""


class FastLoader(BoundedComposer, Resolver, CParser):
    """libyaml's parser events, composed by the bounded Python composer."""

    def __init__(self, text: str) -> None:
        CParser.__init__(self, text)
        Composer.__init__(self)
        Resolver.__init__(self)

    # The composer's node methods, not libyaml's (which would compose unbounded, in C).
    check_node = Composer.check_node
    get_node = Composer.get_node
    get_single_node = Composer.get_single_node

    def compose_scalar_node(self, anchor: Any) -> ScalarNode:
        """The composer's scalar node; a plain scalar the two parsers differ on declines the text.

        An empty plain scalar is a value left out (``a:``, ``{a: }``); libyaml
        marks some of those at another column than PyYAML, whose marks are the
        ones reported. libyaml also accepts ``?`` inside a plain scalar in a flow
        collection (``{a: b?c}``), which PyYAML refuses. Such text is read
        again by the Python parser.
        """
        event = self.peek_event()
        # A plain scalar's style is None from PyYAML's parser, "" from libyaml.
        if isinstance(event, ScalarEvent) and not event.style:
            value: str = event.value
            if value == "" or "?" in value:
                raise _Declined
        return super().compose_scalar_node(anchor)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """``Resolver.resolve``, remembered for short scalars (it depends on nothing else).

        SafeLoader has no path resolvers, so a scalar's tag is a function of its
        text and of ``implicit`` (plain or quoted) alone.
        """
        if kind is not ScalarNode or len(value) > _TAG_VALUE_MAX:
            return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        key = (value, implicit)
        tag = _TAGS.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
            if len(_TAGS) < _TAGS_MAX:
                _TAGS[key] = tag
        return tag
