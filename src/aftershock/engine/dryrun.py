"""A dry run: every step's driver prepares its fault and says what it would touch.

Nothing is injected: ``prepare`` resolves the target (selectors, allowlists, the
seeded choice of pods or containers) and the run lists the resources per step.
"""

from __future__ import annotations

from collections.abc import Callable

from aftershock.engine.context import RunContext
from aftershock.engine.plan import Verdict
from aftershock.errors import AftershockError
from aftershock.model.results import RunStatus

__all__ = ["dry_run"]


async def dry_run(ctx: RunContext, emit: Callable[..., None]) -> Verdict:
    """Prepare every step of ``ctx``'s method; ``emit("dry-run", ...)`` for each."""
    lines: list[str] = []
    for step in ctx.experiment.spec.method:
        target = ctx.experiment.spec.targets[step.target]
        driver = ctx.drivers.get(target.kind)
        if driver is None:
            return Verdict(RunStatus.ERRORED, f"{step.name}: no driver for {target.kind.value}")
        try:
            handle = await driver.prepare(ctx.fault_request(step))
        except AftershockError as exc:
            return Verdict(RunStatus.ERRORED, f"{step.name}: {exc}")
        lines.append(f"{step.name}: would apply {step.fault} to {', '.join(handle.resources)}")
        emit("dry-run", step=step.name, fault=step.fault, resources=list(handle.resources))
    return Verdict(RunStatus.PASSED, "dry run: nothing was touched", lines)
