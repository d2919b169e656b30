"""``aftershock heal``: the healer daemon."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from aftershock.cli.common import listen_address, settings_or_exit
from aftershock.errors import AftershockError, ExperimentInvalid

__all__ = ["heal"]


def heal(
    policies: Annotated[
        list[Path], typer.Argument(help="HealingPolicy files or directories.", readable=False)
    ],
    listen: Annotated[
        str, typer.Option(help="Address of /healthz, /readyz, /metrics.")
    ] = "127.0.0.1:9464",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide and log; act on nothing.")
    ] = False,
) -> None:
    """Watch health and run remediation playbooks until interrupted.

    /readyz answers 503 with a reason while no healer runs or while the process
    is overloaded: the p95 of how late probe samples start, over the last 30 s,
    exceeds three quarters of a sampling period (aftershock_probe_lag_seconds in
    /metrics).

    Exit 2 for invalid policies, settings or an unusable $AFTERSHOCK_HOME; 4 when
    the healer cannot start (a driver, its state files, the listen address).
    """
    import asyncio

    from aftershock import runtime
    from aftershock.loading import load_paths
    from aftershock.model.policy import HealingPolicy

    settings = settings_or_exit()
    documents, problems = load_paths(policies, allowlist=settings.allow)
    for problem in problems:
        typer.echo(str(problem))
    loaded = [d.document for d in documents if isinstance(d.document, HealingPolicy)]
    if problems or not loaded:
        if not problems:
            typer.echo("error: no HealingPolicy documents found", err=True)
        raise typer.Exit(2)
    address = listen_address(listen)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def ready(where: tuple[str, int]) -> None:
            names = ", ".join(p.metadata.name for p in loaded)
            mode = " (dry run)" if dry_run else ""
            typer.echo(
                f"aftershock heal{mode}: {names}; http://{where[0]}:{where[1]}/metrics", err=True
            )

        await runtime.run_healers(
            loaded, settings=settings, stop=stop, listen=address, dry_run=dry_run, on_ready=ready
        )

    try:
        asyncio.run(main())
    except ExperimentInvalid as exc:
        typer.echo(str(exc))
        raise typer.Exit(2) from None
    except AftershockError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(4) from None
    except OSError as exc:
        # A file error names its file (the audit log, the state store); a socket error does not.
        where = str(exc.filename) if exc.filename is not None else f"cannot listen on {listen}"
        typer.echo(f"error: {where}: {exc.strerror or exc}", err=True)
        raise typer.Exit(4) from None
