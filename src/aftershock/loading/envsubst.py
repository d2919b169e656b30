"""``${VAR}``, ``${VAR:-default}`` and ``${secret:NAME}`` substitution in YAML strings.

``$${`` escapes a literal ``${``. A string that contains a ``${secret:...}``
reference becomes a ``Secret`` as a whole, so the surrounding text (``Bearer
${secret:TOKEN}``) is redacted with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from aftershock.model.secrets import Secret

__all__ = ["SubstitutionError", "substitute"]

_REF: Final = re.compile(
    r"\$\$\{|\$\{(?:(?P<secret>secret:)(?P<sname>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?)\}"
)
_OPEN: Final = re.compile(r"(?<!\$)\$\{")


class SubstitutionError(ValueError):
    """A reference could not be resolved; the message names the variable."""


def substitute(text: str, env: Mapping[str, str]) -> str | Secret:
    """Resolve every reference in ``text``; raise ``SubstitutionError`` on a missing one."""
    if "${" not in text:
        return text
    secrets: list[str] = []
    parts: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        if match.group("secret"):
            name = match.group("sname")
            if name not in env:
                msg = f"secret {name!r} is not set in the environment"
                raise SubstitutionError(msg)
            secrets.append(name)
            parts.append(env[name])
            return env[name]
        name = match.group("name")
        if name in env:
            return env[name]
        default = match.group("default")
        if default is None:
            msg = f"environment variable {name!r} is not set (write ${{{name}:-default}})"
            raise SubstitutionError(msg)
        return default

    # Check for malformed references before substituting so that nothing half-expands.
    stripped = _REF.sub("", text)
    if _OPEN.search(stripped):
        msg = "malformed reference; expected ${VAR}, ${VAR:-default} or ${secret:NAME}"
        raise SubstitutionError(msg)
    result = _REF.sub(replace, text)
    return Secret(result, tuple(secrets), tuple(parts)) if secrets else result
