"""chaostoolkit-kubernetes actions: pod termination modes, scaling, rollouts, nodes."""

from datetime import timedelta

import pytest

POD = "chaosk8s.pod.actions"
NODE = "chaosk8s.node.actions"


def single(ctk, action, env=None):
    result = ctk(ctk.experiment([action], configuration={"ns": {"type": "env", "key": "NS"}}))
    spec = ctk.load(result, env).spec
    (step,) = spec.method
    return result, step, spec.targets[step.target].kubernetes


@pytest.mark.parametrize(
    ("arguments", "mode"),
    [
        ({}, "one"),
        ({"qty": 1}, "one"),
        ({"qty": 3}, "fixed:3"),
        ({"mode": "percentage", "qty": 30}, "percent:30"),
        ({"all": True, "qty": 3}, "all"),
        ({"rand": True, "qty": 2}, "fixed:2"),
    ],
)
def test_terminate_pods_keeps_its_selection_mode(ctk, arguments, mode) -> None:
    action = ctk.python(POD, "terminate_pods", label_selector="app=web", ns="${ns}", **arguments)
    result, step, target = single(ctk, action)
    assert result.warnings == ()
    assert step.fault == "k8s.deletePod"
    assert step.for_ is None  # a deletion is not reverted
    assert (target.namespace, target.selector, target.mode) == ("shop", "app=web", mode)


def test_terminate_pods_grace_period_and_default_namespace(ctk) -> None:
    action = ctk.python(POD, "terminate_pods", label_selector="app=web", grace_period=5)
    _, step, target = single(ctk, action)
    assert step.params.grace == timedelta(seconds=5)
    assert target.namespace == "default"


def test_terminate_pods_without_selector_selects_every_pod_like_chaosk8s(ctk) -> None:
    _, _, target = single(ctk, ctk.python(POD, "terminate_pods", all=True))
    assert (target.selector, target.mode) == ("", "all")


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"name_pattern": "^web-"}, "name_pattern"),
        ({"mode": "percentage", "qty": 0}, "a percentage of 0"),
        ({"qty": 0}, "qty 0"),
        ({"mode": "weird"}, "neither fixed nor percentage"),
    ],
)
def test_terminate_pods_that_cannot_be_kept_exactly_are_not_translated(
    ctk, arguments, reason
) -> None:
    action = ctk.python(POD, "terminate_pods", label_selector="app=web", **arguments)
    result = ctk(ctk.experiment([action]))
    assert any(reason in m for m in ctk.messages(result)), ctk.messages(result)
    assert ctk.load(result).spec.method[0].name == "placeholder"


def test_order_oldest_is_reported(ctk) -> None:
    action = ctk.python(POD, "terminate_pods", label_selector="a=b", order="oldest")
    result, _, _ = single(ctk, action)
    assert any("oldest" in m for m in ctk.messages(result))


@pytest.mark.parametrize(
    ("module", "func", "kind"),
    [
        ("chaosk8s.deployment.actions", "scale_deployment", "Deployment"),
        ("chaosk8s.statefulset.actions", "scale_statefulset", "StatefulSet"),
        ("chaosk8s.actions", "scale_microservice", "Deployment"),
    ],
)
def test_scaling_is_k8s_scale_on_the_workload(ctk, module, func, kind) -> None:
    action = ctk.python(module, func, name="down", replicas=0, ns="${ns}")
    action["provider"]["arguments"]["name"] = "api"
    action["pauses"] = {"after": 30}
    _, step, target = single(ctk, action)
    assert (step.fault, step.params.replicas, step.for_) == ("k8s.scale", 0, timedelta(seconds=30))
    assert (target.namespace, target.kind, target.name) == ("shop", kind, "api")


def test_a_rollback_scaling_back_is_an_implicit_revert(ctk) -> None:
    down = ctk.python("chaosk8s.deployment.actions", "scale_deployment", name="down", replicas=0)
    down["provider"]["arguments"]["name"] = "api"
    back = ctk.python("chaosk8s.deployment.actions", "scale_deployment", name="up", replicas=3)
    back["provider"]["arguments"]["name"] = "api"
    result = ctk(ctk.experiment([down], rollbacks=[back]))
    assert result.warnings == ()
    assert "aftershock reverts down itself" in result.yaml


def test_rollout_deployment_is_a_rollout_restart(ctk) -> None:
    action = ctk.python("chaosk8s.deployment.actions", "rollout_deployment", name="roll")
    action["provider"]["arguments"]["name"] = "api"
    _, step, target = single(ctk, action)
    assert step.fault == "k8s.rolloutRestart"
    assert (target.kind, target.name) == ("Deployment", "api")


def test_cordon_by_name_and_uncordon_rollback(ctk) -> None:
    cordon = ctk.python(NODE, "cordon_node", name="cordon")
    cordon["provider"]["arguments"]["name"] = "node-1"
    cordon["pauses"] = {"after": 20}
    uncordon = ctk.python(NODE, "uncordon_node", name="uncordon")
    uncordon["provider"]["arguments"]["name"] = "node-1"
    result = ctk(ctk.experiment([cordon], rollbacks=[uncordon]))
    assert result.warnings == ()
    spec = ctk.load(result).spec
    (step,) = spec.method
    target = spec.targets[step.target].kubernetes
    assert (step.fault, step.for_) == ("k8s.cordon", timedelta(seconds=20))
    assert (target.kind, target.name) == ("Node", "node-1")
    assert "uncordons the nodes; aftershock reverts cordon itself" in result.yaml


def test_cordon_by_label_selects_every_matching_node(ctk) -> None:
    action = ctk.python(NODE, "cordon_node", label_selector="pool=spot")
    _, _, target = single(ctk, action)
    assert (target.kind, target.selector, target.mode) == ("Node", "pool=spot", "all")


def test_drain_is_a_cordon_and_says_the_pods_stay(ctk) -> None:
    action = ctk.python(NODE, "drain_nodes", label_selector="pool=spot", count=2)
    result, step, target = single(ctk, action)
    assert step.fault == "k8s.cordon"
    assert target.mode == "fixed:2"
    assert any("does not evict" in m for m in ctk.messages(result))


def test_an_uncordon_in_the_method_ends_the_cordon(ctk) -> None:
    cordon = ctk.python(NODE, "cordon_node", label_selector="pool=spot")
    cordon["pauses"] = {"after": 4}
    uncordon = ctk.python(NODE, "uncordon_node", label_selector="pool=spot")
    uncordon["pauses"] = {"after": 9}
    result = ctk(ctk.experiment([cordon, uncordon]))
    (step,) = ctk.load(result).spec.method
    assert step.for_ == timedelta(seconds=4)


@pytest.mark.parametrize(
    "func", ["kill_microservice", "remove_service_endpoint", "start_microservice"]
)
def test_actions_without_an_aftershock_fault_are_kept_as_comments(ctk, func) -> None:
    result = ctk(ctk.experiment([ctk.python("chaosk8s.actions", func, name="x", name_="y")]))
    assert any(
        f"chaosk8s.actions.{func} has no aftershock fault" in m for m in ctk.messages(result)
    )
    assert f"#     func: {func}" in result.yaml


def test_provider_secrets_are_reported(ctk) -> None:
    action = ctk.python(POD, "terminate_pods", label_selector="a=b")
    action["provider"]["secrets"] = ["k8s"]
    result = ctk(ctk.experiment([action]))
    assert any("provider secrets are not used" in m for m in ctk.messages(result))
