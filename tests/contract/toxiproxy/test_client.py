"""ToxiproxyClient against the embedded server: every endpoint, every error status."""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from aftershock import __version__
from aftershock.drivers.toxiproxy.client import ToxiproxyClient
from aftershock.drivers.toxiproxy.errors import (
    ToxiproxyAPIError,
    ToxiproxyBadRequest,
    ToxiproxyConflict,
    ToxiproxyError,
    ToxiproxyNotFound,
)
from aftershock.drivers.toxiproxy.resources import Proxy, Toxic
from aftershock.errors import DriverUnavailable
from aftershock.proxy.server import EmbeddedToxiproxy
from tests.contract.toxiproxy.peers import Recorder, Upstream, closed_port

pytestmark = pytest.mark.timeout(60)


async def test_version(client: ToxiproxyClient) -> None:
    assert await client.version()


async def test_user_agent_is_ours(client: ToxiproxyClient, recorder: Recorder) -> None:
    await client.version()
    agent = recorder.calls[-1][0].headers["User-Agent"]
    assert agent == f"aftershock/{__version__}"
    assert not agent.startswith("Mozilla/")


async def test_proxies_is_an_object_keyed_by_name(
    client: ToxiproxyClient, upstream: Upstream
) -> None:
    assert await client.proxies() == {}
    await client.create_proxy("a", upstream.address)
    await client.create_proxy("b", upstream.address)
    proxies = await client.proxies()
    assert sorted(proxies) == ["a", "b"]
    assert all(isinstance(p, Proxy) and p.name == n for n, p in proxies.items())


async def test_create_proxy_answers_201_with_real_port(
    client: ToxiproxyClient, recorder: Recorder, upstream: Upstream
) -> None:
    proxy = await client.create_proxy("svc", upstream.address, "127.0.0.1:0")
    assert recorder.last_status == 201
    assert proxy.name == "svc"
    assert proxy.upstream == upstream.address
    assert proxy.enabled is True
    assert proxy.toxics == ()
    host, _, port = proxy.listen.rpartition(":")
    assert host == "127.0.0.1"
    assert int(port) > 0


async def test_create_proxy_disabled(client: ToxiproxyClient, upstream: Upstream) -> None:
    proxy = await client.create_proxy("svc", upstream.address, enabled=False)
    assert proxy.enabled is False
    assert (await client.get_proxy("svc")).enabled is False


@pytest.mark.parametrize(
    ("name", "upstream_addr", "field"),
    [("", "127.0.0.1:1", "name"), ("svc", "", "upstream")],
)
async def test_create_proxy_missing_field_is_400(
    client: ToxiproxyClient, name: str, upstream_addr: str, field: str
) -> None:
    with pytest.raises(ToxiproxyBadRequest) as info:
        await client.create_proxy(name, upstream_addr)
    assert info.value.status == 400
    assert info.value.message == f"missing required field: {field}"


async def test_create_proxy_twice_is_409(client: ToxiproxyClient, upstream: Upstream) -> None:
    await client.create_proxy("svc", upstream.address)
    with pytest.raises(ToxiproxyConflict) as info:
        await client.create_proxy("svc", upstream.address)
    assert info.value.status == 409
    assert info.value.message == "proxy already exists"


async def test_bad_body_is_400(client: ToxiproxyClient, upstream: Upstream) -> None:
    await client.create_proxy("svc", upstream.address)
    with pytest.raises(ToxiproxyBadRequest) as info:
        await client.create_toxic("svc", "latency", attributes={"latency": "slow"})
    assert info.value.message.startswith("bad request body: ")


async def test_malformed_json_answer_is_json_labelled_text_plain(server: EmbeddedToxiproxy) -> None:
    async with httpx.AsyncClient(base_url=server.api_url) as raw:
        response = await raw.post("/proxies", content=b"{not json")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    body = json.loads(response.content)
    assert body["status"] == 400
    assert body["error"].startswith("bad request body: ")


async def test_browser_user_agent_is_403(server: EmbeddedToxiproxy) -> None:
    async with httpx.AsyncClient(base_url=server.api_url) as raw:
        response = await raw.get("/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert response.status_code == 403
    assert response.text.strip() == "User agent not allowed"


async def test_get_update_delete_proxy(
    client: ToxiproxyClient, recorder: Recorder, upstream: Upstream
) -> None:
    created = await client.create_proxy("svc", upstream.address)
    assert await client.get_proxy("svc") == created

    disabled = await client.update_proxy("svc", enabled=False)
    assert recorder.last_status == 200
    assert recorder.calls[-1][0].method == "POST"
    assert disabled.enabled is False
    assert (disabled.listen, disabled.upstream) == (created.listen, created.upstream)

    other = Upstream()
    await other.start()
    try:
        moved = await client.update_proxy("svc", upstream=other.address)
        assert moved.upstream == other.address
        assert moved.enabled is False  # untouched
    finally:
        await other.stop()

    await client.delete_proxy("svc")
    assert recorder.last_status == 204
    assert await client.proxies() == {}


async def test_unknown_proxy_is_404_everywhere(client: ToxiproxyClient) -> None:
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: client.get_proxy("nope"),
        lambda: client.update_proxy("nope", enabled=True),
        lambda: client.delete_proxy("nope"),
        lambda: client.toxics("nope"),
        lambda: client.create_toxic("nope", "latency"),
        lambda: client.get_toxic("nope", "t"),
        lambda: client.update_toxic("nope", "t", toxicity=0.5),
        lambda: client.delete_toxic("nope", "t"),
    ]
    for call in calls:
        with pytest.raises(ToxiproxyNotFound) as info:
            await call()
        assert info.value.status == 404
        assert info.value.message == "proxy not found"


