"""Secret values: text that came from ``${secret:NAME}`` and is never shown.

The loader wraps every scalar that contains a ``${secret:...}`` reference in a
``Secret``. Only fields typed ``Text`` accept one; ``str()``/``repr()`` and
serialization always print ``***``, so journals, reports and logs cannot leak it.
Code that must send the value (an HTTP header, a process environment) calls
``reveal()``.

A secret can still come back: a server echoes a query parameter, a process
prints its environment. ``Redactor`` hides every known secret value in such
text, also in the encodings it usually comes back in (percent-encoding, JSON
and ``repr`` escapes, HTML entities) and with its whitespace collapsed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Final
from urllib.parse import unquote, unquote_plus

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

__all__ = ["REDACTED", "HttpUrlText", "Redactor", "Secret", "Text", "reveal", "secret_values"]

REDACTED: Final = "***"


class Secret:
    """A string value that must not be displayed; ``names`` are the env vars it came from.

    ``parts`` are the secret values substituted into it (``TOKEN`` in ``Bearer
    TOKEN``): each may come back on its own, without the text around it.
    """

    __slots__ = ("_value", "names", "parts")

    def __init__(
        self, value: str, names: tuple[str, ...] = (), parts: tuple[str, ...] = ()
    ) -> None:
        self._value = value
        self.names = names
        self.parts = parts

    def reveal(self) -> str:
        """The real value, for the one place that must send it."""
        return self._value

    def __str__(self) -> str:
        return REDACTED

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", self._value))


def reveal(value: str | Secret) -> str:
    """The plain value of a ``Text`` field, secret or not."""
    return value.reveal() if isinstance(value, Secret) else value


def secret_values(texts: Iterable[object], environ: Mapping[str, str] | None = None) -> list[str]:
    """What to hide for the ``Secret`` among ``texts``: each whole, and its parts.

    ``environ`` supplies the values of the variables a secret names, for a
    secret whose parts were not recorded when it was loaded.
    """
    values: list[str] = []
    for text in texts:
        if isinstance(text, Secret):
            values.append(text.reveal())
            values.extend(text.parts)
            if environ is not None:
                values.extend(environ[name] for name in text.names if name in environ)
    return values


_WIDEST: Final = 20
"""Characters one secret character may take in a recognised encoding (``%25F0%259F%2598%2580``)."""

_SPACE: Final = (
    r"(?:\s|%(?:25)?(?:20|09|0[aAdD])|\+|\\[ntr]|\\u00(?:20|0[9aAdD])|&#(?:32|9|10|13);)+"
)
_ENTITIES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}


def _hex(number: int, width: int) -> str:
    """``number`` in hex, matching either case of each digit."""
    digits = f"{number:0{width}x}"
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in digits)


def _char(char: str) -> str:
    data = char.encode("utf-8", errors="surrogatepass")
    # Percent-encoded once or twice (a URL inside a URL: "%2520").
    forms = [re.escape(char), "".join("%(?:25)?" + _hex(b, 2) for b in data)]
    if not (char.isascii() and char.isalnum()):
        code = ord(char)
        if code > 0xFFFF:  # JSON writes it as a surrogate pair
            code -= 0x10000
            forms.append(
                r"\\u" + _hex(0xD800 + (code >> 10), 4) + r"\\u" + _hex(0xDC00 + (code & 0x3FF), 4)
            )
        else:
            forms.append(r"\\u" + _hex(code, 4))
        forms.append("".join(r"\\x" + _hex(b, 2) for b in data))
        forms.append(re.escape("\\" + char))
        if char in _ENTITIES:
            forms.append(re.escape(_ENTITIES[char]))
            forms.append(f"&#{code};")
    return "(?:" + "|".join(forms) + ")"


def _pattern(value: str) -> re.Pattern[str]:
    pieces = re.split(r"(\s+)", value)
    parts = [_SPACE if piece[:1].isspace() else "".join(map(_char, piece)) for piece in pieces]
    return re.compile("".join(parts))


class Redactor:
    """Replaces every given secret value in a text with ``***``.

    A value is found as written, percent-encoded once or twice (either case,
    ``+`` for a space), JSON- or ``repr``-escaped, as HTML entities, and with
    any run of its whitespace written as any other run (a tail that collapsed
    its blanks). A value given percent-encoded is also found decoded.
    """

    __slots__ = ("_patterns", "margin")

    def __init__(self, values: Iterable[str]) -> None:
        plain: set[str] = set()
        for value in values:
            plain.add(value.strip())
            if "%" in value:
                plain.update((unquote(value).strip(), unquote_plus(value).strip()))
        # Longest first, so a value that contains another is hidden whole.
        ordered = sorted((v for v in plain if v), key=len, reverse=True)
        self._patterns = [_pattern(v) for v in ordered]
        self.margin = _WIDEST * len(ordered[0]) if ordered else 0
        """Characters a secret may span, encoded: how far a cut can hide a part of one."""

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def __call__(self, text: str) -> str:
        """``text`` with every secret value replaced by ``***``."""
        for pattern in self._patterns:
            text = pattern.sub(REDACTED, text)
        return text

    def clipped(self, text: str, *, start: bool = False, end: bool = False) -> str:
        """Redact ``text`` that was cut from something longer at its ``start`` or ``end``.

        A secret cut in two is no longer recognised; whatever of it is left can
        only lie within ``margin`` characters of the cut, so that much is dropped.
        """
        text = self(text)
        if not self._patterns:
            return text
        if start:
            text = text[self.margin :]
        if end:
            text = text[: max(len(text) - self.margin, 0)]
        return text


def _accept_text(value: Any) -> Any:
    if isinstance(value, Secret | str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"expected text, got {type(value).__name__}"
        raise ValueError(msg)
    return str(value)


def _serialize_text(value: str | Secret) -> str:
    return str(value)


Text = Annotated[
    str | Secret,
    BeforeValidator(_accept_text),
    PlainSerializer(_serialize_text, return_type=str),
    WithJsonSchema({"type": "string"}),
]
"""A string field that may hold a secret; serializes secrets as ``***``."""


def _check_http_url(value: str | Secret) -> str | Secret:
    text = reveal(value)
    scheme, sep, rest = text.partition("://")
    if scheme not in ("http", "https") or not sep or not rest or rest.startswith("/"):
        msg = "expected an http:// or https:// URL with a host"
        raise ValueError(msg)
    return value


HttpUrlText = Annotated[
    str | Secret,
    BeforeValidator(_accept_text),
    AfterValidator(_check_http_url),
    PlainSerializer(_serialize_text, return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^https?://"}),
]
"""An http(s) URL that may hold a secret (checked on the real value, shown as ``***``)."""
