from typing import Any

import pytest
from pydantic import ValidationError

from aftershock.model import (
    ACTIONS,
    DOCUMENT_ADAPTER,
    FAULTS,
    Experiment,
    HealingPolicy,
    TargetKind,
    check_document,
)
from aftershock.model.secrets import Secret


def experiment(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "targets": {"db": {"toxiproxy": {"api": "http://127.0.0.1:8474", "proxy": "pg"}}},
        "probes": {"web": {"http": {"url": "http://127.0.0.1:8080/health"}}},
        "method": [
            {
                "name": "slow",
                "fault": "toxiproxy.latency",
                "target": "db",
                "with": {"latency": "300ms"},
                "for": "10s",
            }
        ],
    }
    base.update(spec)
    return {
        "apiVersion": "aftershock.dev/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": "x"},
        "spec": base,
    }


def test_a_minimal_experiment_validates_and_is_frozen() -> None:
    doc = DOCUMENT_ADAPTER.validate_python(experiment())
    assert isinstance(doc, Experiment)
    step = doc.spec.method[0]
    assert step.params.latency.total_seconds() == 0.3  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        doc.metadata.name = "y"  # type: ignore[misc]


def test_documents_round_trip_through_their_yaml_shape() -> None:
    doc = DOCUMENT_ADAPTER.validate_python(experiment())
    dumped = doc.model_dump(by_alias=True, mode="json", exclude_defaults=True)
    assert dumped["spec"]["method"][0]["with"] == {"latency": "300ms"}
    assert DOCUMENT_ADAPTER.validate_python(dumped) == doc


def test_every_fault_and_action_is_registered_with_its_kind() -> None:
    assert len(FAULTS) == 20
    assert FAULTS["toxiproxy.down"][0] is TargetKind.TOXIPROXY
    assert FAULTS["k8s.cordon"][0] is TargetKind.KUBERNETES
    assert ACTIONS["wait.healthy"][0] is None
    assert ACTIONS["process.resume"][0] is TargetKind.PROCESS


def test_fault_on_a_target_of_another_kind_is_reported_at_the_fault() -> None:
    doc = DOCUMENT_ADAPTER.validate_python(
        experiment(method=[{"name": "p", "fault": "docker.pause", "target": "db"}])
    )
    findings = check_document(doc)
    assert findings == [
        (
            ("spec", "method", 0, "fault"),
            "docker.pause acts on docker targets, but this target is a toxiproxy target",
        )
    ]


def test_unknown_references_are_all_found() -> None:
    doc = DOCUMENT_ADAPTER.validate_python(
        experiment(
            method=[{"name": "k", "fault": "docker.kill", "target": "nope"}],
            slo={"a": {"probe": "ghost", "objective": "99%"}},
            steadyState=[{"probe": "ghost", "expect": {"successRatio": ">= 0.9"}}],
            budget={"slo": "missing", "maxSpend": "2%"},
        )
    )
    paths = [path for path, _ in check_document(doc)]
    assert ("spec", "method", 0, "target") in paths
    assert ("spec", "slo", "a", "probe") in paths
    assert ("spec", "steadyState", 0, "probe") in paths
    assert ("spec", "budget", "slo") in paths


def test_target_needs_exactly_one_kind() -> None:
    with pytest.raises(ValidationError, match="exactly one of"):
        DOCUMENT_ADAPTER.validate_python(
            experiment(targets={"t": {"docker": {"names": ["a"]}, "process": {"command": ["x"]}}})
        )


def test_objective_of_100_percent_leaves_no_budget_and_is_refused() -> None:
    with pytest.raises(ValidationError, match="no error budget"):
        DOCUMENT_ADAPTER.validate_python(
            experiment(slo={"a": {"probe": "web", "objective": "100%"}})
        )


def test_secret_text_is_redacted_when_dumped() -> None:
    data = experiment()
    data["spec"]["probes"]["web"]["http"]["headers"] = {"Authorization": Secret("Bearer s3cr3t")}
    doc = DOCUMENT_ADAPTER.validate_python(data)
    dumped = doc.model_dump_json(by_alias=True)
    assert "s3cr3t" not in dumped
    assert "***" in dumped
    assert "s3cr3t" not in repr(doc)


def test_healing_policy_checks_step_targets_and_probes() -> None:
    doc = DOCUMENT_ADAPTER.validate_python(
        {
            "apiVersion": "aftershock.dev/v1alpha1",
            "kind": "HealingPolicy",
            "metadata": {"name": "h"},
            "spec": {
                "targets": {"api": {"process": {"command": ["sleep", "100"]}}},
                "watch": {"web": {"tcp": {"address": "127.0.0.1:8080"}}},
                "playbooks": [
                    {
                        "name": "fix",
                        "when": {"unhealthy": "web"},
                        "steps": [
                            {"action": "docker.restart", "target": "api"},
                            {"action": "process.restart"},
                            {"action": "wait.healthy", "with": {"probe": "other"}},
                        ],
                    }
                ],
            },
        }
    )
    assert isinstance(doc, HealingPolicy)
    paths = [p for p, _ in check_document(doc)]
    assert paths == [
        ("spec", "playbooks", 0, "steps", 0, "action"),
        ("spec", "playbooks", 0, "steps", 1, "action"),
        ("spec", "playbooks", 0, "steps", 2, "with", "probe"),
    ]


@pytest.mark.parametrize(
    ("over", "shown", "ok"), [("0s", "0s", False), ("400ms", "0.4s", False), ("1s", "1s", True)]
)
def test_a_steady_state_window_must_hold_a_sample(over: str, shown: str, ok: bool) -> None:
    """``over`` shorter than the probe's ``every`` is refused at validation (default every: 1s)."""
    doc = DOCUMENT_ADAPTER.validate_python(
        experiment(
            steadyState=[{"probe": "web", "over": over, "expect": {"successRatio": ">= 0.9"}}]
        )
    )
    findings = check_document(doc)
    if ok:
        assert findings == []
    else:
        assert findings == [
            (
                ("spec", "steadyState", 0, "over"),
                (
                    f"over ({shown}) is shorter than probe 'web''s every (1s),"
                    " so the window could hold no sample; make it at least 1s"
                ),
            )
        ]
