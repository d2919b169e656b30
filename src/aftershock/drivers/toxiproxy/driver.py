"""Toxiproxy faults and healing actions, through ``ToxiproxyClient``.

What each fault and action does is bound to its catalog entry in ``faults`` and
``actions``; this module is the driver around them: one client per server,
the embedded server started on first use, the undo record (``undo``) built at
prepare and read back at inject and revert, and ``leftovers``: toxics named by
aftershock (``faults.toxic_name``) that the journal lost, found and removed by
``aftershock recover``.

A target with ``upstream`` makes aftershock create its proxy when it is
missing. That creation is journaled like a fault, before the POST: as a
resource (``provision``) or in the fault's own intent (``created_proxy`` is
None until ``inject`` knows). Removing it deletes only the proxy aftershock
created, by the rule in ``ownership.created_by_us`` (``provision`` holds a
proxy provisioned for a whole run). Errors are translated by ``calls``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack, suppress
from dataclasses import replace
from functools import partial
from typing import Protocol

import httpx

from aftershock.drivers.bindings import params_checked
from aftershock.drivers.toxiproxy.actions import ACTIONS
from aftershock.drivers.toxiproxy.calls import ignore_missing, refusal, retrying, translated
from aftershock.drivers.toxiproxy.client import ToxiproxyClient
from aftershock.drivers.toxiproxy.errors import ToxiproxyConflict, ToxiproxyError, ToxiproxyNotFound
from aftershock.drivers.toxiproxy.faults import (
    FAULTS,
    PREFIX,
    ToxicFault,
    toxic_attributes,
    toxic_name,
)
from aftershock.drivers.toxiproxy.ownership import PROXY, create_once, release_proxy
from aftershock.drivers.toxiproxy.provision import provision_proxy
from aftershock.drivers.toxiproxy.undo import ToxicPlan, ToxiproxyUndo, undo_of, with_undo
from aftershock.errors import (
    DriverUnavailable,
    FaultInjectionFailed,
    PermanentRemediationError,
    RevertFailed,
    TargetNotFound,
    TargetRefused,
    TemporaryRemediationError,
)
from aftershock.model.targets import TargetKind, TargetSpec, ToxiproxyTarget
from aftershock.ports import ActionRequest, FaultRequest, Handle, ResourceJournal
from aftershock.settings import Allowlist

__all__ = ["PROXY", "EmbeddedServer", "ToxiproxyDriver", "toxic_attributes", "toxic_name"]


class EmbeddedServer(Protocol):
    """What the driver needs of the in-process Toxiproxy-compatible server."""

    @property
    def api_url(self) -> str:
        """The URL its HTTP API answers on."""
        ...

    async def start(self) -> None:
        """Start serving."""

    async def stop(self) -> None:
        """Stop serving; every proxy and toxic goes with it."""


def _default_embedded() -> EmbeddedServer:
    from aftershock.proxy.server import EmbeddedToxiproxy

    return EmbeddedToxiproxy(host="127.0.0.1", port=0)


class ToxiproxyDriver:
    """Fault and action driver for Toxiproxy servers (and the embedded one).

    One client per API URL, closed on the exit stack given to ``start`` (or by
    ``aclose`` when the driver was never started). ``embedded`` builds the
    in-process server used for ``api: embedded``; ``transport`` replaces the
    network in tests.
    """

    kind: TargetKind = TargetKind.TOXIPROXY
    faults = FAULTS
    actions = ACTIONS

    def __init__(
        self,
        allowlist: Allowlist,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        embedded: Callable[[], EmbeddedServer] | None = None,
    ) -> None:
        self._allow = allowlist
        self._transport = transport
        self._embedded_factory = embedded or _default_embedded
        self._embedded_url: str | None = None
        self._clients: dict[str, ToxiproxyClient] = {}
        # Replaced by the run's stack in start(); aclose() serves a driver never started.
        self._stack = AsyncExitStack()
        self._lock = asyncio.Lock()

    async def start(self, stack: AsyncExitStack) -> None:
        """Use ``stack`` for the clients and the embedded server started later."""
        self._stack = stack

    async def aclose(self) -> None:
        """Close what the driver opened; only needed when ``start`` was never called."""
        await self._stack.aclose()

    async def resolve_api(self, api: str) -> str:
        """The real API URL: ``embedded`` starts the in-process server on first use."""
        if api != "embedded":
            return api.rstrip("/")
        async with self._lock:
            if self._embedded_url is None:
                server = self._embedded_factory()
                await server.start()
                self._stack.push_async_callback(self._stop_embedded, server)
                self._embedded_url = server.api_url.rstrip("/")
            return self._embedded_url

    async def _stop_embedded(self, server: EmbeddedServer) -> None:
        self._embedded_url = None  # a later run starts a fresh one
        await server.stop()

    def _client(self, api: str) -> ToxiproxyClient:
        client = self._clients.get(api)
        if client is None:
            client = self._clients[api] = ToxiproxyClient(api, transport=self._transport)
            self._stack.push_async_callback(self._close_client, api)
        return client

    async def _close_client(self, api: str) -> None:
        client = self._clients.pop(api, None)
        if client is not None:
            await client.aclose()

    def _checked(self, target_name: str, target: TargetSpec) -> ToxiproxyTarget:
        body = target.toxiproxy
        if body is None:
            msg = f"not a toxiproxy target ({target.kind.value})"
            raise TargetNotFound(msg, target=target_name)
        if not self._allow.allows_toxiproxy(body.api):
            msg = f"{target_name}: Toxiproxy server {body.api} is not in the allowlist"
            raise TargetRefused(msg)
        return body

    # ------------------------------------------------------------ provisioning
    async def provision(
        self,
        target_name: str,
        target: TargetSpec,
        *,
        journal: ResourceJournal | None = None,
        run_id: str = "",
    ) -> None:
        """Make sure a proxy declared with listen/upstream exists for the whole run.

        Probes often go through the proxy, so it must be there before the first
        fault. A proxy that exists is left as it is. A missing one is created,
        journaled first when ``journal`` is given (``resource_intent`` before the
        POST, ``resource_created`` with the answer), and deleted when the
        driver's stack closes (``resource_released``), so ``aftershock recover``
        can finish the job after a crash. Proxies on an embedded server are not
        journaled: they die with the process that runs it.
        """
        body = self._checked(target_name, target)
        if body.upstream is None:
            return
        api = await self.resolve_api(body.api)
        await provision_proxy(
            self._client(api),
            ToxiproxyUndo(api=api, proxy=body.proxy, upstream=body.upstream, listen=body.listen),
            target=target_name,
            run_id=run_id,
            journal=None if body.api == "embedded" else journal,
            stack=self._stack,
        )

    async def remove_created_proxy(self, handle: Handle, *, confirmed: bool) -> str:
        """Delete the proxy ``handle`` journals aftershock creating, if it still is that one.

        Returns ``"deleted"``, ``"absent"`` (never created, or gone already) or
        ``"not ours"`` (a proxy of that name that ``created_by_us`` does not
        recognise, left alone). ``confirmed``: the creating call's answer was
        journaled. Unreachable → ``DriverUnavailable``; refused → ``RevertFailed``.
        """
        undo = undo_of(handle, RevertFailed)
        with translated(handle.target, undo.api, RevertFailed):
            return await release_proxy(self._client(undo.api), undo, confirmed=confirmed)

    @staticmethod
    def located(handle: Handle) -> tuple[str, str] | None:
        """``(api URL, proxy)`` of a handle this driver wrote; None when its record is unusable."""
        try:
            undo = undo_of(handle, RevertFailed)
        except RevertFailed:
            return None
        return undo.api, undo.proxy

    @staticmethod
    def in_process(handle: Handle) -> bool:
        """True for a fault on an embedded server: it ended with the process that ran it."""
        try:
            return undo_of(handle, RevertFailed).embedded
        except RevertFailed:
            return False

    # ------------------------------------------------------------ faults
    async def prepare(self, request: FaultRequest) -> Handle:
        """Check the target and build the handle; only reads from the server."""
        body = self._checked(request.target_name, request.target)
        target = request.target_name
        handler = FAULTS.get(request.fault)
        if handler is None:
            raise FaultInjectionFailed(
                f"unknown Toxiproxy fault {request.fault.name!r}", target=target
            )
        api = await self.resolve_api(body.api)
        toxic: ToxicPlan | None = None
        if isinstance(handler, ToxicFault):
            with params_checked(target):
                toxic = handler.plan(toxic_name(request.run_id, request.step), request.params)
        undo = ToxiproxyUndo(
            api=api,
            proxy=body.proxy,
            embedded=body.api == "embedded",
            listen=body.listen,
            upstream=body.upstream,
            toxic=toxic,
        )
        resource = f"{api}/proxies/{body.proxy}"
        if toxic is not None:
            resource += f"/toxics/{toxic.name}"
        with translated(target, api, FaultInjectionFailed):
            try:
                proxy = await retrying(lambda: self._client(api).get_proxy(body.proxy))
                undo = replace(undo, was_enabled=proxy.enabled)
            except ToxiproxyNotFound as exc:
                if body.upstream is None:
                    msg = f"proxy {body.proxy!r} not found on {api} (and no upstream to create it)"
                    raise TargetNotFound(msg, target=target) from exc
                # Missing: inject creates it. Until its answer is journaled (the
                # applied handle), whether it did is unknown, and revert decides.
                undo = replace(undo, created_proxy=None)
        return Handle(
            run_id=request.run_id,
            step=request.step,
            kind=self.kind,
            fault=request.fault.name,
            target=target,
            resources=(resource,),
            undo=undo.to_json(),
        )

    async def inject(self, handle: Handle) -> Handle:
        """Create the proxy if ``prepare`` found it missing, then add the toxic or disable it."""
        undo = undo_of(handle, FaultInjectionFailed)
        client = self._client(undo.api)
        created = False
        with translated(handle.target, undo.api, FaultInjectionFailed):
            try:
                if undo.upstream and undo.created_proxy is None:
                    made = await create_once(client, undo)
                    created = made is not None
                    undo = replace(undo, created_proxy=created)
                    if made is not None:
                        undo = replace(
                            undo, created_listen=made.listen, created_upstream=made.upstream
                        )
                    handle = with_undo(handle, undo)
                if undo.toxic is None:
                    await retrying(lambda: client.update_proxy(undo.proxy, enabled=False))
                else:
                    await _add_toxic(client, undo.proxy, undo.toxic)
            except (DriverUnavailable, ToxiproxyError):
                if created:  # leave nothing half-applied behind
                    with suppress(DriverUnavailable, ToxiproxyError):
                        await client.delete_proxy(undo.proxy)
                raise
        return handle

    async def revert(self, handle: Handle) -> None:
        """Remove the toxic or re-enable the proxy; delete a proxy we created. Idempotent.

        ``created_proxy`` True: inject created the proxy; None: it was missing
        at prepare and inject's answer never reached the journal (a crash), so
        it may or may not be ours; ``created_by_us`` decides in both cases.
        """
        undo = undo_of(handle, RevertFailed)
        client = self._client(undo.api)
        created = undo.created_proxy
        try:
            with translated(handle.target, undo.api, RevertFailed):
                if undo.toxic is None and created is False:
                    enabled = undo.was_enabled
                    await ignore_missing(lambda: client.update_proxy(undo.proxy, enabled=enabled))
                elif undo.toxic is not None:
                    await ignore_missing(partial(client.delete_toxic, undo.proxy, undo.toxic.name))
                if created is not False:
                    await release_proxy(client, undo, confirmed=created is True)
        except DriverUnavailable:
            if undo.embedded and undo.api != self._embedded_url:
                return  # an embedded server dies with its process, and its toxics with it
            raise

    # ------------------------------------------------------------ leftovers
    async def leftovers(self, api: str, run_id: str | None = None) -> list[tuple[str, str]]:
        """``(proxy, toxic)`` pairs named by aftershock (of ``run_id`` only, when given).

        A run id that is a prefix of another (``r1`` and ``r1-b``) also matches
        the longer one's toxics: names carry no separator the step cannot contain.
        """
        if api == "embedded" and self._embedded_url is None:
            return []  # no embedded server in this process: nothing can be left on it
        url = await self.resolve_api(api)
        prefix = PREFIX if run_id is None else f"{PREFIX}{run_id}-"
        with translated(api, url, RevertFailed):
            proxies = await retrying(self._client(url).proxies)
        return [
            (proxy.name, toxic.name)
            for proxy in sorted(proxies.values(), key=lambda x: x.name)
            for toxic in proxy.toxics
            if toxic.name.startswith(prefix)
        ]

    async def remove_leftovers(self, api: str, run_id: str | None = None) -> list[tuple[str, str]]:
        """Remove what ``leftovers`` finds; return the ``(proxy, toxic)`` pairs removed."""
        found = await self.leftovers(api, run_id)
        if found:
            url = await self.resolve_api(api)
            client = self._client(url)
            with translated(api, url, RevertFailed):
                for proxy, toxic in found:
                    await ignore_missing(partial(client.delete_toxic, proxy, toxic))
        return found

    # ------------------------------------------------------------ actions
    async def act(self, request: ActionRequest) -> list[str]:
        """``toxiproxy.reset``, ``.enable`` or ``.removeToxic``; a dry run touches nothing.

        Unreachable → ``DriverUnavailable``; missing proxy → ``TargetNotFound``;
        other error answers → ``PermanentRemediationError`` (4xx) or
        ``TemporaryRemediationError`` (5xx).
        """
        body = self._checked(request.target_name, request.target)
        proxy, target = body.proxy, request.target_name
        handler = ACTIONS.named(request.action)
        if handler is None:
            msg = f"{target}: unknown Toxiproxy action {request.action!r}"
            raise PermanentRemediationError(msg)
        if request.dry_run:
            # No I/O at all, not even starting an embedded server: say what would be touched.
            api = (self._embedded_url if body.api == "embedded" else None) or body.api
            with params_checked(target):
                return handler.named(api, proxy, request.params)
        api = await self.resolve_api(body.api)
        try:
            with params_checked(target):
                return await handler.run(self._client(api), api, proxy, request.params)
        except DriverUnavailable as exc:
            raise type(exc)(str(exc), target=target) from exc
        except ToxiproxyError as exc:
            if exc.status == 404:
                msg = f"proxy {proxy!r} not found on {api}"
                raise TargetNotFound(msg, target=target) from exc
            if exc.status >= 500:
                raise TemporaryRemediationError(f"{target}: {refusal(api, exc)}") from exc
            raise PermanentRemediationError(f"{target}: {refusal(api, exc)}") from exc


async def _add_toxic(client: ToxiproxyClient, proxy: str, toxic: ToxicPlan) -> None:
    try:
        await retrying(
            lambda: client.create_toxic(
                proxy,
                toxic.type,
                name=toxic.name,
                stream=toxic.stream,
                toxicity=toxic.toxicity,
                attributes=toxic.attributes,
            )
        )
    except ToxiproxyConflict:
        # The name is unique to this run and step: a conflict means an earlier
        # attempt (or a retried request) already added it; make it match.
        await retrying(
            lambda: client.update_toxic(
                proxy, toxic.name, attributes=toxic.attributes, toxicity=toxic.toxicity
            )
        )
