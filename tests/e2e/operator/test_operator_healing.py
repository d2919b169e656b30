"""A HealingPolicy resource is healed by the operator as ``aftershock heal`` heals a file.

The operator runs in-process with its ServiceAccount's token; the policy
watches a marker file with a command probe and heals by creating it. The
operator's healer must write the audit lines and export the metrics that
``aftershock heal`` does (both go through ``runtime.HealerHost``), and stop
when the resource is deleted.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import pytest

from aftershock.model import HealingPolicy
from aftershock.observability.audit import read_audit
from aftershock.runtime import TargetClaim
from tests.e2e.operator.helpers import GROUP, NAMESPACE, VERSION, await_for
from tests.e2e.operator.test_operator import events_about

pytestmark = [pytest.mark.kube, pytest.mark.slow]


def healing_policy(name: str, marker: Path) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HealingPolicy",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "targets": {"svc": {"process": {"command": ["sleep", "120"]}}},
            "watch": {
                "marker": {
                    "command": {"command": ["test", "-f", str(marker)]},
                    "every": "100ms",
                    "unhealthyAfter": 2,
                    "healthyAfter": 1,
                    "target": "svc",
                }
            },
            "playbooks": [
                {
                    "name": "touch",
                    "when": {"unhealthy": "marker"},
                    "steps": [
                        {"action": "command", "with": {"command": ["touch", str(marker)]}},
                        {"action": "wait.healthy", "with": {"probe": "marker", "within": "5s"}},
                    ],
                    "limits": {
                        "maxAttempts": 3,
                        "backoff": {"initial": "1s", "max": "5s"},
                        "cooldown": "1m",
                    },
                }
            ],
        },
    }


def audit(home: Path) -> list[dict[str, Any]]:
    path = home / "audit" / "healer.jsonl"
    return read_audit(path) if path.exists() else []


def healed(home: Path) -> bool:
    kinds = {r["kind"] for r in audit(home)}
    return {"incident.closed", "healer.outcome"} <= kinds


@pytest.mark.timeout(120)
async def test_the_operator_heals_a_policy_with_the_audit_and_metrics_of_heal(
    admin: Any, replicas: Any, tmp_path: Path
) -> None:
    replica = replicas("op-a")
    await await_for(lambda: replica.leading and replica.address, 30, "the replica to lead")
    custom = kubernetes.client.CustomObjectsApi(admin)
    marker = tmp_path / "marker"
    body = healing_policy("marker", marker)
    await asyncio.to_thread(
        custom.create_namespaced_custom_object, GROUP, VERSION, NAMESPACE, "healingpolicies", body
    )
    home = replica.settings.home
    await await_for(lambda: healed(home), 60, "the operator's healer to heal the marker")
    assert marker.exists()

    records = audit(home)
    key = f"{NAMESPACE}/marker"
    assert {r["policy"] for r in records} == {key}
    kinds = [r["kind"] for r in records]
    for kind in ("watch.transition", "incident.opened", "healer.action", "incident.closed"):
        assert kind in kinds, kinds
    steps = [(r["action"], r["outcome"]) for r in records if r["kind"] == "healer.action"]
    assert steps == [("command", "ok"), ("wait.healthy", "ok")]

    host, port = replica.address
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"http://{host}:{port}/metrics")).text
    labels = f'policy="{key}",probe="marker",state="healthy",target="svc"'
    assert f"aftershock_watch_state{{{labels}}} 1.0" in metrics
    assert (
        f'aftershock_healer_actions_total{{action="command",outcome="ok",playbook="touch",policy="{key}"}} 1.0'
        in metrics
    )
    assert 'aftershock_probe_latency_seconds_count{ok="true",probe="marker"}' in metrics
    assert "aftershock_operator_healers 1.0" in metrics

    await asyncio.to_thread(
        custom.delete_namespaced_custom_object,
        GROUP,
        VERSION,
        NAMESPACE,
        "healingpolicies",
        "marker",
    )
    await await_for(
        lambda: replica.state is not None and not replica.state.healers, 30, "the healer to stop"
    )
    host_ = replica.state.healer_host if replica.state is not None else None
    assert host_ is not None and host_.healers == ()


@pytest.mark.timeout(120)
async def test_the_operators_healer_stands_back_on_a_target_a_run_leases_and_says_so(
    admin: Any, replicas: Any, tmp_path: Path
) -> None:
    replica = replicas("op-a")
    await await_for(lambda: replica.leading, 30, "the replica to lead")
    assert replica.state is not None
    stores = replica.state.stores
    custom = kubernetes.client.CustomObjectsApi(admin)
    marker = tmp_path / "marker"
    body = healing_policy("leased", marker)
    target = HealingPolicy.model_validate(body).spec.targets["svc"]
    claim = TargetClaim(
        run_id="run-holding-svc", experiment="exp", target="svc", keys=target.identities()
    )

    def status() -> dict[str, Any]:
        found = custom.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "healingpolicies", "leased"
        )
        return dict(found.get("status") or {})

    with stores.runs.alive(claim.run_id):
        async with stores.leases.hold([claim]):
            await asyncio.to_thread(
                custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                NAMESPACE,
                "healingpolicies",
                body,
            )
            standing = await await_for(
                lambda: status().get("standingBack"), 30, "status.standingBack"
            )
            assert list(standing) == ["svc"]
            assert "run-holding-svc" in standing["svc"]
            current = status()
            assert current["watchedBy"] == "op-a"
            assert [w["name"] for w in current["watches"]] == ["marker"]
            await asyncio.sleep(1.0)  # unhealthy all along: the healer stood back
            assert not marker.exists()
    await await_for(marker.exists, 30, "the healer to act once the lease is gone")
    await await_for(lambda: status().get("standingBack") == {}, 30, "standingBack to clear")


@pytest.mark.timeout(150)
async def test_healing_state_survives_a_new_leader_and_every_action_is_an_event(
    admin: Any, replicas: Any, tmp_path: Path
) -> None:
    """One attempt per cooldown: the leader heals once; its successor, reading the attempt
    from the policy's status, does not heal again before the cooldown ends."""
    first = replicas("op-a")
    await await_for(lambda: first.leading, 30, "op-a to lead")
    custom = kubernetes.client.CustomObjectsApi(admin)
    marker = tmp_path / "marker"
    body = healing_policy("once", marker)
    body["spec"]["playbooks"][0]["limits"] = {"maxAttempts": 1, "cooldown": "10m"}
    await asyncio.to_thread(
        custom.create_namespaced_custom_object, GROUP, VERSION, NAMESPACE, "healingpolicies", body
    )
    await await_for(marker.exists, 30, "the leader to heal")

    def status() -> dict[str, Any]:
        found = custom.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "healingpolicies", "once"
        )
        return dict(found.get("status") or {})

    attempts = await await_for(
        lambda: ((status().get("healing") or {}).get("playbooks") or {}).get("touch"),
        30,
        "the attempt in status.healing",
    )
    assert len(attempts["attempts"]) == 1
    healed_status = await await_for(
        lambda: status().get("lastRecovery") and status(), 30, "status.lastRecovery"
    )
    assert healed_status["lastAction"]["playbook"] == "touch"
    assert healed_status["lastAction"]["outcome"] == "ok"
    assert healed_status["lastRecovery"]["mttrSeconds"] >= 0

    def reasons() -> list[str]:
        events = events_about(admin, "once")
        return [e["reason"] for e in events if e["regarding"].get("kind") == "HealingPolicy"]

    found = await await_for(
        lambda: "HealingAction" in reasons() and "Recovered" in reasons() and reasons(),
        30,
        "the action's Event",
    )
    assert "Unhealthy" in found

    # a second outage within the cooldown: no second attempt, before or after the failover
    marker.unlink()
    await asyncio.sleep(1.0)
    assert not marker.exists(), "\n".join(
        str(x)
        for x in [
            (r["kind"], r.get("outcome"), r.get("reason"), r.get("action"))
            for r in audit(first.settings.home)
        ]
    )
    second = replicas("op-b")
    await first.close()
    await await_for(lambda: second.leading, 30, "op-b to take over")
    await await_for(lambda: second.state is not None and second.state.healers, 30, "op-b's healer")
    await asyncio.sleep(3.0)  # unhealthy for 30 samples under the new leader
    assert not marker.exists(), "the new leader healed again within the cooldown"
    assert len(status()["healing"]["playbooks"]["touch"]["attempts"]) == 1


