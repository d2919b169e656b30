import json
from pathlib import Path
from typing import Any

import yaml

from aftershock.loading import dump_yaml
from aftershock.model.schema import crd_manifests, json_schema

ROOT = Path(__file__).resolve().parents[3]


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_committed_crds_match_the_models() -> None:
    for manifest in crd_manifests():
        path = ROOT / "deploy" / "crds" / f"{manifest['metadata']['name']}.yaml"
        assert path.read_text(encoding="utf-8") == dump_yaml([manifest]), (
            f"{path} is out of date: run `aftershock schema --crd --out deploy/crds`"
        )


def test_crd_schemas_are_structural() -> None:
    for manifest in crd_manifests():
        schema = manifest["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for node in _walk(schema):
            assert "$ref" not in node
            assert "anyOf" not in node and "oneOf" not in node
            assert "const" not in node
            assert node.get("additionalProperties") is not False
            if "properties" in node or "items" in node:
                assert "type" in node, node
            if "exclusiveMinimum" in node:
                assert node["exclusiveMinimum"] is True


def test_json_schema_covers_both_kinds_and_loads_as_json() -> None:
    schema = json_schema()
    text = json.dumps(schema)
    assert '"Experiment"' in text and '"HealingPolicy"' in text
    assert yaml.safe_load(text)["$schema"].startswith("https://json-schema.org/")
