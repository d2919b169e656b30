"""The Toxiproxy driver's undo record: which proxy, which toxic, what aftershock created.

One record serves both kinds of handle the driver writes: a fault's (a toxic
added, or the proxy disabled) and a provisioned proxy's (``ownership.PROXY``,
journaled as a resource). Its JSON keys are those of the records written
before it had a version, so those read as version 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Self

from aftershock.drivers.undo import VERSION_KEY, Fields, read_undo, write_undo
from aftershock.errors import DriverError
from aftershock.ports import JSON, Handle

__all__ = ["UNDO_VERSION", "ToxicPlan", "ToxiproxyUndo", "undo_of", "with_undo"]

UNDO_VERSION: Final = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ToxicPlan:
    """The toxic a fault adds, exactly as it is sent to the server."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ToxiproxyUndo:
    """How to undo a Toxiproxy fault, or remove a proxy aftershock created, from the journal."""

    v: int = UNDO_VERSION
    api: str
    """The server's API URL (the embedded server's real URL, not ``embedded``)."""
    proxy: str
    embedded: bool = False
    """The proxy is on an embedded server, which dies with its process and its toxics."""
    listen: str | None = None
    upstream: str | None = None
    """The target's ``listen`` and ``upstream``: what a missing proxy is created with."""
    was_enabled: bool = True
    """Whether the proxy was enabled before ``toxiproxy.down``; a proxy we create starts enabled."""
    created_proxy: bool | None = False
    """True: inject created the proxy; None: it was missing at prepare and inject's
    answer never reached the journal, so it may or may not be ours."""
    created_listen: str | None = None
    created_upstream: str | None = None
    """What the server answered when aftershock created the proxy (the evidence it is ours)."""
    toxic: ToxicPlan | None = None
    """The toxic the fault adds; None: the fault disables the proxy (or: a provisioned proxy)."""

    def to_json(self) -> dict[str, JSON]:
        """The record as JSON; the toxic's fields sit beside ``toxic`` (its name)."""
        data: dict[str, JSON] = {
            VERSION_KEY: self.v,
            "api": self.api,
            "proxy": self.proxy,
            "embedded": self.embedded,
            "listen": self.listen,
            "upstream": self.upstream,
            "was_enabled": self.was_enabled,
            "created_proxy": self.created_proxy,
            "created_listen": self.created_listen,
            "created_upstream": self.created_upstream,
            "toxic": None if self.toxic is None else self.toxic.name,
        }
        if self.toxic is not None:
            data |= {
                "type": self.toxic.type,
                "stream": self.toxic.stream,
                "toxicity": self.toxic.toxicity,
                "attributes": dict(self.toxic.attributes),
            }
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Read a record written by ``to_json``, or an unversioned one of the same keys."""
        f = Fields(data)
        toxic_name = f.optional_text("toxic")
        toxic = None
        if toxic_name is not None:
            toxic = ToxicPlan(
                name=toxic_name,
                type=f.text("type"),
                stream=f.text("stream", "downstream"),
                toxicity=f.number("toxicity", 1.0),
                attributes=f.mapping("attributes"),
            )
        # Absent (a provisioned proxy's record) is False; null is "unknown".
        created = f.optional_flag("created_proxy") if "created_proxy" in f.data else False
        return cls(
            v=f.version(UNDO_VERSION),
            api=f.text("api"),
            proxy=f.text("proxy"),
            embedded=f.flag("embedded", default=False),
            listen=f.optional_text("listen"),
            upstream=f.optional_text("upstream"),
            was_enabled=f.flag("was_enabled", default=True),
            created_proxy=created,
            created_listen=f.optional_text("created_listen"),
            created_upstream=f.optional_text("created_upstream"),
            toxic=toxic,
        )


def undo_of(handle: Handle, failure: type[DriverError]) -> ToxiproxyUndo:
    """The undo record of ``handle``; an unusable one is ``failure``."""
    return read_undo(handle, ToxiproxyUndo, failure)


def with_undo(handle: Handle, undo: ToxiproxyUndo) -> Handle:
    """``handle`` with ``undo`` as its undo record."""
    return write_undo(handle, undo)
