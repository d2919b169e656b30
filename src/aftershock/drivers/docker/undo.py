"""The Docker driver's undo record: which daemon, which containers, and how they were hit.

Its JSON keys are those of the records written before it had a version, so
those read as version 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Self

from aftershock.drivers.undo import VERSION_KEY, Fields, read_undo, write_undo
from aftershock.errors import DriverError
from aftershock.ports import JSON, Handle

__all__ = ["UNDO_VERSION", "Chosen", "DockerUndo", "undo_of", "with_undo"]

UNDO_VERSION: Final = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Chosen:
    """One container the fault was aimed at, as it was at prepare."""

    id: str
    name: str
    state: str = ""

    @classmethod
    def read(cls, fields: Fields) -> Self:
        """From one entry of ``containers``."""
        return cls(
            id=fields.text("id"), name=fields.text("name", ""), state=fields.text("state", "")
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DockerUndo:
    """How to undo a Docker fault from the journal alone."""

    v: int = UNDO_VERSION
    host: str
    """The daemon URL, as resolved at prepare (so recover talks to the same daemon)."""
    containers: tuple[Chosen, ...] = ()
    refused: tuple[str, ...] = ()
    """Names the selector matched but the allowlist refused (reported, never touched)."""
    own: tuple[str, ...] = ()
    """Names skipped because they are aftershock's own container."""
    signal: str | None = None
    """The signal of ``docker.kill`` and ``docker.crash``."""
    grace: int | None = None
    """Seconds of grace of ``docker.stop`` and ``docker.restart``."""
    applied: tuple[str, ...] | None = None
    """The container ids inject hit (None until it ran); stopped or paused ones are skipped."""

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the containers, for logs."""
        return tuple(c.name for c in self.containers)

    def to_json(self) -> dict[str, JSON]:
        """The record as JSON."""
        return {
            VERSION_KEY: self.v,
            "host": self.host,
            "containers": [{"id": c.id, "name": c.name, "state": c.state} for c in self.containers],
            "names": list(self.names),
            "refused": list(self.refused),
            "own": list(self.own),
            "signal": self.signal,
            "grace": self.grace,
            "applied": None if self.applied is None else list(self.applied),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Read a record written by ``to_json``, or an unversioned one of the same keys."""
        f = Fields(data)
        return cls(
            v=f.version(UNDO_VERSION),
            host=f.text("host"),
            containers=f.records("containers", Chosen.read),
            refused=f.texts("refused"),
            own=f.texts("own"),
            signal=f.optional_text("signal"),
            grace=f.optional_integer("grace"),
            applied=f.optional_texts("applied"),
        )


def undo_of(handle: Handle, failure: type[DriverError]) -> DockerUndo:
    """The undo record of ``handle``; an unusable one is ``failure``."""
    return read_undo(handle, DockerUndo, failure)


def with_undo(handle: Handle, undo: DockerUndo) -> Handle:
    """``handle`` with ``undo`` as its undo record."""
    return write_undo(handle, undo)
