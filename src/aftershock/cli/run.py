"""``aftershock run``, ``report``, ``history``, ``recover`` and ``lever``."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aftershock.cli.common import (
    fail,
    os_reason,
    output_dir_problem,
    output_file_problem,
    require_home,
    settings_or_exit,
)
from aftershock.cli.history import history  # its own module; kept importable from here
from aftershock.errors import AftershockError, BudgetExhausted, ExperimentInvalid, JournalError

if TYPE_CHECKING:
    # The loader and document model, the runtime, the reports and the live display
    # load when a command uses them, so ``validate``, ``schema`` and ``--help``
    # start without them.
    from collections.abc import Coroutine

    from rich.console import Console
    from rich.live import Live

    from aftershock import runtime
    from aftershock.cli.progress import Progress
    from aftershock.model.experiment import Experiment
    from aftershock.model.policy import HealingPolicy
    from aftershock.model.results import RunResult
    from aftershock.settings import Settings

__all__ = ["history", "lever", "recover", "report", "run", "settings_or_exit"]

EXIT_INVALID = 2
EXIT_ABORTED = 3
EXIT_ERRORED = 4


def load_policy(experiment: Experiment, source: Path, settings: Settings) -> HealingPolicy | None:
    """The healing policy an experiment names (``healingPolicy``, relative to its file)."""
    from aftershock.loading import load_file
    from aftershock.loading.loader import policy_path
    from aftershock.model.policy import HealingPolicy

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
    from aftershock.loading import load_file
    from aftershock.model.experiment import Experiment

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
    """The one-screen summary at the end of a run.

    Names, reasons and errors come from documents, backends and process logs, so
    they are ``Text`` (never parsed as markup): ``[/x]`` in a log prints as is.
    """
    from rich.table import Table
    from rich.text import Text

    colour = {"passed": "green", "failed": "red", "aborted": "yellow"}.get(
        result.status.value, "magenta"
    )
    console.print(
        Text.assemble(
            (result.status.value.upper(), f"bold {colour}"),
            f" {result.experiment}: {result.reason}",
        ),
        soft_wrap=True,
    )
    table = Table(box=None, show_header=False)
    table.add_column(style="dim")
    table.add_column(overflow="fold")  # wrap, never cut: the journal path must stay whole

    def row(label: str, *value: str | tuple[str, str]) -> None:
        table.add_row(Text(label), Text.assemble(*value))

    if result.recovery_seconds is not None:
        limit = f" (limit {result.recover_within:g}s)" if result.recover_within else ""
        row("recovery", f"{result.recovery_seconds:.2f}s{limit}")
    for budget in result.budgets:
        row(
            f"budget {budget.slo}",
            f"spent {budget.spent:.3%} of the window's budget, burn rate {budget.burn_rate:.1f}",
        )
    for check in result.checks:
        mark = ("held", "green") if check.ok else ("broken", "red")
        row(f"steady {check.phase} {check.probe}", mark, f" {'; '.join(check.failures)}")
    for fault in result.faults:
        on = f"{fault.fault} on {', '.join(fault.resources)}: "
        if fault.reverted_at:
            row(f"fault {fault.step}", on, "reverted")
        else:
            row(f"fault {fault.step}", on, ("NOT reverted", "red"), f" {fault.error or ''}")
    if result.healing is not None and result.healing.fired:
        h = result.healing
        row(
            "healer",
            f"{h.playbook} acted after {h.first_action_after or 0:.2f}s, "
            f"healthy after {h.healthy_after or 0:.2f}s",
        )
    for note in result.notes:
        row("note", note)
    if result.seed is not None:
        row("seed", f"{result.seed} (--seed {result.seed} makes the same choices)")
    row("journal", str(journal))
    console.print(table)


def run(
    file: Annotated[Path, typer.Argument(help="An experiment file.", readable=False)],
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
    """Run one experiment (exit 0 passed, 1 failed, 2 invalid, 3 aborted, 4 errored, 130 halt).

    Exit 2 also covers what is checked before anything is touched: an unusable
    state directory ($AFTERSHOCK_HOME) and a ``--report`` or ``--junit`` path that
    cannot be written. If writing the report still fails after the run, the run
    keeps its verdict's exit code and ``error: cannot write report: ...`` is printed.
    """
    settings = settings_or_exit(home=False)
    experiment = _experiment(file, name, settings)
    policy = load_policy(experiment, file, settings)
    if report_dir is not None:
        from aftershock.reporting import REPORT_FILES  # the reports load only when asked for

        if (problem := output_dir_problem(report_dir, REPORT_FILES, "--report")) is not None:
            fail(problem)
    if junit is not None and (problem := output_file_problem(junit, "--junit")) is not None:
        fail(problem)
    require_home(settings)  # only now: a refused run leaves not even an empty home behind
    from rich.console import Console
    from rich.text import Text

    console = Console()
    outcome = execute(
        console, experiment, policy, settings, seed=seed, dry_run=dry_run, force=force
    )
    if dry_run:
        for note in outcome.result.notes:
            console.print(Text(note))
    if report_dir is not None or junit is not None:
        from aftershock.reporting import load_run, write_junit, write_report

        # The verdict stands whatever happens here: a report error is one line, not exit 1.
        try:
            view = load_run(outcome.journal)
            if report_dir is not None:
                console.print(Text(f"report: {write_report(view, report_dir)['html']}"))
            if junit is not None:
                console.print(Text(f"junit: {write_junit(view, junit)}"))
        except (OSError, JournalError) as exc:
            reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
            typer.echo(f"error: cannot write report: {reason}", err=True)
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
    import asyncio

    from rich.live import Live
    from rich.text import Text

    from aftershock import runtime
    from aftershock.cli.progress import Progress

    progress = Progress(console, experiment.metadata.name)

    async def main() -> runtime.RunOutcome:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()  # honoured whenever it is set, before the first fault too
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await runtime.run_experiment(
            experiment,
            settings=settings,
            seed=seed,
            dry_run=dry_run,
            force=force,
            events=progress,
            policy=policy,
            stop=stop,
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
        console.print(Text.assemble(("refused", "yellow"), f": {exc}"), soft_wrap=True)
        raise typer.Exit(EXIT_ABORTED) from None
    except AftershockError as exc:
        console.print(Text.assemble(("error", "red"), f": {exc}"), soft_wrap=True)
        raise typer.Exit(EXIT_ERRORED) from None
    except OSError as exc:  # a state file under $AFTERSHOCK_HOME (a lock, a log) failed
        console.print(Text.assemble(("error", "red"), f": {os_reason(exc)}"), soft_wrap=True)
        raise typer.Exit(EXIT_ERRORED) from None
    summary(console, outcome.result, outcome.journal)
    return outcome


async def _refreshing(
    coro: Coroutine[Any, Any, runtime.RunOutcome], live: Live, progress: Progress
) -> runtime.RunOutcome:
    import asyncio

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
    """Re-render the report of a run from its journal.

    Exit 0 written; 2 when JOURNAL is missing, unreadable or not a journal, or an
    output path cannot be written (checked first); 4 when writing fails anyway.
    Records the report had to skip are listed in it, and counted on stderr.
    """
    from aftershock.reporting import REPORT_FILES, load_run, write_junit, write_report

    if not journal.is_file():
        fail(f"{journal}: no such journal")
    for problem in (
        output_dir_problem(out, REPORT_FILES, "--out"),
        output_file_problem(junit, "--junit") if junit else None,
    ):
        if problem is not None:
            fail(problem)
    try:
        view = load_run(journal)
    except JournalError as exc:  # NotAJournal, or a file that cannot be read; both name it
        fail(str(exc))
    try:
        paths = write_report(view, out)
        if junit is not None:
            write_junit(view, junit)
    except OSError as exc:
        fail(f"cannot write report: {os_reason(exc)}", EXIT_ERRORED)
    if view.problems:
        typer.echo(
            f"warning: {journal}: {len(view.problems)} journal problem(s) skipped;"
            " the report lists them",
            err=True,
        )
    typer.echo(str(paths["html"]))


def recover() -> None:
    """Revert every journaled fault that has no revert record."""
    import asyncio

    from rich.console import Console
    from rich.text import Text

    from aftershock import runtime

    settings = settings_or_exit()
    report_ = asyncio.run(runtime.recover(settings))
    console = Console()
    for action in report_.actions:
        mark = ("reverted", "green") if action.ok else ("failed", "red")
        console.print(
            Text.assemble(
                mark,
                f" {action.run_id} {action.key} ({action.fault} on {action.target}): "
                f"{action.message}",
            )
        )
    for key in report_.skipped_live:
        console.print(Text.assemble(("skipped", "yellow"), f" {key}: its run is still alive"))
    for problem in report_.problems:
        console.print(Text.assemble(("journal problem", "yellow"), f" {problem}"))
    if not report_.actions:
        console.print("nothing to recover")
    if any(not a.ok for a in report_.actions):
        raise typer.Exit(EXIT_ERRORED)


def lever(
    action: Annotated[str, typer.Argument(help="engage or release")],
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "",
) -> None:
    """The kill switch: engage stops running experiments and refuses new ones."""
    from aftershock import runtime

    if action not in ("engage", "release", "status"):
        fail("expected engage, release or status")
    # Even ``status`` needs a usable home: with none, "released" would be a guess.
    settings = settings_or_exit()
    if action != "status":
        runtime.set_lever(settings, engaged=action == "engage", reason=reason)
    typer.echo("engaged" if runtime.lever_engaged(settings) else "released")
