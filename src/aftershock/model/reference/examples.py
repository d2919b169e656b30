"""The minimal examples of the reference: whole documents that ``aftershock validate`` accepts.

Each fault and action has one step here, each target kind and probe kind one
document; the pages print them and a test loads every example through the real
loader. A catalog entry without an example is an error when the docs are
generated, so a new fault or action cannot ship undocumented.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from aftershock.model import actions as a
from aftershock.model import faults as f
from aftershock.model.actions import ActionType
from aftershock.model.faults import FaultType
from aftershock.model.reference.writing import Data, document, slug
from aftershock.model.targets import TargetKind

__all__ = [
    "CHECK_EXAMPLES",
    "EXPERIMENT_EXAMPLE",
    "POLICY_EXAMPLE",
    "PROBE_EXAMPLES",
    "WATCH_EXAMPLE",
    "action_example",
    "fault_example",
    "target_example",
]

# ------------------------------------------------------------------ targets

_TARGETS: Final[dict[TargetKind, tuple[str, Data]]] = {
    TargetKind.TOXIPROXY: (
        "db",
        {"toxiproxy": {"api": "http://127.0.0.1:8474", "proxy": "postgres"}},
    ),
    TargetKind.DOCKER: ("api", {"docker": {"names": ["checkout-api"]}}),
    TargetKind.KUBERNETES: (
        "checkout",
        {"kubernetes": {"namespace": "shop", "kind": "Deployment", "name": "checkout"}},
    ),
    TargetKind.PROCESS: (
        "web",
        {
            "process": {
                "command": ["python3", "-m", "http.server", "8080", "--bind", "127.0.0.1"],
                "ready": "127.0.0.1:8080",
            }
        },
    ),
}
"""The target each fault or action of a kind acts on in its example."""

_NODE: Final = ("node", {"kubernetes": {"kind": "Node", "name": "worker-1"}})

_RICH_TARGETS: Final[dict[TargetKind, tuple[Data, str]]] = {
    TargetKind.TOXIPROXY: (
        {
            "toxiproxy": {
                "api": "embedded",
                "proxy": "postgres",
                "listen": "127.0.0.1:15432",
                "upstream": "127.0.0.1:5432",
            }
        },
        f.TOXIPROXY_LATENCY.name,
    ),
    TargetKind.DOCKER: (
        {"docker": {"labels": {"app": "checkout"}, "pattern": "^checkout-", "pick": "50%"}},
        f.DOCKER_KILL.name,
    ),
    TargetKind.KUBERNETES: (
        {"kubernetes": {"namespace": "shop", "selector": "app=checkout", "mode": "percent:30"}},
        f.K8S_DELETE_POD.name,
    ),
    TargetKind.PROCESS: (_TARGETS[TargetKind.PROCESS][1], f.PROCESS_KILL.name),
}
"""Per kind, a target using more of its fields, and the fault its example applies."""

# ------------------------------------------------------------------ faults

_FAULT_STEPS: Final[dict[str, Data]] = {
    f.TOXIPROXY_LATENCY.name: {"name": "slow-db", "with": {"latency": "300ms"}, "for": "60s"},
    f.TOXIPROXY_BANDWIDTH.name: {"name": "throttle-db", "with": {"rate": 64}, "for": "60s"},
    f.TOXIPROXY_SLOW_CLOSE.name: {"name": "linger-db", "with": {"delay": "2s"}, "for": "60s"},
    f.TOXIPROXY_TIMEOUT.name: {"name": "hang-db", "with": {"timeout": "5s"}, "for": "30s"},
    f.TOXIPROXY_RESET_PEER.name: {"name": "reset-db", "for": "30s"},
    f.TOXIPROXY_SLICER.name: {"name": "slice-db", "with": {"averageSize": 64}, "for": "60s"},
    f.TOXIPROXY_LIMIT_DATA.name: {"name": "cut-db", "with": {"bytes": 4096}, "for": "60s"},
    f.TOXIPROXY_DOWN.name: {"name": "db-outage", "for": "30s"},
    f.DOCKER_KILL.name: {"name": "kill-api"},
    f.DOCKER_CRASH.name: {"name": "crash-api", "with": {"signal": "SIGSEGV"}},
    f.DOCKER_STOP.name: {"name": "stop-api", "for": "60s"},
    f.DOCKER_PAUSE.name: {"name": "freeze-api", "for": "30s"},
    f.DOCKER_RESTART.name: {"name": "restart-api", "with": {"grace": "5s"}},
    f.K8S_DELETE_POD.name: {"name": "delete-pod"},
    f.K8S_SCALE.name: {"name": "scale-to-zero", "with": {"replicas": 0}, "for": "2m"},
    f.K8S_ROLLOUT_RESTART.name: {"name": "rollout-restart"},
    f.K8S_CORDON.name: {"name": "cordon-node", "for": "5m"},
    f.PROCESS_KILL.name: {"name": "kill-web", "with": {"signal": "SIGTERM"}},
    f.PROCESS_STOP.name: {"name": "freeze-web", "for": "30s"},
    f.PROCESS_RESTART.name: {"name": "restart-web"},
}
"""Each fault's step: what goes beside ``fault:`` and ``target:``."""

