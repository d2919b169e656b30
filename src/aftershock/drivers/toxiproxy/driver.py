"""Toxiproxy faults and healing actions, through ``ToxiproxyClient``.

Every toxic aftershock adds is named ``aftershock-<run_id>-<step>``, so toxics
lost from the journal can still be found (``leftovers``) and removed by
``aftershock recover``. ``toxiproxy.down`` is not a toxic: it disables the
proxy, and the undo record keeps whether the proxy was enabled before.

A target with ``upstream`` makes aftershock create its proxy when it is
missing. That creation is journaled like a fault, before the POST: as a
resource (``provision``) or in the fault's own intent (``created_proxy`` is
None until ``inject`` knows). Removing it deletes only the proxy aftershock
created, by the rule in ``faults.created_by_us``.
Fault attributes and error translation live in ``faults``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack, suppress
from functools import partial
from typing import Any, Protocol

import httpx

from aftershock.drivers.toxiproxy.client import (
    ToxiproxyClient,
    ToxiproxyConflict,
    ToxiproxyError,
    ToxiproxyNotFound,
)
from aftershock.drivers.toxiproxy.faults import (
    _TYPES,
    DOWN,
    FOREIGN,
    PREFIX,
    PROXY,
    _ignore_missing,
    _refusal,
    _resource,
    _retrying,
    _translated,
    create_once,
    release_proxy,
    toxic_attributes,
    toxic_name,
)
from aftershock.errors import (
    DriverError,
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


class _Provisioned:
    """A proxy ``provision`` is creating or created, until the run's stack closes."""

    def __init__(self, handle: Handle, journal: ResourceJournal | None) -> None:
        self.handle, self.journal = handle, journal
        self.confirmed = False
        self.done = False

    def release(self, outcome: str) -> None:
        self.done = True
        if self.journal is not None:
            self.journal.resource_released(self.handle, outcome)


