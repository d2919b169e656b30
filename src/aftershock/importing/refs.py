"""Chaos Toolkit ``configuration``/``secrets`` and ``${name}`` references, in aftershock terms.

Chaos Toolkit substitutes ``${name}`` (and ``$name``, with ``$$`` for a dollar)
from its configuration first, then from the second level of its secrets, and
leaves unknown names as written. aftershock substitutes from the environment
when it loads a file (``loading/envsubst.py``), so:

* ``{type: env, key: K}`` becomes ``${K}``, and with ``default: D``
  ``${K:-D}``;
* a secret ``{type: env, key: K}`` becomes ``${secret:K}`` (aftershock then
  redacts it everywhere); an inline or Vault secret becomes
  ``${secret:SCOPE_NAME}``, to be set in the environment;
* a literal configuration value is written in place;
* an unknown name stays literal (``$${name}``), as Chaos Toolkit leaves it.

Every literal ``${`` is escaped as ``$${`` so aftershock does not read it as a
reference of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Ref", "References", "Resolved", "TextResult", "whole_reference"]

_TEMPLATE: Final = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[_a-z][_a-z0-9]*)|\{(?P<braced>[_a-z][_a-z0-9]*)\})",
    re.IGNORECASE | re.ASCII,
)
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_WHOLE: Final = re.compile(
    r"\$\{([_a-z][_a-z0-9]*)\}|\$([_a-z][_a-z0-9]*)", re.IGNORECASE | re.ASCII
)


def whole_reference(value: str) -> str | None:
    """The name in a string that is one reference and nothing else (``${name}``)."""
    match = _WHOLE.fullmatch(value.strip())
    return (match.group(1) or match.group(2)) if match else None


@dataclass(frozen=True, slots=True)
class Ref:
    """What one Chaos Toolkit name stands for in aftershock text.

    ``text`` is the aftershock reference (``${K}``) or the escaped literal;
    ``literal`` the value itself when it is known now (a literal, or an env
    default); ``problem`` says why the name cannot be used, if it cannot.
    """

    text: str | None
    literal: Any = None
    env: str | None = None
    secret: bool = False
    problem: str | None = None
    described: str = ""


@dataclass(frozen=True, slots=True)
class TextResult:
    """A translated string and what went wrong on the way (empty when nothing)."""

    text: str
    problems: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Resolved:
    """A value the importer needs now (a number), from a literal or a reference."""

    value: Any
    env: str | None = None
    problem: str | None = None


def _escape(text: str) -> str:
    return text.replace("${", "$${")


def _env_ref(key: object, default: object, *, secret: bool = False) -> Ref:
    if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
        return Ref(None, problem=f"environment key {key!r} is not a variable name aftershock reads")
    if secret:
        return Ref(f"${{secret:{key}}}", env=key, secret=True, described=f"${{secret:{key}}}")
    if default is None:
        return Ref(f"${{{key}}}", env=key, described=f"${{{key}}}")
    text = _literal_text(default)
    if text is None or "}" in text or "$" in text:
        problem = f"the default of {key} cannot be written in ${{{key}:-...}}; set {key}"
        return Ref(f"${{{key}}}", env=key, problem=problem, described=f"${{{key}}}")
    return Ref(f"${{{key}:-{text}}}", literal=default, env=key, described=f"${{{key}:-{text}}}")


def _literal_text(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _configuration(value: object) -> Ref:
    if isinstance(value, dict) and "type" in value:
        if value.get("type") == "env":
            return _env_ref(value.get("key"), value.get("default"))
        return Ref(None, problem=f"configuration of type {value.get('type')!r} is not translated")
    text = _literal_text(value)
    if text is None:
        return Ref(
            None,
            literal=value,
            problem="a structured configuration value cannot be written into a string",
        )
    return Ref(_escape(text), literal=value, described=repr(value))


def _secret(scope: str, name: str, value: object) -> Ref:
    if isinstance(value, dict) and value.get("type") == "env":
        return _env_ref(value.get("key"), None, secret=True)
    var = re.sub(r"[^A-Za-z0-9_]", "_", f"{scope}_{name}").upper()
    kind = "a Vault secret" if isinstance(value, dict) else "an inline secret"
    ref = _env_ref(var, None, secret=True)
    return Ref(
        ref.text,
        env=var,
        secret=True,
        problem=f"{kind} is read from the environment variable {var} in aftershock; set it there",
        described=ref.described,
    )


class References:
    """The names an experiment defines, and the translation of its strings."""

    def __init__(self, configuration: object, secrets: object) -> None:
        self.names: dict[str, Ref] = {}
        self.secret_scopes: dict[str, list[str]] = {}
        if isinstance(secrets, dict):
            for scope, entries in reversed(list(secrets.items())):
                if not isinstance(entries, dict):
                    continue
                self.secret_scopes[str(scope)] = [str(n) for n in entries]
                for name, value in entries.items():
                    self.names[str(name)] = _secret(str(scope), str(name), value)
        self.configuration: dict[str, Ref] = {}
        if isinstance(configuration, dict):
            for name, value in configuration.items():
                self.configuration[str(name)] = _configuration(value)
        # Configuration is looked up before the secrets, as Chaos Toolkit does.
        self.names.update(self.configuration)
        self.used: dict[str, Ref] = {}

    def lookup(self, name: str) -> Ref | None:
        """The reference ``name`` stands for, recorded as used; ``None`` if undefined."""
        ref = self.names.get(name)
        if ref is not None:
            self.used[name] = ref
        return ref

    def text(self, value: str) -> TextResult:
        """``value`` as aftershock text: references translated, literals escaped."""
        segments: list[tuple[bool, str]] = []  # (is a reference, text)
        problems: list[str] = []
        unknown: list[str] = []
        pos = 0
        for match in _TEMPLATE.finditer(value):
            segments.append((False, value[pos : match.start()]))
            pos = match.end()
            if match.group("escaped"):
                segments.append((False, "$"))
                continue
            name = match.group("named") or match.group("braced")
            ref = self.lookup(name)
            if ref is not None and ref.problem is not None:
                problems.append(f"${{{name}}}: {ref.problem}")
            if ref is None or ref.text is None:
                if ref is None:
                    unknown.append(name)
                segments.append((False, match.group(0)))
            elif ref.env is None:
                segments.append((False, str(_literal_text(ref.literal))))
            else:
                segments.append((True, ref.text))
        segments.append((False, value[pos:]))
        out: list[str] = []
        literal = ""
        for is_ref, text in segments:
            if not is_ref:
                literal += text
                continue
            if literal.endswith("$"):
                problems.append(f"a '$' right before {text} cannot be written in aftershock")
            out.extend((_escape(literal), text))
            literal = ""
        out.append(_escape(literal))
        return TextResult("".join(out), tuple(problems), tuple(unknown))

    def resolve(self, value: object, convert: Callable[[object], Any]) -> Resolved:
        """A value needed now: a literal, or a reference to one (an env default counts).

        ``convert`` turns the literal into what is needed and raises ``ValueError``
        (or ``TypeError``) when it cannot.
        """
        literal = value
        env: str | None = None
        if isinstance(value, str) and (name := whole_reference(value)) is not None:
            ref = self.lookup(name)
            if ref is None:
                return Resolved(None, problem=f"{value!r} names no configuration entry")
            env = ref.env
            if ref.literal is None:
                why = ref.problem or f"{ref.described} has no value known before the run"
                return Resolved(None, env=env, problem=why)
            literal = ref.literal
        try:
            return Resolved(convert(literal), env=env)
        except (ValueError, TypeError) as exc:
            return Resolved(None, env=env, problem=str(exc) or f"unusable value {literal!r}")