@pytest.mark.timeout(120)
async def test_an_invalid_policy_gets_a_condition_naming_the_field_and_no_healer(
    admin: Any, replicas: Any, tmp_path: Path
) -> None:
    replica = replicas("op-a")
    await await_for(lambda: replica.leading, 30, "the replica to lead")
    custom = kubernetes.client.CustomObjectsApi(admin)
    body = healing_policy("broken", tmp_path / "marker")
    # passes the CRD's schema; the model's cross-reference check refuses it
    body["spec"]["playbooks"][0]["when"]["unhealthy"] = "no-such-watch"
    await asyncio.to_thread(
        custom.create_namespaced_custom_object, GROUP, VERSION, NAMESPACE, "healingpolicies", body
    )

    def condition() -> dict[str, Any] | None:
        found = custom.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "healingpolicies", "broken"
        )
        conditions = (found.get("status") or {}).get("conditions") or []
        return conditions[0] if conditions else None

    valid = await await_for(condition, 30, "a Valid condition")
    assert valid["status"] == "False"
    assert "when.unhealthy" in valid["message"], valid["message"]
    assert "no-such-watch" in valid["message"]
    assert replica.state is not None
    assert not replica.state.healers
    assert "Invalid" in [e["reason"] for e in events_about(admin, "broken")]