_NODE_FAULTS: Final = frozenset({f.K8S_CORDON.name})
_NODE_ACTIONS: Final = frozenset({a.K8S_UNCORDON.name})


def _missing(what: str, name: str) -> LookupError:
    return LookupError(
        f"{what} {name!r} has no example in aftershock.model.reference.examples; add one"
    )


def _fault_step(fault: FaultType[Any], target: str) -> dict[str, Any]:
    if fault.name not in _FAULT_STEPS:
        raise _missing("fault", fault.name)
    step = dict(_FAULT_STEPS[fault.name])
    return {"name": step.pop("name"), "fault": fault.name, "target": target, **step}


def fault_example(fault: FaultType[Any]) -> str:
    """A whole experiment whose method is one step of ``fault``."""
    name, target = _NODE if fault.name in _NODE_FAULTS else _TARGETS[fault.kind]
    spec = {"targets": {name: target}, "method": [_fault_step(fault, name)]}
    return document("Experiment", slug(fault.name), spec)


def target_example(kind: TargetKind, faults: Sequence[FaultType[Any]]) -> str:
    """A whole experiment with a target of ``kind`` written with more of its fields."""
    target, fault_name = _RICH_TARGETS[kind]
    name = _TARGETS[kind][0]
    fault = next(entry for entry in faults if entry.name == fault_name)
    spec = {"targets": {name: target}, "method": [_fault_step(fault, name)]}
    return document("Experiment", f"{kind.value}-target", spec)


# ------------------------------------------------------------------ actions

_WATCH: Final = {"http": {"url": "http://127.0.0.1:8080/health", "timeout": "500ms"}, "every": "1s"}

_ACTION_STEPS: Final[dict[str, Data]] = {
    a.DOCKER_START.name: {},
    a.DOCKER_RESTART.name: {"with": {"grace": "5s"}},
    a.DOCKER_UNPAUSE.name: {},
    a.PROCESS_START.name: {},
    a.PROCESS_RESTART.name: {},
    a.PROCESS_RESUME.name: {},
    a.TOXIPROXY_RESET.name: {},
    a.TOXIPROXY_ENABLE.name: {},
    a.TOXIPROXY_REMOVE_TOXIC.name: {"with": {"toxic": "latency_downstream"}},
    a.K8S_ROLLOUT_RESTART.name: {},
    a.K8S_DELETE_POD.name: {},
    a.K8S_SCALE.name: {"with": {"replicas": 3}},
    a.K8S_UNCORDON.name: {},
    a.HTTP_CALL.name: {"with": {"url": "http://127.0.0.1:9000/hooks/restart"}},
    a.COMMAND.name: {"with": {"command": ["systemctl", "restart", "checkout"]}, "timeout": "2m"},
    a.WAIT_HEALTHY.name: {"with": {"probe": "health", "within": "20s"}},
}
"""Each action's step: what goes beside ``action:`` (and ``target:`` for driver actions)."""


