"""Healer actions as ``events.k8s.io/v1`` Events on their HealingPolicy.

An ``EventSink`` must neither block nor raise, and posting an Event is an API
call: :class:`PolicyEvents` queues what it takes (bounded; beyond it, events are
counted and dropped) and one worker task, owned by the leadership term's
:meth:`PolicyEvents.running` block, posts them in order. Posted: every step of
a playbook (``healer.action``: Normal when it went well, Warning otherwise), an
escalation, and the opening and closing of an incident (with its time to
recover).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final

import structlog

from aftershock.model.schema import GROUP, VERSION
from aftershock.ports import Event

__all__ = ["PolicyEvents"]

QUEUE: Final = 1000
_log = structlog.get_logger("aftershock.operator")

Post = Callable[[Mapping[str, Any], str, str, str], Awaitable[None]]
"""``(regarding, type, reason, note)``: post one Event (``OperatorState.event``)."""


def _regarding(policy: str) -> dict[str, Any]:
    namespace, _, name = policy.rpartition("/")
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HealingPolicy",
        "metadata": {"name": name, "namespace": namespace},
    }


def _describe(event: Event) -> tuple[str, str, str] | None:
    """``(type, reason, note)`` of an event worth an Event, or ``None``."""
    f = event.fields
    if event.kind == "healer.action":
        ok = f.get("outcome") in ("ok", "dry-run")
        note = (
            f"playbook {f.get('playbook')} step {f.get('step')}: {f.get('action')}"
            f" on {f.get('target')}: {f.get('outcome')}"
        )
        if f.get("error"):
            note += f" ({f.get('error')})"
        return ("Normal" if ok else "Warning", "HealingAction", note)
    if event.kind == "healer.escalated":
        return ("Warning", "Escalated", f"escalated: {f.get('target') or f.get('subject')}")
    if event.kind == "incident.opened":
        note = f"watch {f.get('probe')} unhealthy: incident {f.get('incident')}"
        return ("Warning", "Unhealthy", note)
    if event.kind == "incident.closed":
        note = f"watch {f.get('probe')} healthy again: incident {f.get('incident')}"
        if isinstance(f.get("mttr_seconds"), int | float):
            note += f", recovered in {f['mttr_seconds']:.1f} s"
        return ("Normal", "Recovered", note)
    return None


class PolicyEvents:
    """An ``EventSink`` posting healer events as Events, through one worker task."""

    def __init__(self, post: Post) -> None:
        self._post = post
        self._queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE)
        self.dropped = 0
        self.last_action: dict[str, dict[str, Any]] = {}
        """Per policy key: the last playbook step (for the policy's status)."""
        self.last_recovery: dict[str, dict[str, Any]] = {}
        """Per policy key: the last incident closed, with its time to recover."""

    def emit(self, event: Event) -> None:
        """Queue the event if it is worth an Event; never blocks, never raises."""
        policy = event.fields.get("policy")
        if _describe(event) is None or not policy:
            return
        f = event.fields
        at = event.at.isoformat()
        if event.kind == "healer.action":
            self.last_action[str(policy)] = {
                "playbook": f.get("playbook"),
                "action": f.get("action"),
                "target": f.get("target"),
                "outcome": f.get("outcome"),
                "at": at,
            }
        elif event.kind == "incident.closed":
            self.last_recovery[str(policy)] = {
                "incident": f.get("incident"),
                "probe": f.get("probe"),
                "mttrSeconds": f.get("mttr_seconds"),
                "playbooks": f.get("playbooks"),
                "at": at,
            }
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _work(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                described = _describe(event)
                if described is not None:
                    type_, reason, note = described
                    regarding = _regarding(str(event.fields["policy"]))
                    await self._post(regarding, type_, reason, note)
            except Exception as exc:  # noqa: BLE001 - an Event is best effort; logged
                _log.warning("cannot post a healer event", kind=event.kind, error=str(exc))
            finally:
                self._queue.task_done()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[PolicyEvents]:
        """Post events while the block runs; what is queued at its end is posted first."""
        worker = asyncio.create_task(self._work(), name="aftershock-policy-events")
        try:
            yield self
        finally:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), 5.0)
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
