"""JSON Schema for editors and CRD manifests for the operator, from the same models.

The CRD's ``openAPIV3Schema`` must be *structural* (Kubernetes rules): every
node has one ``type``, no ``$ref``, ``oneOf``/``anyOf`` only without types
inside, no ``additionalProperties: false``. ``structural()`` converts the
pydantic schema accordingly; the operator still validates every resource with
the full models, so nothing is lost by the looser server-side schema.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from aftershock.model.documents import DOCUMENT_ADAPTER
from aftershock.model.experiment import Experiment
from aftershock.model.policy import HealingPolicy

__all__ = ["GROUP", "VERSION", "crd_manifests", "json_schema", "structural"]

GROUP: Final = "aftershock.dev"
VERSION: Final = "v1alpha1"
_ANY: Final[dict[str, Any]] = {"x-kubernetes-preserve-unknown-fields": True}
_DROP: Final = {"title", "examples", "discriminator", "default", "additionalProperties"}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a document of either kind (for the YAML language server)."""
    schema = DOCUMENT_ADAPTER.json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://{GROUP}/schemas/{VERSION}/document.json"
    schema["title"] = "aftershock Experiment or HealingPolicy"
    return schema


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            merged = {**_inline(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}
            return _inline(merged, defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _merge_variants(variants: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold the alternatives of a union into one structural node."""
    types = {v.get("type") for v in variants}
    if types == {"object"}:
        properties: dict[str, Any] = {}
        for variant in variants:
            for name, prop in variant.get("properties", {}).items():
                if name not in properties:
                    properties[name] = prop
                elif properties[name] != prop:
                    properties[name] = _widen(properties[name], prop)
        return {"type": "object", "properties": properties}
    if types <= {"integer", "string"} and len(types) == 2:
        return {"x-kubernetes-int-or-string": True}
    if len(types) == 1 and None not in types:
        merged = copy.deepcopy(variants[0])
        if all("enum" in v for v in variants):
            merged["enum"] = sorted({e for v in variants for e in v["enum"]})
        return merged
    return dict(_ANY)


def _widen(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    if "enum" in a and "enum" in b and a.get("type") == b.get("type"):
        return {**a, "enum": sorted(set(a["enum"]) | set(b["enum"]))}
    if a.get("type") == b.get("type") == "object":
        return _merge_variants([a, b])
    return dict(_ANY)


def structural(node: Any) -> Any:
    """Convert an inlined JSON Schema node into a structural OpenAPI v3 node."""
    if isinstance(node, list):
        return [structural(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = _fold_unions(dict(node))
    out = _convert_keys(node)
    if "properties" in out and "additionalProperties" in out:
        del out["additionalProperties"]
    if "type" not in out and not any(k.startswith("x-kubernetes") for k in out):
        out.update(_ANY)
    return out


def _fold_unions(node: dict[str, Any]) -> dict[str, Any]:
    if "const" in node:
        node["enum"] = [node.pop("const")]
    for union in ("anyOf", "oneOf"):
        if union in node:
            variants = [structural(v) for v in node.pop(union)]
            non_null = [v for v in variants if v.get("type") != "null"]
            nullable = len(non_null) != len(variants)
            base = non_null[0] if len(non_null) == 1 else _merge_variants(non_null)
            extra = {k: v for k, v in node.items() if k not in _DROP}
            node = {**base, **extra}
            if nullable:
                node["nullable"] = True
    return node


def _convert_keys(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP and key != "additionalProperties":
            continue
        if key == "properties":
            out[key] = {name: structural(prop) for name, prop in value.items()}
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = structural(value)
        elif key == "items":
            out[key] = structural(value)
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "required":
            out[key] = sorted(value)
        else:
            out[key] = value
    return out


def _openapi(model: type[Experiment] | type[HealingPolicy]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    inlined = _inline(schema, schema.get("$defs", {}))
    spec = structural(inlined["properties"]["spec"])
    return {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }


def _crd(kind: str, plural: str, short: str, columns: list[dict[str, Any]]) -> dict[str, Any]:
    model = Experiment if kind == "Experiment" else HealingPolicy
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["aftershock"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": _openapi(model)},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


def _run_crd() -> dict[str, Any]:
    """``ExperimentRun``: written by the operator only (fault records, result; see
    ``aftershock.operator.runrecords``), so its schema checks the frame and keeps the records."""
    text = {"type": "string"}
    spec = {
        "type": "object",
        "required": ["runId", "experiment", "holder"],
        "properties": {
            "runId": text,
            "experiment": text,
            "holder": text,
            "seed": {"type": "integer"},
            "startedAt": text,
        },
    }
    columns = [
        {"name": "Experiment", "type": "string", "jsonPath": ".spec.experiment"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Result", "type": "string", "jsonPath": ".status.result.status"},
        {"name": "Holder", "type": "string", "jsonPath": ".spec.holder", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"experimentruns.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": "ExperimentRun",
                "listKind": "ExperimentRunList",
                "plural": "experimentruns",
                "singular": "experimentrun",
                "shortNames": ["axr"],
                "categories": ["aftershock"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "apiVersion": text,
                                "kind": text,
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                        }
                    },
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


def crd_manifests() -> list[dict[str, Any]]:
    """The CustomResourceDefinitions: both kinds, and the operator's ``ExperimentRun``."""
    phase = {"name": "Phase", "type": "string", "jsonPath": ".status.phase"}
    age = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    return [
        _crd(
            "Experiment",
            "experiments",
            "axp",
            [
                phase,
                {"name": "Verdict", "type": "string", "jsonPath": ".status.verdict"},
                {"name": "Last run", "type": "date", "jsonPath": ".status.lastRun"},
                age,
            ],
        ),
        _crd("HealingPolicy", "healingpolicies", "ahp", [phase, age]),
        _run_crd(),
    ]