class ToxiproxyDriver:
    """Fault and action driver for Toxiproxy servers (and the embedded one).

    One client per API URL, closed on the exit stack given to ``start`` (or by
    ``aclose`` when the driver was never started). ``embedded`` builds the
    in-process server used for ``api: embedded``; ``transport`` replaces the
    network in tests.
    """

    kind: TargetKind = TargetKind.TOXIPROXY

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
        client = self._client(api)
        if body.api == "embedded":
            journal = None
        handle = Handle(
            run_id=run_id,
            step="provision",
            kind=self.kind,
            fault=PROXY,
            target=target_name,
            resources=(f"{api}/proxies/{body.proxy}",),
            undo={
                "api": api,
                "proxy": body.proxy,
                "upstream": body.upstream,
                "listen": body.listen,
            },
        )
        with _translated(target_name, api, FaultInjectionFailed):
            try:
                await _retrying(lambda: client.get_proxy(body.proxy))
                return  # it was there before us: never ours to touch
            except ToxiproxyNotFound:
                pass
            if journal is not None:
                journal.resource_intent(handle)
            held = _Provisioned(handle, journal)
            self._stack.push_async_callback(self._unprovision, client, held)
            made = await create_once(client, handle.undo)
            if made is None:
                held.release(FOREIGN)  # someone created it between our read and our POST
                return
            held.handle = handle.with_undo(
                created_listen=made.listen, created_upstream=made.upstream
            )
            held.confirmed = True
            if journal is not None:
                journal.resource_created(held.handle)

    async def _unprovision(self, client: ToxiproxyClient, held: _Provisioned) -> None:
        if held.done:
            return
        try:
            with _translated(held.handle.target, client.base_url, RevertFailed):
                outcome = await release_proxy(client, held.handle.undo, confirmed=held.confirmed)
        except DriverError as exc:
            if held.journal is None:
                raise
            # The record keeps it outstanding: `aftershock recover` retries, and
            # the rest of the run's cleanup goes on.
            held.journal.resource_release_failed(held.handle, str(exc))
            return
        held.release(outcome)

    async def remove_created_proxy(self, handle: Handle, *, confirmed: bool) -> str:
        """Delete the proxy ``handle`` journals aftershock creating, if it still is that one.

        Returns ``"deleted"``, ``"absent"`` (never created, or gone already) or
        ``"not ours"`` (a proxy of that name that ``created_by_us`` does not
        recognise, left alone). ``confirmed``: the creating call's answer was
        journaled. Unreachable → ``DriverUnavailable``; refused → ``RevertFailed``.
        """
        api = str(handle.undo["api"])
        with _translated(handle.target, api, RevertFailed):
            return await release_proxy(self._client(api), handle.undo, confirmed=confirmed)

    # ------------------------------------------------------------ faults
    async def prepare(self, request: FaultRequest) -> Handle:
        """Check the target and build the handle; only reads from the server."""
        body = self._checked(request.target_name, request.target)
        fault, target = request.fault, request.target_name
        if fault != DOWN and fault not in _TYPES:
            raise FaultInjectionFailed(f"unknown Toxiproxy fault {fault!r}", target=target)
        api = await self.resolve_api(body.api)
        undo: dict[str, Any] = {
            "api": api,
            "embedded": body.api == "embedded",
            "proxy": body.proxy,
            "toxic": None,
            "created_proxy": False,
            "fault": fault,
            "listen": body.listen,
            "upstream": body.upstream,
            "was_enabled": True,  # a proxy we create starts enabled
        }
        resource = f"{api}/proxies/{body.proxy}"
        if fault in _TYPES:
            params: Any = request.params
            undo["toxic"] = toxic_name(request.run_id, request.step)
            undo["attributes"] = toxic_attributes(fault, params)
            undo.update(type=_TYPES[fault], stream=params.stream, toxicity=params.toxicity)
            resource += f"/toxics/{undo['toxic']}"
        with _translated(target, api, FaultInjectionFailed):
            try:
                proxy = await _retrying(lambda: self._client(api).get_proxy(body.proxy))
                undo["was_enabled"] = proxy.enabled
            except ToxiproxyNotFound as exc:
                if body.upstream is None:
                    msg = f"proxy {body.proxy!r} not found on {api} (and no upstream to create it)"
                    raise TargetNotFound(msg, target=target) from exc
                # Missing: inject creates it. Until its answer is journaled (the
                # applied handle), whether it did is unknown, and revert decides.
                undo["created_proxy"] = None
        return Handle(
            run_id=request.run_id,
            step=request.step,
            kind=self.kind,
            fault=fault,
            target=target,
            resources=(resource,),
            undo=undo,
        )

    async def inject(self, handle: Handle) -> Handle:
        """Create the proxy if ``prepare`` found it missing, then add the toxic or disable it."""
        undo = handle.undo
        api, proxy = str(undo["api"]), str(undo["proxy"])
        client = self._client(api)
        created = False
        with _translated(handle.target, api, FaultInjectionFailed):
            try:
                if undo.get("upstream") and undo.get("created_proxy", False) is None:
                    made = await create_once(client, undo)
                    created = made is not None
                    handle = handle.with_undo(created_proxy=created)
                    if made is not None:
                        handle = handle.with_undo(
                            created_listen=made.listen, created_upstream=made.upstream
                        )
                if handle.fault == DOWN:
                    await _retrying(lambda: client.update_proxy(proxy, enabled=False))
                else:
                    await self._add_toxic(client, proxy, undo)
            except (DriverUnavailable, ToxiproxyError):
                if created:  # leave nothing half-applied behind
                    with suppress(DriverUnavailable, ToxiproxyError):
                        await client.delete_proxy(proxy)
                raise
        return handle

    async def _add_toxic(
        self, client: ToxiproxyClient, proxy: str, undo: Mapping[str, Any]
    ) -> None:
        name, kind, stream = str(undo["toxic"]), str(undo["type"]), str(undo["stream"])
        attributes, toxicity = dict(undo["attributes"]), float(undo["toxicity"])
        try:
            await _retrying(
                lambda: client.create_toxic(
                    proxy, kind, name=name, stream=stream, toxicity=toxicity, attributes=attributes
                )
            )
        except ToxiproxyConflict:
            # The name is unique to this run and step: a conflict means an earlier
            # attempt (or a retried request) already added it; make it match.
            await _retrying(
                lambda: client.update_toxic(proxy, name, attributes=attributes, toxicity=toxicity)
            )

    async def revert(self, handle: Handle) -> None:
        """Remove the toxic or re-enable the proxy; delete a proxy we created. Idempotent.

        ``created_proxy`` True: inject created the proxy; None: it was missing
        at prepare and inject's answer never reached the journal (a crash), so
        it may or may not be ours; ``created_by_us`` decides in both cases.
        """
        undo = handle.undo
        api, proxy, toxic = str(undo["api"]), str(undo["proxy"]), undo.get("toxic")
        client = self._client(api)
        created = undo.get("created_proxy", False)
        try:
            with _translated(handle.target, api, RevertFailed):
                if handle.fault == DOWN and created is False:
                    enabled = bool(undo.get("was_enabled", True))
                    await _ignore_missing(lambda: client.update_proxy(proxy, enabled=enabled))
                elif toxic:
                    await _ignore_missing(lambda: client.delete_toxic(proxy, str(toxic)))
                if created is not False:
                    await release_proxy(client, undo, confirmed=created is True)
        except DriverUnavailable:
            if undo.get("embedded") and api != self._embedded_url:
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
        with _translated(api, url, RevertFailed):
            proxies = await _retrying(self._client(url).proxies)
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
            with _translated(api, url, RevertFailed):
                for proxy, toxic in found:
                    await _ignore_missing(partial(client.delete_toxic, proxy, toxic))
        return found

    # ------------------------------------------------------------ actions
    async def act(self, request: ActionRequest) -> list[str]:
        """``toxiproxy.reset``, ``.enable`` or ``.removeToxic``; a dry run touches nothing.

        Unreachable → ``DriverUnavailable``; missing proxy → ``TargetNotFound``;
        other error answers → ``PermanentRemediationError`` (4xx) or
        ``TemporaryRemediationError`` (5xx).
        """
        body = self._checked(request.target_name, request.target)
        action, proxy, target = request.action, body.proxy, request.target_name
        toxic: str | None = getattr(request.params, "toxic", None)
        if action not in ("toxiproxy.reset", "toxiproxy.enable", "toxiproxy.removeToxic"):
            raise PermanentRemediationError(f"{target}: unknown Toxiproxy action {action!r}")
        if request.dry_run:
            # No I/O at all, not even starting an embedded server: say what would be touched.
            api = (self._embedded_url if body.api == "embedded" else None) or body.api
            return [_resource(api, action, proxy, toxic or "*")]
        api = await self.resolve_api(body.api)
        client = self._client(api)
        try:
            if action == "toxiproxy.reset":
                await _retrying(client.reset)
            elif action == "toxiproxy.enable":
                await _retrying(lambda: client.update_proxy(proxy, enabled=True))
            else:
                # Listing first tells a missing proxy (an error) from a missing toxic (done).
                names = [t.name for t in await _retrying(lambda: client.toxics(proxy))]
                names = [n for n in names if toxic is None or n == toxic]
                for name in names:
                    await _ignore_missing(partial(client.delete_toxic, proxy, name))
                return [_resource(api, action, proxy, n) for n in names]
        except DriverUnavailable as exc:
            raise type(exc)(str(exc), target=target) from exc
        except ToxiproxyError as exc:
            if exc.status == 404:
                msg = f"proxy {proxy!r} not found on {api}"
                raise TargetNotFound(msg, target=target) from exc
            if exc.status >= 500:
                raise TemporaryRemediationError(f"{target}: {_refusal(api, exc)}") from exc
            raise PermanentRemediationError(f"{target}: {_refusal(api, exc)}") from exc
        return [_resource(api, action, proxy, toxic)]
