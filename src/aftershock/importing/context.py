"""What every part of one import shares: the source, its references, targets, names, warnings."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from aftershock.errors import Problem
from aftershock.importing.refs import References, whole_reference
from aftershock.importing.source import CtkSource, Path
from aftershock.model.units import format_duration

__all__ = ["Activity", "Context", "duration_text", "slug"]

_NOT_NAME: Final = re.compile(r"[^a-z0-9_.-]+", re.ASCII)
_MAX_NAME: Final = 63


def slug(text: str, fallback: str) -> str:
    """``text`` as an aftershock name (lowercase, ``-`` for the rest, at most 63 characters)."""
    name = _NOT_NAME.sub("-", text.replace("${", "").lower()).strip("-_.")
    name = re.sub(r"-{2,}", "-", name)
    if len(name) > _MAX_NAME:
        cut = name[:_MAX_NAME]
        name = cut.rsplit("-", 1)[0] if "-" in cut[20:] else cut
    name = name.strip("-_.")
    return name or fallback


@dataclass(frozen=True, slots=True)
class Activity:
    """One Chaos Toolkit activity (a ``ref`` already followed) and where it was written."""

    path: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        """The activity's ``name`` (or ``?``)."""
        return str(self.data.get("name", "?"))

    @property
    def kind(self) -> str:
        """``action`` or ``probe``."""
        return str(self.data.get("type", "action"))

    @property
    def provider(self) -> dict[str, Any]:
        """The ``provider`` mapping (empty if missing)."""
        provider = self.data.get("provider")
        return provider if isinstance(provider, dict) else {}

    @property
    def provider_type(self) -> str:
        """``http``, ``process`` or ``python``."""
        return str(self.provider.get("type", ""))

    @property
    def function(self) -> tuple[str, str]:
        """(module, func) of a python provider."""
        return str(self.provider.get("module", "")), str(self.provider.get("func", ""))

    @property
    def arguments(self) -> dict[str, Any]:
        """The provider's ``arguments`` mapping (empty if none or not a mapping)."""
        args = self.provider.get("arguments")
        return args if isinstance(args, dict) else {}

    def describe(self) -> str:
        """``"name" (module.func)`` or ``"name" (http)``, for comments and warnings."""
        if self.provider_type == "python":
            module, func = self.function
            return f'"{self.name}" ({module}.{func})'
        return f'"{self.name}" ({self.provider_type or "no provider"})'


@dataclass
class Context:
    """The state of one import."""

    source: CtkSource
    refs: References
    warnings: list[Problem] = field(default_factory=list)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    names: dict[str, set[str]] = field(default_factory=dict)
    """Names given out so far, per kind (``target``, ``probe``, ``step``)."""

    def warn(self, path: Path, message: str) -> None:
        """Record something that was not translated, or not as written."""
        problem = self.source.problem(path, message)
        if problem not in self.warnings:
            self.warnings.append(problem)

    def unique(self, base: str, fallback: str) -> str:
        """A ``fallback``-kind name not given out yet in this import, from ``base``."""
        name = slug(base, fallback)
        taken = self.names.setdefault(fallback, set())
        candidate, n = name, 2
        while candidate in taken:
            suffix = f"-{n}"
            candidate = name[: _MAX_NAME - len(suffix)].rstrip("-_.") + suffix
            n += 1
        taken.add(candidate)
        return candidate

    def target(self, base: str, spec: dict[str, Any]) -> str:
        """The name of the target ``spec`` (the same name for the same spec)."""
        for name, known in self.targets.items():
            if known == spec:
                return name
        name = self.unique(base, "target")
        self.targets[name] = spec
        return name

    def text(self, value: object, path: Path) -> str | None:
        """A string value as aftershock text; ``None`` (and a warning) if it is not a string."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.warn(path, f"expected a string, got {_kind(value)}")
            return None
        result = self.refs.text(str(value))
        for problem in result.problems:
            self.warn(path, problem)
        for name in result.unknown:
            self.warn(
                path,
                f"${{{name}}} names no configuration or secret entry; kept as literal text",
            )
        return result.text

    def value(self, value: object, path: Path, convert: Callable[[object], Any]) -> Any:
        """A value needed now (a number, a flag); ``None`` and a warning if it is not known."""
        resolved = self.refs.resolve(value, convert)
        if resolved.problem is not None:
            self.warn(path, f"{resolved.problem}")
            return None
        if resolved.env is not None:
            self.warn(
                path,
                f"the value comes from ${resolved.env} in Chaos Toolkit; aftershock cannot read "
                f"a number from the environment here, so its default {resolved.value!r} is written",
            )
        return resolved.value

    def duration(self, value: object, path: Path, unit: timedelta) -> str | None:
        """A number of ``unit`` as a duration text; an env reference stays one (``${K}ms``)."""
        ref_text = self._whole_env_ref(value)
        if ref_text is not None and unit in _UNIT_SUFFIX:
            return ref_text + _UNIT_SUFFIX[unit]
        number = self.value(value, path, _non_negative)
        if number is None:
            return None
        return duration_text(unit * number)

    def _whole_env_ref(self, value: object) -> str | None:
        name = whole_reference(value) if isinstance(value, str) else None
        if name is None:
            return None
        ref = self.refs.lookup(name)
        if ref is None or ref.env is None or ref.secret or ref.text is None:
            return None
        return ref.text


_UNIT_SUFFIX: Final = {
    timedelta(milliseconds=1): "ms",
    timedelta(seconds=1): "s",
}
"""Units aftershock durations can carry after an environment reference."""


def duration_text(value: timedelta) -> str:
    """``value`` as a duration with a unit; below a millisecond as a decimal (``1.5ms``)."""
    micros = round(value / timedelta(microseconds=1))
    if micros % 1000 == 0:
        return format_duration(timedelta(microseconds=micros))
    return f"{micros // 1000}.{micros % 1000:03d}".rstrip("0") + "ms"


_LARGEST: Final = 1e9


def _non_negative(value: object) -> float:
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got {value!r}")
    number = float(value) if isinstance(value, int | float | str) else None
    if number is None or not 0 <= number <= _LARGEST:
        raise ValueError(f"expected a number from 0 to {_LARGEST:g}, got {value!r}")
    return number


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