async def test_toxic_lifecycle(
    client: ToxiproxyClient, recorder: Recorder, upstream: Upstream
) -> None:
    await client.create_proxy("svc", upstream.address)
    toxic = await client.create_toxic(
        "svc",
        "latency",
        name="slow",
        stream="upstream",
        toxicity=0.5,
        attributes={"latency": 300, "jitter": 20},
    )
    assert recorder.last_status == 200  # not 201
    assert toxic == Toxic(
        name="slow",
        type="latency",
        stream="upstream",
        toxicity=0.5,
        attributes={"latency": 300, "jitter": 20},
    )
    assert await client.get_toxic("svc", "slow") == toxic
    assert (await client.get_proxy("svc")).toxics == (toxic,)

    updated = await client.update_toxic("svc", "slow", attributes={"latency": 50})
    assert recorder.calls[-1][0].method == "PATCH"
    assert updated.attributes == {"latency": 50, "jitter": 20}  # jitter kept
    assert updated.toxicity == 0.5  # omitted toxicity kept
    again = await client.update_toxic("svc", "slow", toxicity=1.0)
    assert again.attributes == {"latency": 50, "jitter": 20}
    assert again.toxicity == 1.0

    await client.delete_toxic("svc", "slow")
    assert recorder.last_status == 204
    assert await client.toxics("svc") == []


async def test_toxic_defaults(client: ToxiproxyClient, upstream: Upstream) -> None:
    await client.create_proxy("svc", upstream.address)
    toxic = await client.create_toxic("svc", "latency")
    assert toxic.name == "latency_downstream"
    assert toxic.stream == "downstream"
    assert toxic.toxicity == 1.0
    assert toxic.attributes == {"latency": 0, "jitter": 0}


async def test_toxics_listed_in_creation_order(client: ToxiproxyClient, upstream: Upstream) -> None:
    await client.create_proxy("svc", upstream.address)
    names = ["c", "a", "b"]
    for name in names:
        await client.create_toxic("svc", "bandwidth", name=name)
    await client.create_toxic("svc", "latency", name="up", stream="upstream")
    listed = [t.name for t in await client.toxics("svc")]
    # Go keeps one chain per direction and lists the upstream one first.
    assert listed == ["up", *names]


async def test_toxic_errors(client: ToxiproxyClient, upstream: Upstream) -> None:
    await client.create_proxy("svc", upstream.address)
    with pytest.raises(ToxiproxyBadRequest) as stream:
        await client.create_toxic("svc", "latency", stream="sideways")
    assert "stream was invalid, can be either upstream or downstream" in stream.value.message
    with pytest.raises(ToxiproxyBadRequest) as kind:
        await client.create_toxic("svc", "wormhole")
    assert "invalid toxic type" in kind.value.message

    await client.create_toxic("svc", "latency", name="t")
    with pytest.raises(ToxiproxyConflict) as conflict:
        await client.create_toxic("svc", "timeout", name="t")
    assert conflict.value.status == 409
    assert conflict.value.message == "toxic already exists"

    for call in (
        lambda: client.get_toxic("svc", "missing"),
        lambda: client.update_toxic("svc", "missing", toxicity=0.1),
        lambda: client.delete_toxic("svc", "missing"),
    ):
        with pytest.raises(ToxiproxyNotFound) as missing:
            await call()
        assert missing.value.message == "toxic not found"


async def test_reset_removes_toxics_and_enables(
    client: ToxiproxyClient, recorder: Recorder, upstream: Upstream
) -> None:
    await client.create_proxy("a", upstream.address)
    await client.create_proxy("b", upstream.address, enabled=False)
    await client.create_toxic("a", "latency", attributes={"latency": 100})
    await client.create_toxic("b", "timeout")
    await client.reset()
    assert recorder.last_status == 204
    for proxy in (await client.proxies()).values():
        assert proxy.enabled is True
        assert proxy.toxics == ()
    assert await client.toxics("a") == []