def action_example(action: ActionType[Any]) -> str:
    """A whole healing policy whose one playbook runs one step of ``action``."""
    if action.name not in _ACTION_STEPS:
        raise _missing("action", action.name)
    step: dict[str, Any] = {"action": action.name}
    spec: dict[str, Any] = {}
    watch = dict(_WATCH)
    if action.kind is not None:
        name, target = _NODE if action.name in _NODE_ACTIONS else _TARGETS[action.kind]
        spec["targets"] = {name: target}
        step["target"] = name
        watch["target"] = name
    step.update(_ACTION_STEPS[action.name])
    spec["watch"] = {"health": watch}
    spec["playbooks"] = [{"name": "recover", "when": {"unhealthy": "health"}, "steps": [step]}]
    return document("HealingPolicy", slug(action.name), spec)


# ------------------------------------------------------------------ probes and checks

_WEB: Final = {"web": _TARGETS[TargetKind.PROCESS][1]}
_FREEZE: Final = [
    {"name": "freeze-web", "fault": f.PROCESS_STOP.name, "target": "web", "for": "10s"}
]

_PROBES: Final[dict[str, tuple[Data, Data, str]]] = {
    "http": (
        {"http": {"url": "http://127.0.0.1:8080/", "timeout": "500ms", "status": [200]}},
        {"successRatio": ">= 0.99", "p95": "< 200ms"},
        "10s",
    ),
    "tcp": (
        {"tcp": {"address": "127.0.0.1:8080", "timeout": "200ms"}},
        {"successRatio": ">= 0.99"},
        "10s",
    ),
    "command": (
        {"command": {"command": ["curl", "-fsS", "http://127.0.0.1:8080/"]}, "every": "2s"},
        {"successRatio": ">= 0.9"},
        "10s",
    ),
    "prometheus": (
        {
            "prometheus": {
                "url": "http://127.0.0.1:9090",
                "query": 'sum(rate(http_requests_total{code=~"5.."}[1m]))',
                "expect": "< 0.5",
            },
            "every": "15s",
        },
        {"successRatio": ">= 0.9"},
        "30s",
    ),
}


def _probe_example(kind: str, probe: Data, tolerance: Data, over: str) -> str:
    spec = {
        "targets": _WEB,
        "probes": {"web": probe},
        "steadyState": [{"probe": "web", "over": over, "expect": tolerance}],
        "method": _FREEZE,
    }
    return document("Experiment", f"{kind}-probe", spec)


PROBE_EXAMPLES: Final[dict[str, str]] = {
    kind: _probe_example(kind, *parts) for kind, parts in _PROBES.items()
}
"""Probe kind → an experiment that samples one probe of that kind in its steady state."""

WATCH_EXAMPLE: Final = document(
    "HealingPolicy",
    "watch",
    {
        "targets": _WEB,
        "watch": {
            "web": {
                **_PROBES["http"][0],
                "every": "1s",
                "unhealthyAfter": 3,
                "healthyAfter": 2,
                "target": "web",
            }
        },
        "playbooks": [
            {
                "name": "revive-web",
                "when": {"unhealthy": "web", "for": "5s"},
                "steps": [{"action": a.PROCESS_START.name, "target": "web"}],
            }
        ],
    },
)
"""A policy that watches one probe with hysteresis."""

_WEB_PROBE: Final = {"web": {**_PROBES["http"][0], "every": "1s"}}

