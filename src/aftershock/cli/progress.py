"""Live progress of a run in the terminal, fed by the engine's events."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from aftershock.ports import Event

__all__ = ["Progress"]


@dataclass
class _ProbeState:
    last_ok: bool | None = None
    last_latency: float | None = None
    recent: deque[bool] = field(default_factory=lambda: deque(maxlen=20))


class Progress:
    """An ``EventSink`` that keeps the run's state and renders it.

    On a terminal it is shown with ``rich.live.Live``; otherwise ``plain`` lines
    are printed for phases, faults and the verdict only (logs stay readable).
    """

    def __init__(self, console: Console, experiment: str) -> None:
        self.console = console
        self.experiment = experiment
        self.started = time.monotonic()
        self.phase = "starting"
        self.faults: dict[str, str] = {}
        self.probes: dict[str, _ProbeState] = {}
        self.notes: list[str] = []
        self.live = console.is_terminal

    def emit(self, event: Event) -> None:
        """Update the state; print a plain line for notable events when not live."""
        f = event.fields
        line: str | None = None
        if event.kind == "phase":
            self.phase = str(f["phase"])
            line = f"phase: {self.phase}"
        elif event.kind == "sample":
            state = self.probes.setdefault(str(f["probe"]), _ProbeState())
            state.last_ok = bool(f["ok"])
            state.last_latency = float(f["latency"])
            state.recent.append(bool(f["ok"]))
        elif event.kind == "fault.injected":
            self.faults[str(f["step"])] = f"{f['fault']} on {f['target']}"
            line = f"injected {f['step']}: {f['fault']} on {', '.join(map(str, f['resources']))}"
        elif event.kind == "fault.reverted":
            self.faults.pop(str(f["step"]), None)
            line = f"reverted {f['step']}"
        elif event.kind == "healer.action":
            line = (
                f"healer: {f.get('playbook')} ran {f.get('action')} "
                f"on {f.get('target')}: {f.get('outcome')}"
            )
            self.notes.append(line)
        elif event.kind == "incident.closed" and f.get("mttr_seconds") is not None:
            line = f"healed {f.get('target')}: MTTR {float(f['mttr_seconds']):.2f}s"
            self.notes.append(line)
        elif event.kind in ("abort", "recovered", "fault.revert_failed", "dry-run", "steady-state"):
            line = f"{event.kind}: " + ", ".join(f"{k}={v}" for k, v in f.items())
            self.notes.append(line)
        if line and not self.live:
            # Fields carry backend errors and process output: never markup or emoji codes.
            self.console.print(Text(line), highlight=False)

    def render(self) -> RenderableType:
        """The current state as a small panel."""
        elapsed = time.monotonic() - self.started
        head = Text.assemble(
            ("aftershock ", "bold"),
            (self.experiment, "bold cyan"),
            f"  phase {self.phase}  elapsed {elapsed:5.1f}s",
        )
        table = Table(box=None, show_header=True, header_style="dim")
        table.add_column("probe")
        table.add_column("last")
        table.add_column("latency", justify="right")
        table.add_column("recent")
        for name, state in sorted(self.probes.items()):
            last = (
                Text("-")
                if state.last_ok is None
                else (Text("ok", "green") if state.last_ok else Text("fail", "red"))
            )
            latency = "-" if state.last_latency is None else f"{state.last_latency * 1000:.0f}ms"
            strip = Text.assemble(*(("▮", "green" if ok else "red") for ok in state.recent))
            table.add_row(Text(name), last, Text(latency), strip)
        faults = Text(
            "active faults: " + (", ".join(f"{k} ({v})" for k, v in self.faults.items()) or "none")
        )
        return Group(head, faults, table, *[Text(n, style="yellow") for n in self.notes[-3:]])
