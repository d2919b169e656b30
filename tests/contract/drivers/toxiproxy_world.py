"""The Toxiproxy driver's worlds: the embedded server, and an external server.

No ``toxiproxy-server`` binary is installed on this machine or in CI (no
registry reachable here ships one), so the external server is the embedded
Toxiproxy-compatible server run as a separate process (what ``aftershock proxy`` serves,
started once per session by ``conftest.external_toxiproxy``) and reached only
through its HTTP API, exactly as a real Toxiproxy would be. The embedded world
uses ``api: embedded``: the driver starts the in-process server itself.

Both worlds are seen through the HTTP API alone: the snapshot is the server's
whole ``GET /proxies`` answer (proxies, listen addresses, enabled flags and
every toxic with its attributes).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any, ClassVar

import httpx
import pytest

from aftershock.drivers.toxiproxy import ToxiproxyDriver
from aftershock.model.params import DownParams, LatencyParams, TimeoutParams
from aftershock.model.targets import TargetSpec, ToxiproxyTarget
from aftershock.ports import Handle
from aftershock.settings import Allowlist
from tests.contract.drivers.world import FaultCase, Snapshot, World
from tests.contract.toxiproxy.peers import closed_port

__all__ = ["EmbeddedToxiproxyWorld", "ExternalToxiproxyWorld"]

_FAULTS = (
    FaultCase(
        fault="toxiproxy.latency",
        params=LatencyParams(latency=timedelta(milliseconds=250), jitter=timedelta(milliseconds=5)),
    ),
    FaultCase(fault="toxiproxy.down", params=DownParams()),
    # The target's proxy is missing and the target has an upstream: inject creates
    # the proxy, revert deletes it again; prepare must create nothing.
    FaultCase(fault="toxiproxy.timeout", params=TimeoutParams(), variant="creates-proxy"),
)


class _ToxiproxyWorld(World):
    faults: ClassVar[tuple[FaultCase, ...]] = _FAULTS
    target_api: str
    """What the target's ``api`` says (a URL, or ``embedded``)."""

    def __init__(self) -> None:
        token = secrets.token_hex(3)
        self.proxy = f"svc-{token}"
        self.missing = f"made-{token}"
        self.upstream = f"127.0.0.1:{closed_port()}"
        self.url = ""
        self._http: httpx.AsyncClient | None = None

    async def _resolve(self, driver: ToxiproxyDriver) -> str:
        return self.target_api

    async def setup(self, stack: AsyncExitStack) -> None:
        driver = ToxiproxyDriver(Allowlist())
        await self.launch(driver, stack)
        self.url = (await self._resolve(driver)).rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.url, timeout=10, trust_env=False)
        stack.push_async_callback(self._http.aclose)
        stack.push_async_callback(self._remove_ours)
        body = {"name": self.proxy, "listen": "127.0.0.1:0", "upstream": self.upstream}
        (await self._http.post("/proxies", json=body)).raise_for_status()

    async def _remove_ours(self) -> None:
        assert self._http is not None
        for name in (self.proxy, self.missing):
            answer = await self._http.delete(f"/proxies/{name}")
            assert answer.status_code in (204, 404), answer.text

    async def snapshot(self) -> Snapshot:
        assert self._http is not None
        answer = await self._http.get("/proxies")
        answer.raise_for_status()
        proxies: dict[str, Any] = answer.json()
        for proxy in proxies.values():
            proxy["toxics"] = sorted(proxy["toxics"], key=lambda t: t["name"])
        return proxies

    def target(self, case: FaultCase) -> TargetSpec:
        if case.variant == "creates-proxy":
            body = ToxiproxyTarget(
                api=self.target_api,
                proxy=self.missing,
                upstream=self.upstream,
                listen="127.0.0.1:0",
            )
        else:
            body = ToxiproxyTarget(api=self.target_api, proxy=self.proxy)
        return TargetSpec(toxiproxy=body)

    async def vanish(self, handle: Handle) -> None:
        assert self._http is not None
        answer = await self._http.delete(f"/proxies/{handle.undo['proxy']}")
        assert answer.status_code == 204, answer.text

    def fresh_config(self) -> Mapping[str, Any]:
        return {"kind": "toxiproxy"}


class EmbeddedToxiproxyWorld(_ToxiproxyWorld):
    """``api: embedded``: the server the driver starts in this process."""

    name: ClassVar[str] = "toxiproxy-embedded"
    target_api = "embedded"

    @classmethod
    def build(cls, request: pytest.FixtureRequest) -> EmbeddedToxiproxyWorld:
        return cls()

    async def _resolve(self, driver: ToxiproxyDriver) -> str:
        # What a run's provisioning step does first: the server is up before any fault.
        return await driver.resolve_api("embedded")


class ExternalToxiproxyWorld(_ToxiproxyWorld):
    """A Toxiproxy server in another process, reached by URL (see the module docstring)."""

    name: ClassVar[str] = "toxiproxy-external"

    def __init__(self, api: str) -> None:
        super().__init__()
        self.target_api = api

    @classmethod
    def build(cls, request: pytest.FixtureRequest) -> ExternalToxiproxyWorld:
        api: str = request.getfixturevalue("external_toxiproxy")
        return cls(api)
