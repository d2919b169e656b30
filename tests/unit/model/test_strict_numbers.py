"""Numbers and booleans in documents are strict: no strings, no booleans as numbers."""

from typing import Any

import pytest

from aftershock.loading import load_text

HEAD = "apiVersion: aftershock.dev/v1alpha1\nkind: Experiment\nmetadata: {name: x}\nspec:\n"
TARGETS = (
    "  targets:\n"
    "    db: {toxiproxy: {api: http://127.0.0.1:8474, proxy: pg}}\n"
    "    k: {kubernetes: {namespace: shop, kind: Deployment, name: web}}\n"
    "    api: {docker: {names: [api], pick: PICK}}\n"
)


def experiment(step: str, pick: str = "1") -> str:
    return f"{HEAD}{TARGETS.replace('PICK', pick)}  method:\n    - {step}\n"


def problems_of(text: str) -> list[tuple[int, int, str, str]]:
    docs, problems = load_text(text, "s.yaml", env={})
    assert not (docs and problems)
    return [(p.line, p.column, p.path, p.message) for p in problems]


LATENCY = "{name: s, fault: toxiproxy.latency, target: db, with: {latency: 1s, toxicity: VALUE}}"
SCALE = "{name: s, fault: k8s.scale, target: k, with: {replicas: VALUE}}"
BANDWIDTH = "{name: s, fault: toxiproxy.bandwidth, target: db, with: {rate: VALUE}}"


@pytest.mark.parametrize(
    ("step", "value", "path"),
    [
        (LATENCY, "true", "spec.method[0].with.toxicity"),
        (LATENCY, '"0.5"', "spec.method[0].with.toxicity"),
        (LATENCY, "'1'", "spec.method[0].with.toxicity"),
        (SCALE, '"3"', "spec.method[0].with.replicas"),
        (SCALE, "true", "spec.method[0].with.replicas"),
        (SCALE, "3.0", "spec.method[0].with.replicas"),
        (BANDWIDTH, '"100"', "spec.method[0].with.rate"),
    ],
)
def test_fault_parameters_refuse_strings_and_booleans_as_numbers(
    step: str, value: str, path: str
) -> None:
    found = problems_of(experiment(step.replace("VALUE", value)))
    assert len(found) == 1, found
    line, column, where, message = found[0]
    assert (line, where) == (10, path)
    assert column > 1
    assert "valid" in message


@pytest.mark.parametrize(
    ("step", "value"),
    [(LATENCY, "0.5"), (LATENCY, "1"), (LATENCY, "0"), (SCALE, "3"), (BANDWIDTH, "100")],
)
def test_yaml_numbers_still_validate(step: str, value: str) -> None:
    docs, problems = load_text(experiment(step.replace("VALUE", value)), "s.yaml", env={})
    assert problems == []
    params: Any = docs[0].document.spec.method[0].params  # type: ignore[union-attr]
    field = "toxicity" if "toxicity" in step else "replicas" if "replicas" in step else "rate"
    assert getattr(params, field) == float(value)


@pytest.mark.parametrize("pick", ["true", '"2"', "1.0"])
def test_a_pick_count_must_be_an_integer(pick: str) -> None:
    step = "{name: s, fault: docker.kill, target: api}"
    found = problems_of(experiment(step, pick))
    assert found
    assert all(path.startswith("spec.targets.api.docker.pick") for _, _, path, _ in found)


POLICY = """\
apiVersion: aftershock.dev/v1alpha1
kind: HealingPolicy
metadata: {name: p}
spec:
  targets: {api: {docker: {names: [api]}}}
  watch:
    web: {http: {url: http://127.0.0.1:8080/}, unhealthyAfter: UNHEALTHY}
  playbooks:
    - name: restart
      when: {unhealthy: web}
      steps: [{action: docker.restart, target: api}]
      limits: {maxAttempts: ATTEMPTS, backoff: {factor: FACTOR}}
  dryRun: DRY
"""


GOOD = {"UNHEALTHY": "3", "ATTEMPTS": "3", "FACTOR": "2", "DRY": "false"}


def policy(**values: str) -> str:
    text = POLICY
    for name, value in {**GOOD, **values}.items():
        text = text.replace(name, value)
    return text


def test_the_policy_template_is_valid() -> None:
    assert problems_of(policy()) == []
    assert problems_of(policy(FACTOR="1.5", DRY="true")) == []


@pytest.mark.parametrize(
    ("field", "bad", "path"),
    [
        ("UNHEALTHY", '"3"', "spec.watch.web.unhealthyAfter"),
        ("ATTEMPTS", "true", "spec.playbooks[0].limits.maxAttempts"),
        ("FACTOR", '"2"', "spec.playbooks[0].limits.backoff.factor"),
        ("DRY", '"false"', "spec.dryRun"),
        ("DRY", "0", "spec.dryRun"),
    ],
)
def test_policy_numbers_and_booleans_are_strict(field: str, bad: str, path: str) -> None:
    found = problems_of(policy(**{field: bad}))
    assert [p for _, _, p, _ in found] == [path]
