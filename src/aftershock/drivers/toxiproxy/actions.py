"""The Toxiproxy healing actions: each catalog entry bound to what it does on the server.

``toxiproxy.reset`` removes every toxic and enables every proxy of the server;
``toxiproxy.enable`` enables the target proxy; ``toxiproxy.removeToxic``
removes one toxic (or all of them) from it. Each returns the resources it
acted on, as URLs; ``named`` says which a dry run would touch, with no I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, Generic, TypeVar

from aftershock.drivers.bindings import Bindings, action_handlers
from aftershock.drivers.toxiproxy.calls import ignore_missing, retrying
from aftershock.drivers.toxiproxy.client import ToxiproxyClient
from aftershock.model import actions as a
from aftershock.model.base import Spec
from aftershock.model.params import NoParams
from aftershock.model.targets import TargetKind

__all__ = ["ACTIONS", "ProxyAction"]

P = TypeVar("P", bound=Spec)
Perform = Callable[[ToxiproxyClient, str, str, P], Awaitable[list[str]]]
"""``(client, api, proxy, params)`` → the resources acted on."""
Named = Callable[[str, str, P], list[str]]
"""``(api, proxy, params)`` → the resources a dry run names."""


@dataclass(frozen=True, slots=True)
class ProxyAction(Generic[P]):
    """A healing action on a Toxiproxy server or one of its proxies."""

    action: a.ActionType[P]
    perform: Perform[P]
    resources: Named[P]

    async def run(self, client: ToxiproxyClient, api: str, proxy: str, params: Spec) -> list[str]:
        """Carry the action out; return the resources acted on."""
        return await self.perform(client, api, proxy, self.action.parse(params))

    def named(self, api: str, proxy: str, params: Spec) -> list[str]:
        """The resources the action would act on (a dry run)."""
        return self.resources(api, proxy, self.action.parse(params))


def _server(api: str, proxy: str, params: NoParams) -> list[str]:
    return [f"{api}/reset"]


def _proxy(api: str, proxy: str, params: NoParams) -> list[str]:
    return [f"{api}/proxies/{proxy}"]


def _toxics(api: str, proxy: str, params: a.RemoveToxicParams) -> list[str]:
    return [f"{api}/proxies/{proxy}/toxics/{params.toxic or '*'}"]


async def _reset(client: ToxiproxyClient, api: str, proxy: str, params: NoParams) -> list[str]:
    await retrying(client.reset)
    return _server(api, proxy, params)


async def _enable(client: ToxiproxyClient, api: str, proxy: str, params: NoParams) -> list[str]:
    await retrying(lambda: client.update_proxy(proxy, enabled=True))
    return _proxy(api, proxy, params)


async def _remove_toxic(
    client: ToxiproxyClient, api: str, proxy: str, params: a.RemoveToxicParams
) -> list[str]:
    # Listing first tells a missing proxy (an error) from a missing toxic (done).
    names = [t.name for t in await retrying(lambda: client.toxics(proxy))]
    names = [n for n in names if params.toxic is None or n == params.toxic]
    for name in names:
        await ignore_missing(partial(client.delete_toxic, proxy, name))
    return [f"{api}/proxies/{proxy}/toxics/{n}" for n in names]


ACTIONS: Final[Bindings[a.ActionType[Any], ProxyAction[Any]]] = action_handlers(
    TargetKind.TOXIPROXY,
    ProxyAction(a.TOXIPROXY_RESET, _reset, _server),
    ProxyAction(a.TOXIPROXY_ENABLE, _enable, _proxy),
    ProxyAction(a.TOXIPROXY_REMOVE_TOXIC, _remove_toxic, _toxics),
)
"""Every Toxiproxy healing action of the catalog, bound to what it does."""