async def test_populate_creates_and_is_idempotent(
    client: ToxiproxyClient, recorder: Recorder, upstream: Upstream
) -> None:
    entries: list[dict[str, Any]] = [
        {"name": "a", "upstream": upstream.address, "listen": "127.0.0.1:0"},
        {"name": "b", "upstream": upstream.address, "listen": "127.0.0.1:0", "enabled": False},
    ]
    created = await client.populate(entries)
    assert recorder.last_status == 201
    assert [p.name for p in created] == ["a", "b"]
    assert [p.enabled for p in created] == [True, False]
    await client.create_toxic("a", "latency", name="kept")
    # Same listen/upstream again: the existing proxy is left untouched, toxic included.
    same = [{"name": "a", "upstream": upstream.address, "listen": created[0].listen}]
    await client.populate(same)
    assert [t.name for t in await client.toxics("a")] == ["kept"]


async def test_populate_missing_field_is_400_before_anything(
    client: ToxiproxyClient, upstream: Upstream
) -> None:
    entries = [{"name": "a", "listen": "127.0.0.1:0"}]
    with pytest.raises(ToxiproxyBadRequest) as info:
        await client.populate(entries)
    assert info.value.message == "missing required field: upstream at proxy 1"
    assert isinstance(info.value.body, dict)
    assert info.value.body.get("proxies", "absent") is None
    assert info.value.proxies == ()
    assert await client.proxies() == {}


async def test_populate_later_failure_carries_created_proxies(
    client: ToxiproxyClient, upstream: Upstream
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = f"127.0.0.1:{busy.getsockname()[1]}"
        entries = [
            {"name": "ok", "upstream": upstream.address, "listen": "127.0.0.1:0"},
            {"name": "clash", "upstream": upstream.address, "listen": taken},
        ]
        with pytest.raises(ToxiproxyError) as info:
            await client.populate(entries)
    assert info.value.status >= 500
    assert [p.name for p in info.value.proxies] == ["ok"]


# ---------------------------------------------------------------- wire-level, no server


def _mock(handler: httpx.MockTransport) -> ToxiproxyClient:
    return ToxiproxyClient("http://127.0.0.1:8474", transport=handler)


async def test_unknown_fields_are_ignored() -> None:
    body = (
        b'{"name":"db","listen":"127.0.0.1:15432","upstream":"127.0.0.1:5432",'
        b'"enabled":true,"toxics":[{"attributes":{"latency":300,"jitter":0},'
        b'"name":"l","type":"latency","stream":"downstream","toxicity":1,"extra":[]}],'
        b'"Logger":{}}\n'
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": "text/plain"})

    async with _mock(httpx.MockTransport(handler)) as api:
        proxy = await api.get_proxy("db")
    assert proxy == Proxy(
        name="db",
        listen="127.0.0.1:15432",
        upstream="127.0.0.1:5432",
        enabled=True,
        toxics=(
            Toxic(
                name="l",
                type="latency",
                stream="downstream",
                toxicity=1.0,
                attributes={"latency": 300, "jitter": 0},
            ),
        ),
    )


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, ToxiproxyBadRequest),
        (404, ToxiproxyNotFound),
        (409, ToxiproxyConflict),
        (500, ToxiproxyAPIError),
        (503, ToxiproxyAPIError),
    ],
)
async def test_error_statuses_map_to_classes(status: int, cls: type[ToxiproxyError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        payload = json.dumps({"error": "boom", "status": status}).encode() + b"\n"
        return httpx.Response(
            status, content=payload, headers={"Content-Type": "text/plain; charset=utf-8"}
        )

    async with _mock(httpx.MockTransport(handler)) as api:
        with pytest.raises(cls) as info:
            await api.proxies()
    assert type(info.value) is cls
    assert info.value.status == status
    assert info.value.message == "boom"


async def test_plain_text_error_keeps_text() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, text="User agent not allowed")

    async with _mock(httpx.MockTransport(handler)) as api:
        with pytest.raises(ToxiproxyAPIError) as info:
            await api.version()
    assert info.value.status == 403
    assert info.value.message == "User agent not allowed"


async def test_plain_text_version_of_old_servers() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="2.1.4")

    async with _mock(httpx.MockTransport(handler)) as api:
        assert await api.version() == "2.1.4"


async def test_timeout_is_driver_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with _mock(httpx.MockTransport(handler)) as api:
        with pytest.raises(DriverUnavailable, match=r"http://127\.0\.0\.1:8474"):
            await api.proxies()


async def test_refused_connection_is_driver_unavailable() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    async with ToxiproxyClient(url, timeout=2.0) as api:
        with pytest.raises(DriverUnavailable) as info:
            await api.version()
    message = str(info.value)
    assert url in message
    assert "\n" not in message
    assert isinstance(info.value.__cause__, httpx.TransportError)


async def test_names_are_quoted_into_one_path_segment() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(204)

    async with _mock(httpx.MockTransport(handler)) as api:
        await api.delete_toxic("a/b", "c?d")
    assert seen == ["/proxies/a%2Fb/toxics/c%3Fd"]
