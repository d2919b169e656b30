"""Proxies aftershock creates on an external Toxiproxy: journaled first, removed exactly.

The embedded server stands in for an external Toxiproxy (reached by URL, so
the driver journals what it creates there). Crashes are reproduced by the
journal records a run leaves at each point, against real proxies on the server.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from aftershock.drivers.toxiproxy import PROXY, ToxiproxyDriver
from aftershock.drivers.toxiproxy.client import ToxiproxyClient
from aftershock.drivers.toxiproxy.resources import Proxy
from aftershock.errors import DriverUnavailable
from aftershock.journal.faults import FaultJournal
from aftershock.journal.reading import read_journal
from aftershock.journal.resources import outstanding_resources
from aftershock.model.faults import TOXIPROXY_LATENCY
from aftershock.model.targets import TargetKind, TargetSpec, ToxiproxyTarget
from aftershock.ports import FaultRequest, Handle
from aftershock.proxy.server import EmbeddedToxiproxy
from aftershock.runtime.recovery import recover
from aftershock.settings import Allowlist, Settings
from tests.contract.toxiproxy.peers import Upstream, closed_port

pytestmark = pytest.mark.timeout(60)

RUN = "20261203T101010Z-abcdef"


def spec(
    api: str, upstream: str, *, proxy: str = "made", listen: str = "127.0.0.1:0"
) -> TargetSpec:
    return TargetSpec(
        toxiproxy=ToxiproxyTarget(api=api, proxy=proxy, upstream=upstream, listen=listen)
    )


class Hook(httpx.AsyncBaseTransport):
    """A real transport that runs ``before`` (and maybe ``after``) each ``POST /proxies``."""

    def __init__(
        self,
        before: Callable[[], Any] | None = None,
        *,
        lose_answer: bool = False,
    ) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.before = before
        self.lose_answer = lose_answer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        creating = request.method == "POST" and request.url.path == "/proxies"
        if creating and self.before is not None:
            await self.before()
        response = await self._inner.handle_async_request(request)
        if creating and self.lose_answer:
            await response.aclose()
            msg = "connection reset after the request was sent"
            raise httpx.ReadError(msg, request=request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
async def user_proxy(client: ToxiproxyClient, upstream: Upstream) -> Proxy:
    """A proxy the user made before any run, with a toxic of the user's own."""
    await client.create_proxy("user-db", upstream.address)
    await client.create_toxic("user-db", "latency", name="users-own", attributes={"latency": 3})
    return await client.get_proxy("user-db")


def events(journal: FaultJournal) -> list[tuple[str, Any]]:
    return [(r.event, r.fields.get("outcome")) for r in read_journal(journal.path)]


async def test_provision_journals_the_intent_before_the_post_and_releases_at_teardown(
    tmp_path: Path, server: EmbeddedToxiproxy, client: ToxiproxyClient, user_proxy: Proxy
) -> None:
    journal = FaultJournal(tmp_path, RUN)
    seen_at_post: list[list[str]] = []

    async def look() -> None:
        seen_at_post.append([r.event for r in read_journal(journal.path)])

    driver = ToxiproxyDriver(Allowlist(), transport=Hook(look))
    async with AsyncExitStack() as stack:
        await driver.start(stack)
        target = spec(server.api_url, "127.0.0.1:9")
        await driver.provision("db", target, journal=journal, run_id=RUN)
        assert seen_at_post == [["resource.intent"]]  # on disk before the POST
        made = await client.get_proxy("made")
        (pending,) = outstanding_resources(tmp_path)
        assert (pending.state, pending.created, pending.run_id) == ("created", True, RUN)
        assert pending.handle.fault == PROXY
        assert pending.handle.resources == (f"{server.api_url}/proxies/made",)
        assert pending.handle.undo["created_listen"] == made.listen
        assert pending.handle.undo["created_upstream"] == "127.0.0.1:9"
    assert sorted(await client.proxies()) == ["user-db"]
    assert await client.get_proxy("user-db") == user_proxy
    assert events(journal) == [
        ("resource.intent", None),
        ("resource.created", None),
        ("resource.released", "deleted"),
    ]
    assert outstanding_resources(tmp_path) == []


