"""chaostoolkit-kubernetes (``chaosk8s``) pod, deployment and node actions as Kubernetes faults.

``terminate_pods`` keeps its selection: ``all`` → ``mode: all``, ``mode:
percentage`` → ``percent:N``, ``qty`` N → ``fixed:N`` (1 → ``one``). Without a
label selector it selects every pod of the namespace, as ``chaosk8s`` does.
aftershock draws the pods at random (reproducibly with ``--seed``), where
``chaosk8s`` without ``rand`` takes the first ones by name: the same pods
whenever all are taken. A ``name_pattern`` has no aftershock equivalent, and
dropping it would widen the selection, so such a step is not translated.
"""

from __future__ import annotations

from typing import Any, Final

from aftershock.importing.context import Activity, Context, slug
from aftershock.importing.steps import Fault, Handler, NotTranslated, Phase, Translation, Undo
from aftershock.model.faults import K8S_CORDON, K8S_DELETE_POD, K8S_ROLLOUT_RESTART, K8S_SCALE

__all__ = ["HANDLERS"]

POD: Final = "chaosk8s.pod.actions"
DEPLOYMENT: Final = "chaosk8s.deployment.actions"
STATEFULSET: Final = "chaosk8s.statefulset.actions"
NODE: Final = "chaosk8s.node.actions"
LEGACY: Final = "chaosk8s.actions"


def _arg(act: Activity, name: str) -> tuple[Any, tuple[str | int, ...]]:
    return act.arguments.get(name), (*act.path, "provider", "arguments", name)


def _text(ctx: Context, act: Activity, name: str, default: str | None = None) -> str | None:
    value, path = _arg(act, name)
    if value is None:
        return default
    text = ctx.text(value, path)
    if text == "" and default != "":
        ctx.warn(path, f"{name} is empty")
        return None
    return text


def _count(ctx: Context, act: Activity, name: str, default: int) -> int | None:
    value, path = _arg(act, name)
    if value is None:
        return default

    def convert(v: object) -> int:
        if isinstance(v, bool) or not isinstance(v, int | float | str) or float(v) != int(float(v)):
            raise ValueError(f"{name} must be a whole number, got {v!r}")
        return int(float(v))

    result: int | None = ctx.value(value, path, convert)
    return result


def _flag(act: Activity, name: str) -> bool:
    return act.arguments.get(name) is True


def _mode(ctx: Context, act: Activity) -> str | NotTranslated:
    if _flag(act, "all"):
        return "all"
    qty = _count(ctx, act, "qty", 1)
    if qty is None:
        return NotTranslated("qty cannot be translated")
    mode = act.arguments.get("mode", "fixed")
    if mode == "percentage":
        if not 1 <= qty <= 100:
            return NotTranslated(f"a percentage of {qty} selects no pod or more than all")
        return f"percent:{qty}"
    if mode != "fixed":
        return NotTranslated(f"selection mode {mode!r} is neither fixed nor percentage")
    return _fixed(qty)


def _fixed(qty: int) -> str | NotTranslated:
    if qty < 1:
        return NotTranslated("qty 0 terminates no pod")
    return "one" if qty == 1 else f"fixed:{qty}"


def _terminate_pods(ctx: Context, act: Activity, phase: Phase) -> Translation:
    if act.arguments.get("name_pattern") not in (None, ""):
        return NotTranslated(
            "name_pattern has no aftershock equivalent (a kubernetes target selects by labels "
            "or by kind and name); without it the step would select more pods"
        )
    if act.arguments.get("order", "alphabetic") == "oldest":
        ctx.warn(
            _arg(act, "order")[1],
            "order: oldest is not translated; aftershock picks pods at random (use --seed)",
        )
    mode = _mode(ctx, act)
    if isinstance(mode, NotTranslated):
        return mode
    namespace = _text(ctx, act, "ns", "default")
    selector = _text(ctx, act, "label_selector", "")
    if namespace is None or selector is None:
        return NotTranslated("the namespace or the label selector cannot be translated")
    spec = {"kubernetes": {"namespace": namespace, "selector": selector, "mode": mode}}
    target = ctx.target(f"pods-{slug(selector, 'all')}", spec)
    params: dict[str, Any] = {}
    grace = _count(ctx, act, "grace_period", -1)
    if grace is not None and grace >= 0:
        params["grace"] = f"{grace}s"
    notes = ["deletes pods; their owner replaces them (nothing to revert)"]
    if not selector:
        notes.append("no label_selector: every pod in the namespace, as in Chaos Toolkit")
    return [Fault(act.name, K8S_DELETE_POD.name, target, params, instant=True, notes=tuple(notes))]


