"""Shared builders for the healer tests: a policy from a few overrides, and a harness."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Mapping
from typing import Any

from aftershock.healer import Escalation, Healer, StateStore
from aftershock.model.actions import ActionStepBase
from aftershock.model.policy import HealingPolicy
from aftershock.model.targets import TargetKind
from aftershock.ports import ActionRequest
from aftershock.testing import CapturedEvents, FakeDriver, FakeProbe, ManualClock

RESTART = {"action": "process.restart", "target": "api"}


def wait_healthy(within: str = "5s", **extra: Any) -> dict[str, Any]:
    return {"action": "wait.healthy", "with": {"probe": "web", "within": within}, **extra}


def playbook(
    name: str = "restart-api",
    *,
    steps: list[dict[str, Any]] | None = None,
    probe: str = "web",
    max_attempts: int = 100,
    initial: str = "5s",
    factor: float = 2,
    cap: str = "1m",
    jitter: float = 0,
    cooldown: str = "10m",
    on_failure: str = "escalate",
    for_: str = "0s",
) -> dict[str, Any]:
    return {
        "name": name,
        "when": {"unhealthy": probe, "for": for_},
        "steps": steps if steps is not None else [RESTART, wait_healthy()],
        "limits": {
            "maxAttempts": max_attempts,
            "backoff": {"initial": initial, "factor": factor, "max": cap, "jitter": jitter},
            "cooldown": cooldown,
        },
        "onFailure": on_failure,
    }


def policy(
    *playbooks: dict[str, Any],
    breaker: tuple[int, str] = (100, "30m"),
    budget: tuple[int, str] = (1000, "1h"),
    dry_run: bool = False,
    watches: Mapping[str, str] | None = None,
    name: str = "checkout",
    **spec: Any,
) -> HealingPolicy:
    """A policy with a process target ``api`` (watched by ``web``) and the given playbooks."""
    watches = watches or {"web": "api"}
    data: dict[str, Any] = {
        "apiVersion": "aftershock.dev/v1alpha1",
        "kind": "HealingPolicy",
        "metadata": {"name": name},
        "spec": {
            "targets": {
                target: {"process": {"command": ["sleep", "100"]}}
                for target in {"api", *watches.values()}
            },
            "watch": {
                probe: {
                    "http": {"url": "http://127.0.0.1:8080/health"},
                    "every": "1s",
                    "unhealthyAfter": 3,
                    "healthyAfter": 2,
                    "target": target,
                }
                for probe, target in watches.items()
            },
            "playbooks": list(playbooks) or [playbook()],
            "breaker": {"failures": breaker[0], "reset": breaker[1]},
            "disruptionBudget": {"max": budget[0], "per": budget[1]},
            "dryRun": dry_run,
            **copy.deepcopy(spec),
        },
    }
    return HealingPolicy.model_validate(data)


class Harness:
    """A healer over fakes on a manual clock, recording when each action ran."""

    def __init__(
        self,
        doc: HealingPolicy,
        health: Callable[[float], bool] | Mapping[str, Callable[[float], bool]],
        *,
        handler: Callable[[str, Any], Any] | None = None,
        store: StateStore | None = None,
        clock: ManualClock | None = None,
        rng: random.Random | None = None,
        standalone: Mapping[str, Callable[[ActionStepBase], Any]] | None = None,
        fault_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.clock = clock or ManualClock()
        self.events = CapturedEvents()
        self.acts: list[tuple[float, str, str]] = []
        self.escalations: list[Escalation] = []
        self._handler = handler
        self.driver = FakeDriver(TargetKind.PROCESS, self._act)
        healths = health if isinstance(health, Mapping) else {"web": health}
        self.probes = {name: FakeProbe(h, self.clock) for name, h in healths.items()}
        self.healer = Healer(
            doc,
            probes=self.probes,
            actions={TargetKind.PROCESS: self.driver},
            standalone=standalone,
            clock=self.clock,
            events=self.events,
            store=store,
            escalate=self._escalate,
            rng=rng or random.Random(7),
            fault_of=fault_of,
        )

    def _act(self, op: str, request: Any) -> Any:
        if op == "act":
            assert isinstance(request, ActionRequest)
            self.acts.append((self.clock.monotonic(), request.action, request.target_name))
        if self._handler is not None:
            return self._handler(op, request)
        return None

    async def _escalate(self, record: Escalation) -> None:
        self.escalations.append(record)

    def act_times(self, target: str | None = None) -> list[float]:
        return [round(t, 6) for t, _, name in self.acts if target in {None, name}]

    def decisions(self, *kinds: str) -> list[str]:
        return [
            e.fields["decision"]
            for e in self.events.of("healer.decision")
            if not kinds or e.fields["decision"] in kinds
        ]

    def fields(self, kind: str, **match: Any) -> list[Mapping[str, Any]]:
        return [
            e.fields
            for e in self.events.of(kind)
            if all(e.fields.get(k) == v for k, v in match.items())
        ]

    async def run_for(self, seconds: float, step: float = 60.0) -> None:
        """Advance the clock in chunks while the healer runs (it must be started)."""
        remaining = seconds
        while remaining > 0:
            chunk = min(step, remaining)
            await self.clock.advance(chunk)
            remaining -= chunk
