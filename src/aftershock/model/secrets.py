"""Secret values: text that came from ``${secret:NAME}`` and is never shown.

The loader wraps every scalar that contains a ``${secret:...}`` reference in a
``Secret``. Only fields typed ``Text`` accept one; ``str()``/``repr()`` and
serialization always print ``***``, so journals, reports and logs cannot leak it.
Code that must send the value (an HTTP header, a process environment) calls
``reveal()``.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

__all__ = ["REDACTED", "HttpUrlText", "Secret", "Text", "reveal"]

REDACTED: Final = "***"


class Secret:
    """A string value that must not be displayed; ``names`` are the env vars it came from."""

    __slots__ = ("_value", "names")

    def __init__(self, value: str, names: tuple[str, ...] = ()) -> None:
        self._value = value
        self.names = names

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
