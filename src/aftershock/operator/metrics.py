"""The operator's Prometheus metrics, on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

__all__ = ["OperatorMetrics"]


class OperatorMetrics:
    """Leader status, scheduled experiments, running healers, runs by phase."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.leader = Gauge(
            "aftershock_operator_leader",
            "1 while this replica holds the lease and acts.",
            registry=self.registry,
        )
        self.scheduled = Gauge(
            "aftershock_operator_scheduled_experiments",
            "Experiments with a schedule held by this replica.",
            registry=self.registry,
        )
        self.healers = Gauge(
            "aftershock_operator_healers",
            "HealingPolicy daemons running in this replica.",
            registry=self.registry,
        )
        self.invalid = Counter(
            "aftershock_operator_invalid_resources",
            "Resources rejected by validation.",
            ["kind"],
            registry=self.registry,
        )
        self.runs = Counter(
            "aftershock_operator_runs",
            "Experiment runs started by the operator, by resulting phase.",
            ["phase"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
