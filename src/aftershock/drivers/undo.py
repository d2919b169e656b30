"""Typed undo records: what a driver writes into ``Handle.undo`` and reads back.

Each driver keeps its undo record as one frozen dataclass with a version ``v``
(``<driver>/undo.py``) and reads and writes it through one pair of functions,
``undo_of(handle, failure)`` and ``with_undo(handle, record)``; no driver code
indexes ``handle.undo`` itself. The JSON keys are those of the untyped records
written before the version existed, so a record without ``v`` is version 1 and
a journal written then is reverted as it always was.

``Fields`` reads one JSON object strictly: a missing required field, or a field
of the wrong type, raises ``MalformedUndo`` naming it (``pods[2].uid``); fields
a record does not know are ignored, so a record read by an older aftershock
of the same version still reverts. A version newer than the reader's is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol, Self, TypeVar

from aftershock.errors import DriverError
from aftershock.ports import JSON, Handle

__all__ = ["VERSION_KEY", "Fields", "MalformedUndo", "UndoRecord", "read_undo", "write_undo"]

VERSION_KEY = "v"
"""The key of the record's version."""
T = TypeVar("T")


class MalformedUndo(ValueError):
    """An undo record lacks a field, or holds one of the wrong type, or is too new."""


class UndoRecord(Protocol):
    """What every driver's undo record provides."""

    def to_json(self) -> dict[str, JSON]:
        """The record as JSON-ready data, with its version."""
        ...

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Read a record written by ``to_json`` (or an older, unversioned one)."""
        ...


R = TypeVar("R", bound=UndoRecord)


class Fields:
    """Typed reads of one JSON object; ``where`` names it in errors."""

    def __init__(self, data: object, where: str = "undo") -> None:
        if not isinstance(data, Mapping):
            msg = f"{where} is not an object"
            raise MalformedUndo(msg)
        self.data: Mapping[str, Any] = data
        self.where = where

    def version(self, current: int) -> int:
        """The record's version (1 when absent); ``MalformedUndo`` when newer than ``current``."""
        found = self.integer(VERSION_KEY, 1)
        if not 1 <= found <= current:
            msg = f"{self.where} is version {found}; this aftershock reads up to {current}"
            raise MalformedUndo(msg)
        return found

    def _get(self, key: str, check: Callable[[object], bool], kind: str, default: Any) -> Any:
        if key not in self.data or self.data[key] is None:
            if default is _REQUIRED:
                msg = f"{self.where} has no {key!r}"
                raise MalformedUndo(msg)
            return default
        value = self.data[key]
        if not check(value):
            msg = f"{self.where}.{key} is not {kind}"
            raise MalformedUndo(msg)
        return value

    def text(self, key: str, default: str | None = None) -> str:
        """A string; ``default`` when absent or null (required when there is none)."""
        value: str = self._get(key, _is_str, "a string", _required(default))
        return value

    def optional_text(self, key: str) -> str | None:
        """A string, or None when absent or null."""
        value: str | None = self._get(key, _is_str, "a string", None)
        return value

    def integer(self, key: str, default: int | None = None) -> int:
        """An integer (not a boolean); ``default`` when absent or null."""
        value: int = self._get(key, _is_int, "an integer", _required(default))
        return value

    def optional_integer(self, key: str) -> int | None:
        """An integer, or None when absent or null."""
        value: int | None = self._get(key, _is_int, "an integer", None)
        return value

    def number(self, key: str, default: float | None = None) -> float:
        """A number (integer or float, not a boolean) as a float; ``default`` when absent."""
        value: float = self._get(key, _is_number, "a number", _required(default))
        return float(value)

    def optional_number(self, key: str) -> float | None:
        """A number as a float, or None when absent or null."""
        value: float | None = self._get(key, _is_number, "a number", None)
        return None if value is None else float(value)

    def flag(self, key: str, default: bool | None = None) -> bool:
        """A boolean; ``default`` when absent or null."""
        value: bool = self._get(key, _is_bool, "a boolean", _required(default))
        return value

    def optional_flag(self, key: str) -> bool | None:
        """A boolean, or None when absent or null."""
        value: bool | None = self._get(key, _is_bool, "a boolean", None)
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        """A list of strings (empty when absent or null)."""
        items = self._get(key, lambda v: isinstance(v, list), "a list", [])
        if not all(isinstance(item, str) for item in items):
            msg = f"{self.where}.{key} is not a list of strings"
            raise MalformedUndo(msg)
        return tuple(items)

    def optional_texts(self, key: str) -> tuple[str, ...] | None:
        """A list of strings, or None when absent or null."""
        if self.data.get(key) is None:
            return None
        return self.texts(key)

    def records(self, key: str, read: Callable[[Fields], T]) -> tuple[T, ...]:
        """A list of objects, each read by ``read`` (empty when absent or null)."""
        items = self._get(key, lambda v: isinstance(v, list), "a list", [])
        return tuple(read(Fields(item, f"{self.where}.{key}[{i}]")) for i, item in enumerate(items))

    def mapping(self, key: str) -> dict[str, int]:
        """An object of integers (empty when absent or null)."""
        value = self._get(key, lambda v: isinstance(v, Mapping), "an object", {})
        if not all(isinstance(k, str) and _is_int(v) for k, v in value.items()):
            msg = f"{self.where}.{key} is not an object of integers"
            raise MalformedUndo(msg)
        return dict(value)


class _Required:
    def __repr__(self) -> str:
        return "<required>"


_REQUIRED: Any = _Required()


def _required(default: Any) -> Any:
    return _REQUIRED if default is None else default


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def read_undo(handle: Handle, record: type[R], failure: type[DriverError]) -> R:
    """``handle.undo`` as ``record``; a malformed one is ``failure`` naming the handle's target."""
    try:
        return record.from_json(handle.undo)
    except MalformedUndo as exc:
        msg = f"the undo record of {handle.fault} ({handle.step}) is unusable: {exc}"
        raise failure(msg, target=handle.target) from exc


def write_undo(handle: Handle, record: UndoRecord) -> Handle:
    """A copy of ``handle`` whose undo record is ``record``."""
    return replace(handle, undo=record.to_json())
