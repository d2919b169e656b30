"""Keep secrets out of sample details.

Every detail a probe builds passes through a ``Redactor`` made from the probe's
spec, so a secret echoed back by a server (in an error message, a JSON value,
percent-encoded in an echoed URL) or surfacing in an SDK exception text is
replaced by ``***`` before anyone sees it. The redactor knows each secret
whole and each secret value substituted into it: a URL that carries a token
in its query hides the token wherever it shows up alone.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Final
from urllib.parse import unquote, urlsplit

from aftershock.model.secrets import Redactor, Secret, reveal, secret_values

__all__ = ["SENSITIVE_HEADERS", "Redactor", "redactor_for"]

SENSITIVE_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-token"}
)
"""Header names whose values are hidden even when not written as ``${secret:...}``."""


def _credentials(url: str) -> list[str]:
    """The password of a URL's user info, and the Basic credential httpx makes of it."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    if parts.password is None:
        return []
    user, password = unquote(parts.username or ""), unquote(parts.password)
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    return [password, basic]


def redactor_for(
    *texts: str | Secret | None,
    headers: Mapping[str, str | Secret] | None = None,
) -> Redactor:
    """Hide the secret ``texts``, secret header values and sensitive header values.

    Secrets are hidden whole and by their parts; a secret whose parts were not
    recorded is hidden by the values its variables hold in this environment.
    """
    given = [t for t in texts if t is not None]
    values = secret_values([*given, *(headers or {}).values()], os.environ)
    for text in given:
        # A password in a URL is a credential whether or not it was written as a secret.
        values.extend(_credentials(reveal(text)))
    for name, value in (headers or {}).items():
        if isinstance(value, Secret) or name.lower() in SENSITIVE_HEADERS:
            plain = reveal(value)
            values.append(plain)
            # "Bearer abc": a server may echo only the credential part.
            scheme, _, credential = plain.partition(" ")
            if credential.strip() and scheme.isalpha():
                values.append(credential.strip())
    return Redactor(values)
