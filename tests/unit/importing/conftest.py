"""Helpers for the importer's unit tests: build a Chaos Toolkit experiment, import, load."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from aftershock.importing import ImportResult, import_chaostoolkit
from aftershock.loading import load_text
from aftershock.model.experiment import Experiment

ENV = {
    "TOXIPROXY_HOST": "127.0.0.1",
    "TOXIPROXY_PROXY_NAME": "web",
    "SERVICE_URL": "http://127.0.0.1:8080/health",
    "NS": "shop",
    "TOKEN": "s3cret",
}


def http_probe(tolerance: object = 200, **provider: object) -> dict[str, Any]:
    """A hypothesis probe on ``http://127.0.0.1:8080/health`` with ``tolerance``."""
    return {
        "type": "probe",
        "name": "health",
        "tolerance": tolerance,
        "provider": {"type": "http", "url": "http://127.0.0.1:8080/health", **provider},
    }


def python(module: str, func: str, name: str = "act", **arguments: object) -> dict[str, Any]:
    """A python-provider action."""
    return {
        "type": "action",
        "name": name,
        "provider": {"type": "python", "module": module, "func": func, "arguments": arguments},
    }


def experiment(
    method: list[Any] | None = None,
    *,
    probes: list[Any] | None = None,
    rollbacks: list[Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A Chaos Toolkit experiment; the hypothesis is present when ``probes`` are given."""
    doc: dict[str, Any] = {
        "version": "1.0.0",
        "title": "Unit experiment",
        "description": "built by a test",
        **extra,
    }
    if probes is not None:
        doc["steady-state-hypothesis"] = {"title": "healthy", "probes": probes}
    doc["method"] = method if method is not None else []
    if rollbacks is not None:
        doc["rollbacks"] = rollbacks
    return doc


class Importer:
    """Import a document (a mapping is written as JSON) and load the result."""

    experiment = staticmethod(experiment)
    python = staticmethod(python)
    http_probe = staticmethod(http_probe)
    env = ENV

    def __call__(
        self, doc: Mapping[str, Any] | str | bytes, name: str = "exp.json"
    ) -> ImportResult:
        if isinstance(doc, Mapping):
            raw = json.dumps(doc, indent=2).encode()
        elif isinstance(doc, str):
            raw = doc.encode()
        else:
            raw = doc
        return import_chaostoolkit(raw, name)

    @staticmethod
    def load(result: ImportResult, env: Mapping[str, str] | None = None) -> Experiment:
        """The imported document, loaded (substituted, validated) by the real loader."""
        documents, problems = load_text(result.yaml, "imported.yaml", env={**ENV, **(env or {})})
        assert not problems, "\n".join(map(str, problems)) + "\n" + result.yaml
        (loaded,) = documents
        assert isinstance(loaded.document, Experiment)
        return loaded.document

    def spec(self, doc: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Any:
        """Import ``doc`` and return the loaded spec."""
        return self.load(self(doc), env).spec

    @staticmethod
    def messages(result: ImportResult) -> list[str]:
        """``path: message`` of every warning."""
        return [f"{w.path}: {w.message}" for w in result.warnings]


@pytest.fixture
def ctk() -> Importer:
    """The importer with its helpers."""
    return Importer()
