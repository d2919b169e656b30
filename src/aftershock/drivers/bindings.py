"""How a driver says which faults and actions it carries out: handlers bound to catalog entries.

Fault and action names exist once, as the constants of ``aftershock.model.faults``
and ``aftershock.model.actions``. A driver writes one handler per constant of
its target kind; each handler names its entry (``handler.fault`` or
``handler.action``) and gets typed parameters from it (``entry.parse``).
``fault_handlers`` and ``action_handlers`` collect them into ``Bindings``, which
refuses, at import, an entry of another kind or two handlers for one entry.
A driver finds the handler of a ``FaultRequest`` by its entry, and that of a
``Handle`` read back from the journal or of an ``ActionRequest`` by name.
Tests check that every entry has exactly one handler, in one driver.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, Protocol, TypeVar

from aftershock.errors import DriverError, FaultInjectionFailed
from aftershock.model.actions import ActionType
from aftershock.model.faults import FaultType, ParamsMismatch
from aftershock.model.targets import TargetKind

__all__ = [
    "Bindings",
    "HasAction",
    "HasFault",
    "action_handlers",
    "fault_handlers",
    "params_checked",
]

E = TypeVar("E", FaultType[Any], ActionType[Any])
H = TypeVar("H")


class HasFault(Protocol):
    """A fault handler: it names the catalog entry it carries out."""

    @property
    def fault(self) -> FaultType[Any]:
        """The entry."""
        ...


class HasAction(Protocol):
    """An action handler: it names the catalog entry it carries out."""

    @property
    def action(self) -> ActionType[Any]:
        """The entry."""
        ...


FH = TypeVar("FH", bound=HasFault)
AH = TypeVar("AH", bound=HasAction)


class Bindings(Generic[E, H]):
    """The handlers of one driver, one per catalog entry of its target kind."""

    def __init__(self, kind: TargetKind | None, handlers: Iterable[tuple[E, H]]) -> None:
        self.kind = kind
        self._handlers: dict[E, H] = {}
        self._names: dict[str, E] = {}
        for entry, handler in handlers:
            if entry.kind is not kind:
                msg = f"{entry.name} applies to {entry.kind} targets, not to {kind}"
                raise ValueError(msg)
            if entry.name in self._names:
                msg = f"{entry.name} is bound twice"
                raise ValueError(msg)
            self._handlers[entry] = handler
            self._names[entry.name] = entry

    @property
    def entries(self) -> tuple[E, ...]:
        """The entries bound, in binding order."""
        return tuple(self._handlers)

    def get(self, entry: E) -> H | None:
        """The handler of ``entry``; ``None`` when this driver has none."""
        return self._handlers.get(entry)

    def named(self, name: str) -> H | None:
        """The handler of the entry called ``name`` (a journaled handle's fault, an action)."""
        entry = self._names.get(name)
        return None if entry is None else self._handlers[entry]

    def items(self) -> Iterator[tuple[E, H]]:
        """``(entry, handler)`` pairs, in binding order."""
        return iter(self._handlers.items())

    def __iter__(self) -> Iterator[E]:
        return iter(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)


def fault_handlers(kind: TargetKind, *handlers: FH) -> Bindings[FaultType[Any], FH]:
    """Bind each handler to the fault it names."""
    return Bindings(kind, ((handler.fault, handler) for handler in handlers))


def action_handlers(kind: TargetKind | None, *handlers: AH) -> Bindings[ActionType[Any], AH]:
    """Bind each handler to the action it names (``kind`` None: standalone actions)."""
    return Bindings(kind, ((handler.action, handler) for handler in handlers))


@contextmanager
def params_checked(
    target: str, failure: type[DriverError] = FaultInjectionFailed
) -> Iterator[None]:
    """Parameters of another model than the entry's (a request built by hand) → ``failure``."""
    try:
        yield
    except ParamsMismatch as exc:
        raise failure(str(exc), target=target) from exc
