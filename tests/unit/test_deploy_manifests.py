"""What ``kubectl apply -k deploy/`` installs keeps no state on a shared volume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def manifests() -> list[dict[str, Any]]:
    found = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if isinstance(doc, dict)]
    return found


def walk(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [node, *(n for v in node.values() for n in walk(v))]
    if isinstance(node, list):
        return [n for v in node for n in walk(v)]
    return [node]


def test_no_manifest_asks_for_a_shared_volume() -> None:
    docs = manifests()
    assert docs, "no manifests found under deploy/"
    assert not [d for d in docs if d.get("kind") == "PersistentVolumeClaim"]
    for doc in docs:
        for node in walk(doc):
            if isinstance(node, dict) and "accessModes" in node:
                assert "ReadWriteMany" not in node["accessModes"], doc["metadata"]
            if isinstance(node, dict) and "persistentVolumeClaim" in node:
                raise AssertionError(f"{doc['metadata']['name']} mounts a PVC")


def test_the_operators_home_is_pod_local() -> None:
    (deployment,) = [
        d
        for d in manifests()
        if d.get("kind") == "Deployment" and d["metadata"]["name"] == "aftershock-operator"
    ]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["home"]


def test_the_operator_may_write_what_its_stores_need() -> None:
    (role,) = [
        d
        for d in manifests()
        if d.get("kind") == "Role" and d["metadata"]["name"] == "aftershock-operator"
    ]
    granted = {
        (resource, verb)
        for rule in role["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        if "resourceNames" not in rule
    }
    for need in [
        ("experimentruns", "create"),
        ("experimentruns", "list"),
        ("experimentruns/status", "update"),
        ("experiments/status", "update"),
        ("healingpolicies/status", "update"),
        ("leases", "create"),
        ("leases", "update"),
        ("leases", "delete"),
        ("leases", "list"),
        ("configmaps", "watch"),
    ]:
        assert need in granted, need
