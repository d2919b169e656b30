"""The embedded server's API against the Toxiproxy 2.12 reference: statuses, bodies, headers."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from aftershock.proxy import VERSION

from .helpers import create_proxy, port_refuses

TEXT = "text/plain; charset=utf-8"
REQUEST_ID = re.compile(r"^[0-9a-v]{20}$")


def error_body(message: str, status: int) -> str:
    return json.dumps({"error": message, "status": status}, separators=(",", ":")) + "\n"


def assert_error(answer: httpx.Response, status: int, message: str) -> None:
    assert (answer.status_code, answer.text) == (status, error_body(message, status))
    assert answer.headers["content-type"] == TEXT


# ---------------------------------------------------------------- server


async def test_version_answer_is_byte_exact(api: httpx.AsyncClient) -> None:
    answer = await api.get("/version")
    assert answer.status_code == 200
    assert answer.content == b'{"version": "' + VERSION.encode() + b'"}\n'
    assert answer.headers["content-type"] == "application/json;charset=utf-8"


async def test_every_routed_answer_carries_a_fresh_request_id(api: httpx.AsyncClient) -> None:
    first, second = await api.get("/version"), await api.get("/proxies/missing")
    ids = [a.headers["x-toxiproxy-request-id"] for a in (first, second)]
    assert all(REQUEST_ID.match(i) for i in ids)
    assert ids[0] != ids[1]


async def test_browser_user_agents_are_refused(api: httpx.AsyncClient) -> None:
    answer = await api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux)"})
    assert (answer.status_code, answer.text) == (403, "User agent not allowed\n")
    assert answer.headers["content-type"] == TEXT
    assert (await api.get("/proxies", headers={"User-Agent": "curl/8"})).status_code == 200


async def test_metrics_are_disabled(api: httpx.AsyncClient) -> None:
    answer = await api.get("/metrics")
    assert (answer.status_code, answer.text) == (404, "404 page not found\n")


async def test_unknown_paths_404_and_wrong_methods_405(api: httpx.AsyncClient) -> None:
    assert (await api.get("/nope")).status_code == 404
    assert (await api.get("/proxies/a/b")).status_code == 404
    wrong = await api.put("/proxies")
    assert (wrong.status_code, wrong.content) == (405, b"")
    assert (await api.get("/reset")).status_code == 405


async def test_reset_reenables_proxies_and_clears_toxics(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    address = await create_proxy(api, echo_upstream)
    await api.post("/proxies/p/toxics", json={"type": "latency"})
    await api.post("/proxies/p", json={"enabled": False})
    assert await port_refuses(*address)

    answer = await api.post("/reset")
    assert (answer.status_code, answer.content) == (204, b"")
    assert "content-type" not in answer.headers
    proxy = (await api.get("/proxies/p")).json()
    assert proxy["enabled"] is True
    assert proxy["toxics"] == []
    assert proxy["listen"] == f"{address[0]}:{address[1]}"
    assert (await api.get("/proxies/p/toxics")).json() == []
    assert not await port_refuses(*address)


# ---------------------------------------------------------------- proxies


async def test_proxy_index_is_an_object_keyed_by_name(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    empty = await api.get("/proxies")
    assert (empty.status_code, empty.text) == (200, "{}")
    assert empty.headers["content-type"] == "application/json"
    await create_proxy(api, echo_upstream, "zeta")
    await create_proxy(api, echo_upstream, "alpha")
    listing = await api.get("/proxies")
    assert list(listing.json()) == ["alpha", "zeta"]
    assert listing.json()["zeta"]["toxics"] == []


async def test_create_answers_201_with_the_real_port(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    answer = await api.post(
        "/proxies", json={"name": "db", "upstream": echo_upstream, "listen": "127.0.0.1:0"}
    )
    assert answer.status_code == 201
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert list(body) == ["name", "listen", "upstream", "enabled", "toxics"]
    host, _, port = body["listen"].rpartition(":")
    assert (host, body["upstream"], body["enabled"], body["toxics"]) == (
        "127.0.0.1",
        echo_upstream,
        True,
        [],
    )
    assert int(port) > 0
    assert not await port_refuses(host, int(port))
    assert (await api.get("/proxies/db")).json() == body


async def test_create_disabled_proxy_does_not_listen(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    answer = await api.post(
        "/proxies",
        json={"name": "p", "upstream": echo_upstream, "listen": "127.0.0.1:0", "enabled": False},
    )
    assert answer.status_code == 201
    assert (answer.json()["enabled"], answer.json()["listen"]) == (False, "127.0.0.1:0")
    enabled = await api.patch("/proxies/p", json={"enabled": True})
    assert enabled.json()["enabled"] is True
    assert not enabled.json()["listen"].endswith(":0")


async def test_create_without_listen_binds_a_loopback_port(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    answer = await api.post("/proxies", json={"name": "p", "upstream": echo_upstream})
    host, _, port = answer.json()["listen"].rpartition(":")
    assert (answer.status_code, host) == (201, "127.0.0.1")
    assert not await port_refuses(host, int(port))
    off = await api.post("/proxies", json={"name": "q", "upstream": "x:1", "enabled": False})
    assert off.json()["listen"] == ""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", "missing required field: name"),
        (b'{"name": "a"}', "missing required field: upstream"),
        (b'{"name": "", "upstream": "x:1"}', "missing required field: name"),
        (b"", "bad request body: EOF"),
        (b"{", "bad request body: unexpected EOF"),
        (
            b"{]",
            "bad request body: invalid character ']' looking for beginning of object key string",
        ),
        (b"nope", "bad request body: invalid character 'o' in literal null (expecting 'u')"),
        (
            b"[]",
            "bad request body: json: cannot unmarshal array into Go value of type toxiproxy.Proxy",
        ),
        (
            b'{"name": 5, "upstream": "x:1"}',
            (
                "bad request body: json: cannot unmarshal number into Go struct field"
                " Proxy.name of type string"
            ),
        ),
    ],
)
async def test_create_refuses_bad_bodies(api: httpx.AsyncClient, body: bytes, message: str) -> None:
    answer = await api.post("/proxies", content=body)
    if message.startswith("bad request body: invalid character 'o'"):
        # Go names the literal it was reading; only the prefix is part of the contract here.
        assert answer.status_code == 400
        assert answer.json()["error"].startswith("bad request body: invalid character")
        return
    assert_error(answer, 400, message)
    assert (await api.get("/proxies")).json() == {}


async def test_create_conflicts_and_listen_failures(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    host, port = await create_proxy(api, echo_upstream, "a")
    again = await api.post("/proxies", json={"name": "a", "upstream": echo_upstream})
    assert_error(again, 409, "proxy already exists")
    busy = await api.post(
        "/proxies", json={"name": "b", "upstream": echo_upstream, "listen": f"{host}:{port}"}
    )
    assert_error(busy, 500, f"listen tcp {host}:{port}: bind: address already in use")
    assert list((await api.get("/proxies")).json()) == ["a"]


async def test_show_and_delete_unknown_proxy_404(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/proxies/ghost"), 404, "proxy not found")
    assert_error(await api.delete("/proxies/ghost"), 404, "proxy not found")
    assert_error(await api.patch("/proxies/ghost", json={}), 404, "proxy not found")


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_update_keeps_omitted_fields(
    api: httpx.AsyncClient, echo_upstream: str, method: str
) -> None:
    host, port = await create_proxy(api, echo_upstream)
    answer = await api.request(method, "/proxies/p", json={"enabled": False})
    assert answer.status_code == 200
    assert answer.json() == {
        "name": "p",
        "listen": f"{host}:{port}",
        "upstream": echo_upstream,
        "enabled": False,
        "toxics": [],
    }
    assert await port_refuses(host, port)
    again = await api.request(method, "/proxies/p", json={"enabled": True})
    assert again.json()["listen"] == f"{host}:{port}"
    assert not await port_refuses(host, port)


async def test_update_refuses_bad_bodies(api: httpx.AsyncClient, echo_upstream: str) -> None:
    await create_proxy(api, echo_upstream)
    assert_error(
        await api.patch("/proxies/p", content=b'{"enabled": "yes"}'),
        400,
        "bad request body: json: cannot unmarshal string into Go struct field"
        " Proxy.enabled of type bool",
    )
    assert_error(await api.patch("/proxies/p", content=b""), 400, "bad request body: EOF")


async def test_changing_listen_moves_the_listener(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    old = await create_proxy(api, echo_upstream)
    moved = await api.patch("/proxies/p", json={"listen": "127.0.0.1:0"})
    host, _, port = moved.json()["listen"].rpartition(":")
    assert int(port) != old[1]
    assert await port_refuses(*old)
    assert not await port_refuses(host, int(port))


async def test_delete_answers_204_and_closes_the_listener(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    address = await create_proxy(api, echo_upstream)
    answer = await api.delete("/proxies/p")
    assert (answer.status_code, answer.content) == (204, b"")
    assert await port_refuses(*address)
    assert (await api.get("/proxies")).json() == {}


# ---------------------------------------------------------------- populate


async def test_populate_creates_and_is_idempotent(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    first = await api.post(
        "/populate",
        json=[
            {"name": "a", "upstream": echo_upstream, "listen": "127.0.0.1:0"},
            {"name": "b", "upstream": echo_upstream, "listen": "127.0.0.1:0", "enabled": None},
        ],
    )
    assert first.status_code == 201
    proxies = first.json()["proxies"]
    assert [(p["name"], p["enabled"]) for p in proxies] == [("a", True), ("b", True)]
    await api.post("/proxies/a/toxics", json={"type": "latency"})

    same = [{"name": p["name"], "upstream": p["upstream"], "listen": p["listen"]} for p in proxies]
    again = await api.post("/populate", json=same)
    assert again.status_code == 201
    assert [p["listen"] for p in again.json()["proxies"]] == [p["listen"] for p in proxies]
    assert [t["name"] for t in again.json()["proxies"][0]["toxics"]] == ["latency_downstream"]

    changed = [{**same[0], "upstream": "127.0.0.1:1"}]
    replaced = await api.post("/populate", json=changed)
    assert replaced.json()["proxies"][0]["toxics"] == []
    assert replaced.json()["proxies"][0]["upstream"] == "127.0.0.1:1"


async def test_populate_checks_every_entry_before_creating(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    answer = await api.post(
        "/populate", json=[{"name": "ok", "upstream": echo_upstream}, {"name": "bad"}]
    )
    assert answer.status_code == 400
    assert answer.text == (
        '{"error":"missing required field: upstream at proxy 2","status":400,"proxies":null}'
    )
    assert answer.headers["content-type"] == "application/json"
    assert (await api.get("/proxies")).json() == {}
    nameless = await api.post("/populate", json=[{"upstream": echo_upstream}])
    assert nameless.json()["error"] == "missing required field: name at proxy 1"


async def test_populate_reports_proxies_made_before_a_failure(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    host, port = await create_proxy(api, echo_upstream, "holder")
    answer = await api.post(
        "/populate",
        json=[
            {"name": "first", "upstream": echo_upstream, "listen": "127.0.0.1:0"},
            {"name": "clash", "upstream": echo_upstream, "listen": f"{host}:{port}"},
        ],
    )
    assert answer.status_code == 500
    body = answer.json()
    assert body["status"] == 500
    assert "address already in use" in body["error"]
    assert [p["name"] for p in body["proxies"]] == ["first"]


async def test_populate_disabled_entries_and_empty_bodies(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    answer = await api.post(
        "/populate", json=[{"name": "off", "upstream": echo_upstream, "enabled": False}]
    )
    assert answer.json()["proxies"][0]["enabled"] is False
    empty = await api.post("/populate", json=[])
    assert (empty.status_code, empty.text) == (201, '{"proxies":null}')
    wrong = await api.post("/populate", json={"name": "x"})
    assert wrong.status_code == 400
    assert wrong.json()["proxies"] is None
    assert wrong.json()["error"].startswith("bad request body: json: cannot unmarshal object")


# ---------------------------------------------------------------- toxics

ZERO_FILLED = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    "noop": {},
}


@pytest.mark.parametrize(("kind", "attributes"), ZERO_FILLED.items())
async def test_toxic_create_zero_fills_attributes(
    api: httpx.AsyncClient, echo_upstream: str, kind: str, attributes: dict[str, int]
) -> None:
    await create_proxy(api, echo_upstream)
    answer = await api.post("/proxies/p/toxics", json={"type": kind})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.text == json.dumps(
        {
            "attributes": attributes,
            "name": f"{kind}_downstream",
            "type": kind,
            "stream": "downstream",
            "toxicity": 1,
        },
        separators=(",", ":"),
    )


async def test_toxic_create_keeps_given_fields(api: httpx.AsyncClient, echo_upstream: str) -> None:
    await create_proxy(api, echo_upstream)
    answer = await api.post(
        "/proxies/p/toxics",
        json={
            "name": "slow",
            "type": "latency",
            "stream": "upstream",
            "toxicity": 0.3,
            "attributes": {"latency": 120},
        },
    )
    assert answer.text == (
        '{"attributes":{"latency":120,"jitter":0},"name":"slow","type":"latency",'
        '"stream":"upstream","toxicity":0.3}'
    )
    assert (await api.get("/proxies/p/toxics/slow")).text == answer.text


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"type": "latency", "stream": "sideways"}, 400, INVALID_STREAM := ""),
        ({"type": "explode"}, 400, "invalid toxic type"),
        ({}, 400, "invalid toxic type"),
        (
            {"type": "latency", "attributes": {"latency": 1.5}},
            400,
            (
                "bad request body: json: cannot unmarshal number 1.5 into Go struct field"
                " LatencyToxic.attributes.latency of type int64"
            ),
        ),
        (
            {"type": "latency", "toxicity": "high"},
            400,
            (
                "bad request body: json: cannot unmarshal string into Go struct field"
                " ToxicWrapper.toxicity of type float32"
            ),
        ),
    ],
)
async def test_toxic_create_refusals(
    api: httpx.AsyncClient, echo_upstream: str, body: dict[str, Any], status: int, message: str
) -> None:
    await create_proxy(api, echo_upstream)
    expected = message or "stream was invalid, can be either upstream or downstream"
    assert_error(await api.post("/proxies/p/toxics", json=body), status, expected)
    assert (await api.get("/proxies/p/toxics")).json() == []


async def test_toxic_conflicts_and_missing_things(
    api: httpx.AsyncClient, echo_upstream: str
) -> None:
    assert_error(
        await api.post("/proxies/ghost/toxics", json={"type": "latency"}), 404, "proxy not found"
    )
    assert_error(await api.get("/proxies/ghost/toxics"), 404, "proxy not found")
    assert_error(await api.get("/proxies/ghost/toxics/t"), 404, "proxy not found")
    await create_proxy(api, echo_upstream)
    await api.post("/proxies/p/toxics", json={"type": "latency"})
    # Names are unique across both streams.
    clash = {"type": "timeout", "name": "latency_downstream", "stream": "upstream"}
    assert_error(await api.post("/proxies/p/toxics", json=clash), 409, "toxic already exists")
    assert_error(await api.get("/proxies/p/toxics/t"), 404, "toxic not found")
    assert_error(await api.patch("/proxies/p/toxics/t", json={}), 404, "toxic not found")
    assert_error(await api.delete("/proxies/p/toxics/t"), 404, "toxic not found")


async def test_toxic_list_order(api: httpx.AsyncClient, echo_upstream: str) -> None:
    await create_proxy(api, echo_upstream)
    for name, stream in [("d1", "downstream"), ("u1", "upstream"), ("d2", "downstream")]:
        await api.post(
            "/proxies/p/toxics", json={"type": "latency", "name": name, "stream": stream}
        )
    await api.post("/proxies/p/toxics", json={"type": "noop", "name": "d3"})
    names = [t["name"] for t in (await api.get("/proxies/p/toxics")).json()]
    # Toxiproxy lists the upstream chain, then the downstream chain, each in creation order.
    assert names == ["u1", "d1", "d2", "d3"]
    await api.delete("/proxies/p/toxics/d1")
    await api.post("/proxies/p/toxics", json={"type": "noop", "name": "d1"})
    names = [t["name"] for t in (await api.get("/proxies/p")).json()["toxics"]]
    assert names == ["u1", "d2", "d3", "d1"]


@pytest.mark.parametrize("method", ["PATCH", "POST"])
async def test_toxic_update_keeps_what_it_does_not_name(
    api: httpx.AsyncClient, echo_upstream: str, method: str
) -> None:
    await create_proxy(api, echo_upstream)
    await api.post(
        "/proxies/p/toxics",
        json={"type": "latency", "toxicity": 0.5, "attributes": {"latency": 100, "jitter": 10}},
    )
    answer = await api.request(
        method,
        "/proxies/p/toxics/latency_downstream",
        json={"attributes": {"jitter": 3}, "name": "ignored", "stream": "upstream"},
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "attributes": {"latency": 100, "jitter": 3},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 0.5,
    }
    answer = await api.request(method, "/proxies/p/toxics/latency_downstream", json={"toxicity": 1})
    assert (answer.json()["toxicity"], answer.json()["attributes"]["latency"]) == (1, 100)
    bad = await api.request(
        method, "/proxies/p/toxics/latency_downstream", json={"attributes": {"latency": "x"}}
    )
    assert bad.status_code == 400
    assert (await api.get("/proxies/p/toxics/latency_downstream")).json()["attributes"] == {
        "latency": 100,
        "jitter": 3,
    }


async def test_toxic_delete_answers_204(api: httpx.AsyncClient, echo_upstream: str) -> None:
    await create_proxy(api, echo_upstream)
    await api.post("/proxies/p/toxics", json={"type": "latency"})
    answer = await api.delete("/proxies/p/toxics/latency_downstream")
    assert (answer.status_code, answer.content) == (204, b"")
    assert (await api.get("/proxies/p/toxics")).json() == []