async def test_an_existing_proxy_is_neither_journaled_nor_deleted(
    tmp_path: Path, server: EmbeddedToxiproxy, client: ToxiproxyClient, user_proxy: Proxy
) -> None:
    journal = FaultJournal(tmp_path, RUN)
    driver = ToxiproxyDriver(Allowlist())
    async with AsyncExitStack() as stack:
        await driver.start(stack)
        target = spec(server.api_url, user_proxy.upstream, proxy="user-db")
        await driver.provision("db", target, journal=journal, run_id=RUN)
    assert not journal.path.exists()
    assert await client.get_proxy("user-db") == user_proxy


async def test_a_proxy_that_appears_between_read_and_post_is_not_ours(
    tmp_path: Path, server: EmbeddedToxiproxy, client: ToxiproxyClient
) -> None:
    journal = FaultJournal(tmp_path, RUN)

    async def someone_else() -> None:
        await client.create_proxy("made", "127.0.0.1:7")

    driver = ToxiproxyDriver(Allowlist(), transport=Hook(someone_else))
    async with AsyncExitStack() as stack:
        await driver.start(stack)
        await driver.provision(
            "db", spec(server.api_url, "127.0.0.1:9"), journal=journal, run_id=RUN
        )
    assert (await client.get_proxy("made")).upstream == "127.0.0.1:7"
    assert events(journal) == [("resource.intent", None), ("resource.released", "not ours")]


async def test_a_lost_answer_leaves_an_intent_and_teardown_still_removes_ours(
    tmp_path: Path, server: EmbeddedToxiproxy, client: ToxiproxyClient, user_proxy: Proxy
) -> None:
    journal = FaultJournal(tmp_path, RUN)
    hook = Hook(lose_answer=True)
    driver = ToxiproxyDriver(Allowlist(), transport=hook)
    async with AsyncExitStack() as stack:
        await driver.start(stack)
        with pytest.raises(DriverUnavailable, match=r"^db: .*unreachable"):
            await driver.provision(
                "db", spec(server.api_url, "127.0.0.1:9"), journal=journal, run_id=RUN
            )
        assert (await client.get_proxy("made")).upstream == "127.0.0.1:9"  # it did land
        (pending,) = outstanding_resources(tmp_path)
        assert (pending.state, pending.created) == ("intent", False)
        hook.lose_answer = False
    assert sorted(await client.proxies()) == ["user-db"]
    assert events(journal) == [("resource.intent", None), ("resource.released", "deleted")]


# ---------------------------------------------------------------- recover, state by state

