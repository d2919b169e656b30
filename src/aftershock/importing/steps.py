"""What one Chaos Toolkit action becomes: faults, an undo, a setup note, or nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aftershock.importing.context import Activity, Context

__all__ = ["Fault", "Handler", "NotTranslated", "Phase", "Setup", "Translation", "Undo"]

Phase = Literal["method", "rollbacks"]
Key = tuple[str, ...]
"""What a fault changed (``("toxic", target, name)``): an undo names the same key."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One aftershock method step, before it is placed on the timeline."""

    name: str
    fault: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    key: Key = ()
    instant: bool = False
    """Done at once and not reverted (a pod deletion, a rollout restart): no ``for``."""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Undo:
    """An action that ends faults: ``keys`` name them (``"*toxiproxy"``: every toxic and outage)."""

    keys: tuple[Key, ...]
    what: str


@dataclass(frozen=True, slots=True)
class Setup:
    """An action that shapes a target rather than breaking it (``create_proxy``)."""

    note: str


@dataclass(frozen=True, slots=True)
class NotTranslated:
    """An action aftershock has no equivalent for; ``reason`` says why."""

    reason: str


Translation = list[Fault] | Undo | Setup | NotTranslated
Handler = Callable[[Context, Activity, Phase], Translation]
"""Translate one python-provider activity of the method or the rollbacks."""
