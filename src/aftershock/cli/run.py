"""``aftershock run``, ``report``, ``history``, ``recover`` and ``lever``."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from aftershock import runtime
from aftershock.cli.progress import Progress
from aftershock.engine.runner import Runner
from aftershock.errors import AftershockError, BudgetExhausted, ExperimentInvalid
from aftershock.journal.ledger import Ledger
from aftershock.journal.report import load_run, render_junit, write_report
from aftershock.loading import load_file
from aftershock.loading.loader import policy_path
from aftershock.model.experiment import Experiment
from aftershock.model.policy import HealingPolicy
from aftershock.model.results import RunResult
from aftershock.settings import Settings, load_settings

__all__ = ["history", "lever", "recover", "report", "run"]

EXIT_INVALID = 2
EXIT_ABORTED = 3
EXIT_ERRORED = 4


def settings_or_exit() -> Settings:
    """The controller settings, or exit 2 with the one-line reason."""
    try:
        return load_settings()
    except AftershockError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from None


def load_policy(experiment: Experiment, source: Path, settings: Settings) -> HealingPolicy | None:
    """The healing policy an experiment names (``healingPolicy``, relative to its file)."""
    if experiment.spec.healing_policy is None:
        return None
    path = policy_path(source, experiment.spec.healing_policy)
    try:
        documents = load_file(path, allowlist=settings.allow)
    except ExperimentInvalid as exc:
        for problem in exc.problems:
            typer.echo(str(problem))
        raise typer.Exit(EXIT_INVALID) from None
    policies = [d.document for d in documents if isinstance(d.document, HealingPolicy)]
    if len(policies) != 1:
        typer.echo(f"{path}: expected one HealingPolicy, found {len(policies)}", err=True)
        raise typer.Exit(EXIT_INVALID)
    return policies[0]


def _experiment(path: Path, name: str | None, settings: Settings) -> Experiment:
    try:
        documents = load_file(path, allowlist=settings.allow)
    except ExperimentInvalid as exc:
        for problem in exc.problems:
            typer.echo(str(problem))
        raise typer.Exit(EXIT_INVALID) from None
    experiments = [d.document for d in documents if isinstance(d.document, Experiment)]
    if name is not None:
        experiments = [e for e in experiments if e.metadata.name == name]
    if len(experiments) != 1:
        found = ", ".join(e.metadata.name for e in experiments) or "none"
        typer.echo(f"{path}: expected one Experiment (use --name); found: {found}", err=True)
        raise typer.Exit(EXIT_INVALID)
    return experiments[0]


def summary(console: Console, result: RunResult, journal: Path) -> None:
    """The one-screen summary at the end of a run."""
    colour = {"passed": "green", "failed": "red", "aborted": "yellow"}.get(
        result.status.value, "magenta"
    )
    console.print(
        f"[bold {colour}]{result.status.value.upper()}[/] {result.experiment}: {result.reason}"
    )
    table = Table(box=None, show_header=False)
    table.add_column(style="dim")
    table.add_column()
    if result.recovery_seconds is not None:
        limit = f" (limit {result.recover_within:g}s)" if result.recover_within else ""
        table.add_row("recovery", f"{result.recovery_seconds:.2f}s{limit}")
    for budget in result.budgets:
        table.add_row(
            f"budget {budget.slo}",
            f"spent {budget.spent:.3%} of the window's budget, burn rate {budget.burn_rate:.1f}",
        )
    for check in result.checks:
        mark = "[green]held[/]" if check.ok else "[red]broken[/]"
        table.add_row(f"steady {check.phase} {check.probe}", f"{mark} {'; '.join(check.failures)}")
    for fault in result.faults:
        state = "reverted" if fault.reverted_at else f"[red]NOT reverted[/] {fault.error or ''}"
        table.add_row(
            f"fault {fault.step}", f"{fault.fault} on {', '.join(fault.resources)}: {state}"
        )
    if result.healing is not None and result.healing.fired:
        h = result.healing
        table.add_row(
            "healer",
            f"{h.playbook} acted after {h.first_action_after or 0:.2f}s, "
            f"healthy after {h.healthy_after or 0:.2f}s",
        )
    for note in result.notes:
        table.add_row("note", note)
    table.add_row("journal", str(journal))
    console.print(table)


def run(
    file: Annotated[Path, typer.Argument(help="An experiment file.")],
    name: Annotated[
        str | None, typer.Option(help="Which experiment, if the file holds several.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Resolve targets and print; touch nothing.")
    ] = False,
    report_dir: Annotated[
        Path | None, typer.Option("--report", help="Write the HTML and Markdown report here.")
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write a JUnit XML file.")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed for reproducible target selection.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Skip the budget gate (recorded).")
    ] = False,
) -> None:
    """Run one experiment (exit 0 passed, 1 failed, 2 invalid, 3 aborted, 4 errored, 130 halt)."""
    settings = settings_or_exit()
    experiment = _experiment(file, name, settings)
    policy = load_policy(experiment, file, settings)
    console = Console()
    outcome = execute(
        console, experiment, policy, settings, seed=seed, dry_run=dry_run, force=force
    )
    if dry_run:
        for note in outcome.result.notes:
            console.print(note, markup=False)
    if report_dir is not None or junit is not None:
        view = load_run(outcome.journal)
        if report_dir is not None:
            paths = write_report(view, report_dir)
            console.print(f"report: {paths['html']}")
        if junit is not None:
            junit.parent.mkdir(parents=True, exist_ok=True)
            junit.write_text(render_junit(view), encoding="utf-8")
            console.print(f"junit: {junit}")
    raise typer.Exit(outcome.result.status.exit_code)


def execute(
    console: Console,
    experiment: Experiment,
    policy: HealingPolicy | None,
    settings: Settings,
    *,
    seed: int | None = None,
    dry_run: bool = False,
    force: bool = False,
) -> runtime.RunOutcome:
    """Run with live progress and SIGINT/SIGTERM handling; print the summary; map errors."""
    progress = Progress(console, experiment.metadata.name)

    async def main() -> runtime.RunOutcome:
        loop = asyncio.get_running_loop()
        runners: list[Runner] = []

        def stop() -> None:
            for r in runners:
                r.interrupt()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        return await runtime.run_experiment(
            experiment,
            settings=settings,
            seed=seed,
            dry_run=dry_run,
            force=force,
            events=progress,
            policy=policy,
            on_runner=runners.append,
        )

    try:
        if progress.live:
            with Live(
                progress.render(), console=console, refresh_per_second=4, transient=True
            ) as live:
                outcome = asyncio.run(_refreshing(main(), live, progress))
        else:
            outcome = asyncio.run(main())
    except BudgetExhausted as exc:
        console.print(f"[yellow]refused[/]: {exc}")
        raise typer.Exit(EXIT_ABORTED) from None
    except AftershockError as exc:
        console.print(f"[red]error[/]: {exc}", markup=True)
        raise typer.Exit(EXIT_ERRORED) from None
    summary(console, outcome.result, outcome.journal)
    return outcome


async def _refreshing(
    coro: Coroutine[Any, Any, runtime.RunOutcome], live: Live, progress: Progress
) -> runtime.RunOutcome:
    task = asyncio.ensure_future(coro)
    while not task.done():
        live.update(progress.render())
        await asyncio.wait({task}, timeout=0.25)
    return task.result()


def report(
    journal: Annotated[Path, typer.Argument(help="A run journal (.jsonl).")],
    out: Annotated[Path, typer.Option(help="Directory for report.html and summary.md.")] = Path(
        "report"
    ),
    junit: Annotated[Path | None, typer.Option(help="Also write JUnit XML here.")] = None,
) -> None:
    """Re-render the report of a run from its journal."""
    if not journal.is_file():
        typer.echo(f"error: {journal}: no such journal", err=True)
        raise typer.Exit(EXIT_INVALID)
    view = load_run(journal)
    paths = write_report(view, out)
    typer.echo(str(paths["html"]))
    if junit is not None:
        junit.write_text(render_junit(view), encoding="utf-8")


def history(
    weeks: Annotated[int, typer.Option(help="How many weeks back.")] = 8,
) -> None:
    """Runs, budget spend and recovery times per experiment, week over week."""
    from datetime import UTC, datetime

    settings = settings_or_exit()
    ledger = Ledger(settings.home / "ledger.sqlite3")
    rows = ledger.history(weeks, datetime.now(UTC))
    table = Table(title="aftershock history")
    columns = (
        "week",
        "experiment",
        "runs",
        "passed",
        "failed",
        "aborted",
        "errored",
        "forced",
        "budget spent",
        "median recovery",
        "max recovery",
    )
    for column in columns:
        table.add_column(column)

    def secs(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}s"

    for row in rows:
        table.add_row(
            row.week,
            row.experiment,
            str(row.runs),
            str(row.passed),
            str(row.failed),
            str(row.aborted),
            str(row.errored),
            str(row.forced),
            f"{row.budget_spent:.3%}",
            secs(row.recovery_median),
            secs(row.recovery_max),
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # piped output: never squeeze names into ellipses
    console.print(table)


def recover() -> None:
    """Revert every journaled fault that has no revert record."""
    settings = settings_or_exit()
    report_ = asyncio.run(runtime.recover(settings))
    console = Console()
    for action in report_.actions:
        mark = "[green]reverted[/]" if action.ok else "[red]failed[/]"
        console.print(
            f"{mark} {action.run_id} {action.key} ({action.fault} on {action.target}): "
            f"{action.message}"
        )
    for key in report_.skipped_live:
        console.print(f"[yellow]skipped[/] {key}: its run is still alive")
    for problem in report_.problems:
        console.print(f"[yellow]journal problem[/] {problem}")
    if not report_.actions:
        console.print("nothing to recover")
    if any(not a.ok for a in report_.actions):
        raise typer.Exit(EXIT_ERRORED)


def lever(
    action: Annotated[str, typer.Argument(help="engage or release")],
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "",
) -> None:
    """The kill switch: engage stops running experiments and refuses new ones."""
    settings = settings_or_exit()
    if action not in ("engage", "release", "status"):
        typer.echo("error: expected engage, release or status", err=True)
        raise typer.Exit(EXIT_INVALID)
    if action != "status":
        runtime.set_lever(settings, engaged=action == "engage", reason=reason)
    typer.echo("engaged" if runtime.lever_engaged(settings) else "released")
