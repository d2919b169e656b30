"""``aftershock schedule DIR``: the scheduler daemon, until SIGINT or SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from aftershock.cli.common import settings_or_exit

__all__ = ["schedule"]

EXIT_INVALID = 2


def schedule(
    directory: Annotated[
        Path,
        typer.Argument(
            help="Directory of experiment files (searched recursively).", readable=False
        ),
    ],
    reload_every: Annotated[
        float, typer.Option(help="Seconds between checks for changed files.", min=0.1)
    ] = 2.0,
) -> None:
    """Run every experiment with spec.schedule in DIR on its cron; reload files on change.

    Exit 2 when DIR, the settings or $AFTERSHOCK_HOME cannot be used.
    """
    import asyncio

    from aftershock.scheduling import run_schedule

    settings = settings_or_exit()
    if not directory.is_dir():
        typer.echo(f"error: {directory}: not a directory", err=True)
        raise typer.Exit(EXIT_INVALID)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        typer.echo(f"watching {directory} (stop with Ctrl-C)")
        await run_schedule(
            directory, settings=settings, stop=stop, reload_every=reload_every, echo=typer.echo
        )

    asyncio.run(main())
    typer.echo("stopped")
