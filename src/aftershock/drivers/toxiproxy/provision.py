"""A proxy a run provisions for itself: created when missing, journaled, removed when the run ends.

Probes often go through the proxy of a target declared with ``upstream``, so
it must be there before the first fault. A proxy that exists is left as it
is. A missing one is created, journaled first when a journal is given
(``resource_intent`` before the POST, ``resource_created`` with the answer),
and deleted when the run's exit stack closes (``resource_released``), so
``aftershock recover`` can finish the job after a crash. Only the proxy the
journal says aftershock created is ever deleted (``ownership.created_by_us``).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import replace

from aftershock.drivers.toxiproxy.calls import retrying, translated
from aftershock.drivers.toxiproxy.client import ToxiproxyClient
from aftershock.drivers.toxiproxy.errors import ToxiproxyNotFound
from aftershock.drivers.toxiproxy.ownership import FOREIGN, PROXY, create_once, release_proxy
from aftershock.drivers.toxiproxy.undo import ToxiproxyUndo, with_undo
from aftershock.errors import DriverError, FaultInjectionFailed, RevertFailed
from aftershock.model.targets import TargetKind
from aftershock.ports import Handle, ResourceJournal

__all__ = ["Provisioned", "provision_proxy"]


class Provisioned:
    """A proxy ``provision_proxy`` is creating or created, until the run's stack closes."""

    def __init__(self, handle: Handle, undo: ToxiproxyUndo, journal: ResourceJournal | None):
        self.handle, self.undo, self.journal = handle, undo, journal
        self.confirmed = False
        """The creating call's answer is known (and journaled, with a journal)."""
        self.done = False

    def release(self, outcome: str) -> None:
        """Record that aftershock holds nothing there any more, and why."""
        self.done = True
        if self.journal is not None:
            self.journal.resource_released(self.handle, outcome)

    async def remove(self, client: ToxiproxyClient) -> None:
        """Delete the proxy if it is still ours; a failure stays journaled for recover."""
        if self.done:
            return
        try:
            with translated(self.handle.target, client.base_url, RevertFailed):
                outcome = await release_proxy(client, self.undo, confirmed=self.confirmed)
        except DriverError as exc:
            if self.journal is None:
                raise
            # The record keeps it outstanding: `aftershock recover` retries, and
            # the rest of the run's cleanup goes on.
            self.journal.resource_release_failed(self.handle, str(exc))
            return
        self.release(outcome)


async def provision_proxy(
    client: ToxiproxyClient,
    undo: ToxiproxyUndo,
    *,
    target: str,
    run_id: str,
    journal: ResourceJournal | None,
    stack: AsyncExitStack,
) -> None:
    """Create the proxy ``undo`` describes unless it exists; remove it when ``stack`` closes."""
    handle = Handle(
        run_id=run_id,
        step="provision",
        kind=TargetKind.TOXIPROXY,
        fault=PROXY,
        target=target,
        resources=(f"{undo.api}/proxies/{undo.proxy}",),
        undo=undo.to_json(),
    )
    with translated(target, undo.api, FaultInjectionFailed):
        try:
            await retrying(lambda: client.get_proxy(undo.proxy))
            return  # it was there before us: never ours to touch
        except ToxiproxyNotFound:
            pass
        if journal is not None:
            journal.resource_intent(handle)
        held = Provisioned(handle, undo, journal)
        stack.push_async_callback(held.remove, client)
        made = await create_once(client, undo)
        if made is None:
            held.release(FOREIGN)  # someone created it between our read and our POST
            return
        held.undo = replace(undo, created_listen=made.listen, created_upstream=made.upstream)
        held.handle = with_undo(handle, held.undo)
        held.confirmed = True
        if journal is not None:
            journal.resource_created(held.handle)