CASES = {
    # name: (records the crashed run left, what is on the server, expected outcome, kept)
    "intent, never created": ("intent", None, "absent", False),
    "intent, created by us": ("intent", "ours", "deleted", False),
    "intent, someone else's upstream": ("intent", "other upstream", "not ours", True),
    "intent, someone else's listen port": ("intent", "other port", "not ours", True),
    "intent, someone else's toxic": ("intent", "their toxic", "not ours", True),
    "created, still there": ("created", "ours", "deleted", False),
    "created, gone": ("created", None, "absent", False),
    "created, replaced by the same upstream": ("created", "replaced", "not ours", True),
    "release failed": ("release_failed", "ours", "deleted", False),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_recover_removes_exactly_what_the_run_created(
    case: str,
    tmp_path: Path,
    server: EmbeddedToxiproxy,
    client: ToxiproxyClient,
    user_proxy: Proxy,
    upstream: Upstream,
) -> None:
    records, on_server, outcome, kept = CASES[case]
    # Someone's proxy on another port, where we had asked for a fixed one.
    asked = f"127.0.0.1:{closed_port()}" if on_server == "other port" else "127.0.0.1:0"
    undo = {"api": server.api_url, "proxy": "made", "upstream": upstream.address, "listen": asked}
    handle = Handle(
        run_id=RUN,
        step="provision",
        kind=TargetKind.TOXIPROXY,
        fault=PROXY,
        target="db",
        resources=(f"{server.api_url}/proxies/made",),
        undo=undo,
    )
    journal = FaultJournal(tmp_path / "journal", RUN)
    journal.resource_intent(handle)
    if on_server is not None:
        ours = await client.create_proxy("made", upstream.address)
        if records != "intent":
            created = handle.with_undo(created_listen=ours.listen, created_upstream=ours.upstream)
            journal.resource_created(created)
            if records == "release_failed":
                journal.resource_release_failed(created, "503 busy")
        if on_server == "other upstream":
            await client.update_proxy("made", upstream="127.0.0.1:7")
        elif on_server == "their toxic":
            await client.create_toxic("made", "timeout", name="theirs")
        elif on_server == "replaced":
            await client.delete_proxy("made")
            again = await client.create_proxy("made", upstream.address)
            assert again.listen != ours.listen
    elif records == "created":
        journal.resource_created(
            handle.with_undo(created_listen="127.0.0.1:1", created_upstream="x")
        )
    before = await client.get_proxy("made") if on_server is not None else None

    settings = Settings(home=tmp_path, allow=Allowlist())
    report = await recover(settings, drivers={TargetKind.TOXIPROXY: ToxiproxyDriver(Allowlist())})

    [action] = [a for a in report.actions if a.fault == PROXY]
    assert action.ok, action.message
    assert (action.run_id, action.target) == (RUN, "db")
    said = {
        "deleted": "that the run created deleted",
        "absent": "not there",
        "not ours": "left alone",
    }
    assert said[outcome] in action.message, action.message
    proxies = await client.proxies()
    assert proxies["user-db"] == user_proxy
    if kept:
        assert proxies["made"] == before
    else:
        assert "made" not in proxies
    assert read_journal(journal.path)[-1].fields.get("outcome") == outcome
    assert outstanding_resources(tmp_path / "journal") == []
    again = await recover(settings, drivers={TargetKind.TOXIPROXY: ToxiproxyDriver(Allowlist())})
    assert [a for a in again.actions if a.fault == PROXY] == []


async def test_recover_keeps_an_unreachable_servers_proxy_outstanding(
    tmp_path: Path, server: EmbeddedToxiproxy
) -> None:
    handle = Handle(
        run_id=RUN,
        step="provision",
        kind=TargetKind.TOXIPROXY,
        fault=PROXY,
        target="db",
        resources=("http://127.0.0.1:1/proxies/made",),
        undo={"api": "http://127.0.0.1:1", "proxy": "made", "upstream": "127.0.0.1:9"},
    )
    journal = FaultJournal(tmp_path / "journal", RUN)
    journal.resource_intent(handle)
    settings = Settings(home=tmp_path, allow=Allowlist())
    report = await recover(settings, drivers={TargetKind.TOXIPROXY: ToxiproxyDriver(Allowlist())})
    [action] = report.actions
    assert not action.ok
    assert "unreachable" in action.message
    (pending,) = outstanding_resources(tmp_path / "journal")
    assert pending.state == "release_failed"


# ---------------------------------------------------------------- created by a fault's inject


def latency(api: str, target: TargetSpec) -> FaultRequest:
    return FaultRequest(
        run_id=RUN,
        step="slow",
        fault=TOXIPROXY_LATENCY,
        target_name="db",
        target=target,
        params=TOXIPROXY_LATENCY.params.model_validate({"latency": "5ms"}),
    )


async def test_a_fault_that_creates_its_proxy_says_so_in_its_intent(
    server: EmbeddedToxiproxy, client: ToxiproxyClient, user_proxy: Proxy
) -> None:
    driver = ToxiproxyDriver(Allowlist())
    async with AsyncExitStack() as stack:
        await driver.start(stack)
        intent = await driver.prepare(latency(server.api_url, spec(server.api_url, "127.0.0.1:9")))
        assert intent.undo["created_proxy"] is None  # missing: inject will create it
        applied = await driver.inject(intent)
        made = await client.get_proxy("made")
        assert applied.undo["created_proxy"] is True
        assert applied.undo["created_listen"] == made.listen
        # A crash before the applied record: recover has only the intent's handle.
        await driver.revert(intent)
        assert sorted(await client.proxies()) == ["user-db"]

        # Someone else's proxy under that name by the time recover runs: left alone.
        intent = await driver.prepare(latency(server.api_url, spec(server.api_url, "127.0.0.1:9")))
        await client.create_proxy("made", "127.0.0.1:7")
        await driver.revert(intent)
        assert (await client.get_proxy("made")).upstream == "127.0.0.1:7"

        # A journal from before created_listen existed: the upstream still decides.
        await client.delete_proxy("made")
        applied = await driver.inject(intent)
        old = applied.with_undo(created_listen=None, created_upstream=None)
        await driver.revert(old)
        assert sorted(await client.proxies()) == ["user-db"]
    assert await client.get_proxy("user-db") == user_proxy
