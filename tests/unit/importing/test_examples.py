"""The real, unchanged Chaos Toolkit experiments in ../shared/ctk-examples import and validate."""

from datetime import timedelta
from pathlib import Path

import pytest

from aftershock.importing import import_chaostoolkit
from aftershock.loading import load_text, read_source

EXAMPLES = Path(__file__).resolve().parents[4] / "shared" / "ctk-examples"
FILES = sorted(p for p in EXAMPLES.glob("*") if p.suffix in (".json", ".yaml", ".yml"))
ENV = {
    # Every variable the examples' configuration and secrets name; addresses on 127.0.0.1.
    "APPLICATION_ENTRYPOINT_URL": "http://127.0.0.1:18080/",
    "FRONT_URL": "http://127.0.0.1:18081/",
    "COUNTER_URL": "http://127.0.0.1:18082/",
    "WEBAPP_SERVICE_ADDR": "http://127.0.0.1:18083",
    "PROMETHEUS_ADDR": "http://127.0.0.1:19090",
    "PROMETHEUS_URL": "http://127.0.0.1:19090",
    "JAEGER_HOST": "127.0.0.1",
    "TOXIPROXY_HOST": "127.0.0.1",
    "TOXIPROXY_PROXY_NAME": "web",
    "POD_LABEL": "app=web",
    "POD_NAMESPACE": "shop",
    "AZURE_SUBSCRIPTION_ID": "sub",
    "AZURE_CLIENT_ID": "id",
    "AZURE_CLIENT_SECRET": "secret",
    "AZURE_TENANT_ID": "tenant",
    "HUMIO_INGEST_TOKEN": "token",
    "HUMIO_DATASPACE": "space",
}
WARNINGS = {
    "chaos-experiments--experiment.yml": 2,
    "chaostoolkit--override-rollbacks-runtime-strategy.json": 4,
    "chaostoolkit-demos--experiment.json": 4,
    "chaostoolkit-documentation-code--experiment.yaml": 9,
    "chaostoolkit-samples--experiment.json": 10,
    "chaostoolkit-wiremock--fixed_delay.json": 2,
    "community-playground--kill-pods-experiment.json": 0,
    "community-playground--rollout-v4-service2.json": 8,
    "experiment-catalog--introduce_latency_experiment.json": 1,
    "experiment-catalog--stop_random_node_experiment.json": 2,
}


def imported(path: Path):
    result = import_chaostoolkit(read_source(path), str(path))
    documents, problems = load_text(result.yaml, f"{path.stem}.yaml", env=ENV)
    assert not problems, "\n".join(map(str, problems)) + "\n" + result.yaml
    return result, documents[0].document


def test_the_examples_are_there() -> None:
    assert [p.name for p in FILES] == sorted(WARNINGS)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_example_imports_and_validates(path: Path) -> None:
    result, document = imported(path)
    assert len(result.warnings) == WARNINGS[path.name], "\n".join(map(str, result.warnings))
    for warning in result.warnings:
        assert warning.file == str(path)
        assert warning.line >= 1
        assert warning.column >= 1
    assert document.spec.method
    assert import_chaostoolkit(read_source(path), str(path)).yaml == result.yaml


def test_the_toxiproxy_example() -> None:
    result, document = imported(EXAMPLES / "experiment-catalog--introduce_latency_experiment.json")
    spec = document.spec
    (step,) = spec.method
    assert step.fault == "toxiproxy.latency"
    assert step.params.latency == timedelta(milliseconds=1200)
    assert step.params.jitter == timedelta(milliseconds=100)
    assert step.for_ == timedelta(seconds=1)  # pauses.after
    target = spec.targets[step.target].toxiproxy
    assert (target.api, target.proxy) == ("http://127.0.0.1:8474", "web")
    (check,) = spec.steady_state
    assert check.expect.status == [200]
    assert spec.probes[check.probe].http.timeout == timedelta(seconds=1)
    # The rollback names "_latency" where the method created "-latency": reported, not hidden.
    (warning,) = result.warnings
    assert warning.path == "rollbacks[0]"
    assert "web_latency" not in warning.message  # the reference, not its value
    assert "${TOXIPROXY_PROXY_NAME}_latency" in warning.message


def test_the_kubernetes_examples() -> None:
    _, kill = imported(EXAMPLES / "community-playground--kill-pods-experiment.json")
    (step,) = kill.spec.method
    target = kill.spec.targets[step.target].kubernetes
    assert (step.fault, target.namespace, target.selector, target.mode) == (
        "k8s.deletePod",
        "shop",
        "app=web",
        "fixed:2",
    )
    _, demos = imported(EXAMPLES / "chaostoolkit-demos--experiment.json")
    (step,) = demos.spec.method
    assert (step.fault, step.at) == ("k8s.deletePod", timedelta(seconds=5))
    assert demos.spec.probes["front-service-must-be-ok"].http.url == "http://127.0.0.1:18081/"


def test_os_path_exists_and_process_probes_of_the_walkthrough() -> None:
    _, doc = imported(EXAMPLES / "chaostoolkit-documentation-code--experiment.yaml")
    commands = [p.command.command for p in doc.spec.probes.values() if p.command]
    assert ["test", "-e", "astre.pid"] in commands
    assert doc.spec.probes["we-can-request-sunset"].http.timeout == timedelta(seconds=3)
