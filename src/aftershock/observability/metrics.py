"""Prometheus metrics fed by events: watch states, remediations, MTTR, probe latency.

Each daemon owns a ``CollectorRegistry`` (no process-global state), so several
healers and tests can live in one process.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Final

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from aftershock.ports import Event, EventSink, Probe, ProbeResult

__all__ = ["CONTENT_TYPE", "FanOut", "HealerMetrics", "MeteredProbe"]

_log = structlog.get_logger("aftershock.events")

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_STATES: Final = ("healthy", "suspect", "unhealthy", "remediating", "recovering", "escalated")


class HealerMetrics:
    """An ``EventSink`` that keeps the healer's Prometheus metrics."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.state = Gauge(
            "aftershock_watch_state",
            "1 for the current state of each watched probe.",
            ["policy", "probe", "target", "state"],
            registry=r,
        )
        self.actions = Counter(
            "aftershock_healer_actions_total",
            "Remediation steps run, by outcome.",
            ["policy", "playbook", "action", "outcome"],
            registry=r,
        )
        self.remediations = Counter(
            "aftershock_remediations_total",
            "Remediation attempts, by outcome.",
            ["policy", "playbook", "outcome"],
            registry=r,
        )
        self.decisions = Counter(
            "aftershock_healer_decisions_total",
            "Healer decisions (act, throttled, ...).",
            ["policy", "decision"],
            registry=r,
        )
        self.escalations = Counter(
            "aftershock_escalations_total", "Escalations sent.", ["policy", "reason"], registry=r
        )
        self.mttr = Histogram(
            "aftershock_mttr_seconds",
            "Time from detection to healthy again, per incident.",
            ["policy", "target", "fault"],
            registry=r,
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
        )
        self.probe_latency = Histogram(
            "aftershock_probe_latency_seconds",
            "Latency of every probe sample.",
            ["probe", "ok"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.probe_lag = Histogram(
            "aftershock_probe_lag_seconds",
            "How late each probe sample started against its tick: waiting for a turn"
            " when the process has more to sample than it can serve.",
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

    def emit(self, event: Event) -> None:
        """Update the metrics an event speaks for; unknown kinds are ignored."""
        f = event.fields
        policy = str(f.get("policy", ""))
        playbook, outcome = str(f.get("playbook", "")), str(f.get("outcome", ""))
        if event.kind == "watch.transition":
            self.watch_state(policy, str(f.get("probe", "")), f.get("target"), str(f.get("to")))
        elif event.kind == "healer.action":
            self.actions.labels(policy, playbook, str(f.get("action", "")), outcome).inc()
        elif event.kind == "healer.outcome":
            self.remediations.labels(policy, playbook, outcome).inc()
        elif event.kind == "healer.decision":
            self.decisions.labels(policy, str(f.get("decision", ""))).inc()
        elif event.kind == "healer.escalated":
            self.escalations.labels(policy, str(f.get("reason", ""))).inc()
        elif event.kind == "incident.closed" and f.get("mttr_seconds") is not None:
            self.mttr.labels(policy, str(f.get("target") or ""), str(f.get("fault") or "")).observe(
                float(f["mttr_seconds"])
            )

    def watch_state(self, policy: str, probe: str, target: object, current: str) -> None:
        """Set one watch's state series: 1 for ``current``, 0 for every other state.

        Called for every watch when a healer starts, so each has samples before
        its first transition, and again on every ``watch.transition``.
        """
        labels = (policy, probe, str(target or ""))
        for state in _STATES:
            self.state.labels(*labels, state).set(1.0 if current == state else 0.0)

    def observe_sample(self, probe: str, result: ProbeResult) -> None:
        """Record one probe sample's latency."""
        self.probe_latency.labels(probe, "true" if result.ok else "false").observe(result.latency)

    def observe_lag(self, seconds: float) -> None:
        """Record how late one sample started (``SampleGate.on_lag``)."""
        self.probe_lag.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)


class MeteredProbe:
    """A probe that records every sample's latency in ``HealerMetrics``."""

    def __init__(self, probe: Probe, name: str, metrics: HealerMetrics) -> None:
        self.probe = probe
        self.name = name
        self.metrics = metrics

    async def check(self) -> ProbeResult:
        """Sample the wrapped probe and record its latency."""
        result = await self.probe.check()
        self.metrics.observe_sample(self.name, result)
        return result

    async def aclose(self) -> None:
        """Close the wrapped probe."""
        await self.probe.aclose()


class FanOut:
    """An ``EventSink`` that forwards every event to each of its sinks, in order.

    A sink that raises does not stop the others, and it is not silent either:
    the first error of each type from each sink is logged with its traceback
    (``event sink failed``); repeats of it are counted in ``failures`` but not
    logged again, so a sink broken for good cannot flood the log.
    """

    def __init__(self, sinks: Sequence[EventSink]) -> None:
        self.sinks = tuple(sinks)
        self.failures: collections.Counter[tuple[int, type[Exception]]] = collections.Counter()
        """Errors so far by (index of the sink, exception type)."""

    def emit(self, event: Event) -> None:
        """Forward the event to every sink; report a failing sink and go on."""
        for index, sink in enumerate(self.sinks):
            try:
                sink.emit(event)
            except Exception as exc:  # noqa: BLE001 - observability must never break healing
                self._failed(index, sink, event, exc)

    def _failed(self, index: int, sink: EventSink, event: Event, exc: Exception) -> None:
        key = (index, type(exc))
        self.failures[key] += 1
        if self.failures[key] == 1:
            _log.error(
                "event sink failed",
                sink=type(sink).__name__,
                kind=event.kind,
                run_id=event.run_id,
                error=repr(exc),
                exc_info=exc,
                note="further errors of this type from this sink are counted, not logged",
            )
