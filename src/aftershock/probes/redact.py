"""Keep secrets out of sample details.

Every detail a probe builds passes through a ``Redactor`` made from the probe's
spec, so a secret echoed back by a server (in an error message, a JSON value)
or surfacing in an SDK exception text is replaced by ``***`` before anyone sees it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from aftershock.model.secrets import REDACTED, Secret

__all__ = ["SENSITIVE_HEADERS", "Redactor"]

SENSITIVE_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-token"}
)
"""Header names whose values are hidden even when not written as ``${secret:...}``."""


class Redactor:
    """Replaces every known sensitive value in a text with ``***``."""

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[str]) -> None:
        # Longest first, so a value that contains another is hidden whole.
        self._values = sorted({v for v in values if v}, key=len, reverse=True)

    @classmethod
    def for_spec(
        cls,
        *texts: str | Secret | None,
        headers: Mapping[str, str | Secret] | None = None,
    ) -> Redactor:
        """Hide the secret ``texts``, secret header values and sensitive header values."""
        values = [t.reveal() for t in texts if isinstance(t, Secret)]
        for name, value in (headers or {}).items():
            if isinstance(value, Secret) or name.lower() in SENSITIVE_HEADERS:
                plain = value.reveal() if isinstance(value, Secret) else value
                values.append(plain)
                # "Bearer abc": a server may echo only the credential part.
                scheme, _, credential = plain.partition(" ")
                if credential.strip() and scheme.isalpha():
                    values.append(credential.strip())
        return cls(values)

    def __call__(self, text: str) -> str:
        """``text`` with every sensitive value replaced by ``***``."""
        for value in self._values:
            text = text.replace(value, REDACTED)
        return text
