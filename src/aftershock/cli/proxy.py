"""``aftershock proxy``: the embedded Toxiproxy-compatible server on its own."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

__all__ = ["proxy"]


def _split(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        msg = f"invalid --listen {listen!r}; expected host:port, e.g. 127.0.0.1:8474"
        raise typer.BadParameter(msg)
    return host, int(port)


def proxy(
    listen: Annotated[str, typer.Option(help="Address of the HTTP API.")] = "127.0.0.1:8474",
) -> None:
    """Serve the Toxiproxy HTTP API and proxies until interrupted."""
    import asyncio

    from aftershock.proxy.server import serve

    host, port = _split(listen)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        typer.echo(f"aftershock proxy: Toxiproxy API on http://{host}:{port}", err=True)
        await serve(host, port, stop)

    try:
        asyncio.run(run())
    except OSError as exc:
        typer.echo(f"error: cannot listen on {listen}: {exc.strerror or exc}", err=True)
        raise typer.Exit(4) from None