CHECK_EXAMPLES: Final[dict[str, str]] = {
    "steady-state": document(
        "Experiment",
        "steady-state",
        {
            "targets": _WEB,
            "probes": _WEB_PROBE,
            "steadyState": [
                {"probe": "web", "over": "10s", "expect": {"successRatio": ">= 99%"}},
                {"probe": "web", "over": "30s", "expect": {"p99": "< 500ms", "status": [200]}},
                {"probe": "web", "expect": {"body": {"regex": "Directory listing"}}},
            ],
            "method": _FREEZE,
        },
    ),
    "abort": document(
        "Experiment",
        "abort",
        {
            "targets": _WEB,
            "probes": _WEB_PROBE,
            "slo": {"web-availability": {"probe": "web", "objective": "99.5%", "window": "7d"}},
            "method": _FREEZE,
            "abort": [
                {"budget": "web-availability", "spentAbove": "5%"},
                {"probe": "web", "over": "15s", "expect": {"successRatio": "< 0.5"}},
            ],
        },
    ),
    "expect": document(
        "Experiment",
        "expect",
        {
            "targets": _WEB,
            "probes": _WEB_PROBE,
            "steadyState": [{"probe": "web", "over": "5s", "expect": {"successRatio": ">= 0.99"}}],
            "method": _FREEZE,
            "expect": {"recoverWithin": "30s"},
        },
    ),
}
"""Examples of steady-state checks, abort conditions and expectations."""

# ------------------------------------------------------------------ whole documents

EXPERIMENT_EXAMPLE: Final = document(
    "Experiment",
    "checkout-db-latency",
    {
        "description": "Checkout keeps its SLO while the database is 300 ms slower.",
        "schedule": {"cron": "0 3 * * MON", "timezone": "UTC", "jitter": "10m"},
        "targets": {
            "db": _TARGETS[TargetKind.TOXIPROXY][1],
            "api": {"docker": {"labels": {"app": "checkout"}, "pick": 1}},
        },
        "probes": {
            "checkout": {
                "http": {"url": "http://127.0.0.1:8080/health", "timeout": "500ms"},
                "every": "1s",
            }
        },
        "slo": {
            "checkout-availability": {
                "probe": "checkout",
                "objective": "99.9%",
                "latency": "250ms",
                "window": "28d",
            }
        },
        "steadyState": [
            {
                "probe": "checkout",
                "over": "10s",
                "expect": {"successRatio": ">= 0.99", "p95": "< 200ms"},
            }
        ],
        "method": [
            {
                "name": "slow-db",
                "fault": f.TOXIPROXY_LATENCY.name,
                "target": "db",
                "with": {"latency": "300ms", "jitter": "50ms"},
                "for": "60s",
            },
            {"name": "crash-api", "fault": f.DOCKER_KILL.name, "target": "api", "at": "20s"},
        ],
        "abort": [
            {"budget": "checkout-availability", "spentAbove": "5%"},
            {"probe": "checkout", "over": "15s", "expect": {"successRatio": "< 0.5"}},
        ],
        "expect": {"recoverWithin": "30s"},
        "budget": {"slo": "checkout-availability", "maxSpend": "2%"},
    },
)
"""An experiment using most of the language."""

POLICY_EXAMPLE: Final = document(
    "HealingPolicy",
    "checkout",
    {
        "targets": {"api": {"docker": {"labels": {"app": "checkout"}}}},
        "watch": {
            "checkout": {
                "http": {"url": "http://127.0.0.1:8080/health"},
                "every": "1s",
                "unhealthyAfter": 3,
                "healthyAfter": 2,
                "target": "api",
            }
        },
        "playbooks": [
            {
                "name": "restart-api",
                "when": {"unhealthy": "checkout"},
                "steps": [
                    {"action": a.DOCKER_RESTART.name, "target": "api"},
                    {"action": a.WAIT_HEALTHY.name, "with": {"probe": "checkout", "within": "20s"}},
                ],
                "limits": {
                    "maxAttempts": 3,
                    "backoff": {"initial": "5s", "factor": 2, "max": "5m"},
                    "cooldown": "10m",
                },
            }
        ],
        "escalate": {"webhook": {"url": "http://127.0.0.1:9000/alerts"}},
        "disruptionBudget": {"max": 5, "per": "1h"},
        "breaker": {"failures": 3, "reset": "30m"},
    },
)
"""A healing policy using most of the language."""