def _workload(ctx: Context, act: Activity, kind: str) -> str | None:
    name = _text(ctx, act, "name")
    namespace = _text(ctx, act, "ns", "default")
    if name is None or namespace is None:
        ctx.warn((*act.path, "provider", "arguments"), f"the {kind} name or namespace is missing")
        return None
    spec = {"kubernetes": {"namespace": namespace, "kind": kind, "name": name}}
    return ctx.target(f"{kind.lower()}-{slug(name, 'workload')}", spec)


def _scale(kind: str) -> Handler:
    def handle(ctx: Context, act: Activity, phase: Phase) -> Translation:
        target = _workload(ctx, act, kind)
        replicas = _count(ctx, act, "replicas", -1)
        if target is None or replicas is None or replicas < 0:
            return NotTranslated(f"the {kind} or its replicas cannot be translated")
        note = "aftershock scales back to the recorded replica count when the step ends"
        return [
            Fault(
                act.name,
                K8S_SCALE.name,
                target,
                {"replicas": replicas},
                key=("scale", target),
                notes=(note,),
            )
        ]

    return handle


def _rollout(ctx: Context, act: Activity, phase: Phase) -> Translation:
    target = _workload(ctx, act, "Deployment")
    if target is None:
        return NotTranslated("the deployment cannot be translated")
    note = "restarts the deployment's pods by rollout (nothing to revert)"
    return [Fault(act.name, K8S_ROLLOUT_RESTART.name, target, instant=True, notes=(note,))]


def _nodes(ctx: Context, act: Activity, *, count: bool) -> str | NotTranslated:
    name = _text(ctx, act, "name")
    selector = _text(ctx, act, "label_selector")
    spec: dict[str, Any] = {"kind": "Node"}
    if name and not selector:
        spec["name"] = name
        base = f"node-{slug(name, 'node')}"
    else:
        if name:
            return NotTranslated("a node name together with a label selector is not translated")
        spec["selector"] = selector or ""
        mode = "all"
        if count:
            number = _count(ctx, act, "count", 0)
            if number is None:
                return NotTranslated("count cannot be translated")
            if number > 0:
                mode = "one" if number == 1 else f"fixed:{number}"
        spec["mode"] = mode
        base = f"nodes-{slug(selector or '', 'all')}"
    return ctx.target(base, {"kubernetes": spec})


def _cordon(ctx: Context, act: Activity, phase: Phase) -> Translation:
    target = _nodes(ctx, act, count=False)
    if isinstance(target, NotTranslated):
        return target
    note = "nodes are marked unschedulable; aftershock uncordons them when the step ends"
    return [Fault(act.name, K8S_CORDON.name, target, key=("cordon", target), notes=(note,))]


def _drain(ctx: Context, act: Activity, phase: Phase) -> Translation:
    if act.arguments.get("pod_label_selector"):
        return NotTranslated("selecting nodes by the pods they run is not translated")
    target = _nodes(ctx, act, count=True)
    if isinstance(target, NotTranslated):
        return target
    ctx.warn(
        act.path,
        "drain_nodes is translated as k8s.cordon only: aftershock does not evict the pods",
    )
    note = "drain = cordon + evict; only the cordon is translated (reverted by uncordon)"
    return [Fault(act.name, K8S_CORDON.name, target, key=("cordon", target), notes=(note,))]


def _uncordon(ctx: Context, act: Activity, phase: Phase) -> Translation:
    target = _nodes(ctx, act, count=False)
    if isinstance(target, NotTranslated):
        return target
    return Undo((("cordon", target),), "uncordons the nodes")


HANDLERS: Final[dict[tuple[str, str], Handler]] = {
    (POD, "terminate_pods"): _terminate_pods,
    (DEPLOYMENT, "scale_deployment"): _scale("Deployment"),
    (DEPLOYMENT, "rollout_deployment"): _rollout,
    (STATEFULSET, "scale_statefulset"): _scale("StatefulSet"),
    (LEGACY, "scale_microservice"): _scale("Deployment"),
    (NODE, "cordon_node"): _cordon,
    (NODE, "uncordon_node"): _uncordon,
    (NODE, "drain_nodes"): _drain,
}
"""(module, function) → translation, for the chaostoolkit-kubernetes actions aftershock has."""
