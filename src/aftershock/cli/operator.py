"""``aftershock operator``: the Kubernetes operator (kopf, behind ``aftershock.operator``)."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Annotated

import typer

from aftershock.cli.common import listen_address
from aftershock.errors import AftershockError
from aftershock.settings import load_settings

__all__ = ["operator"]

_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _default_namespace() -> str:
    if os.environ.get("AFTERSHOCK_NAMESPACE"):
        return os.environ["AFTERSHOCK_NAMESPACE"]
    if _SA_NAMESPACE.is_file():
        return _SA_NAMESPACE.read_text(encoding="utf-8").strip()
    return "aftershock-system"


def operator(
    namespace: Annotated[
        str | None,
        typer.Option(
            help="Namespace to watch and hold the lease in "
            "(default: $AFTERSHOCK_NAMESPACE, the pod's namespace, aftershock-system)."
        ),
    ] = None,
    listen: Annotated[
        str, typer.Option(help="Address of /healthz, /readyz, /metrics.")
    ] = "0.0.0.0:8080",
    identity: Annotated[
        str | None,
        typer.Option(help="Lease holder identity (default: $POD_NAME, else the host name)."),
    ] = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(help="A kubeconfig file (default: in-cluster, else $KUBECONFIG)."),
    ] = None,
    lease_duration: Annotated[
        float,
        typer.Option(
            min=3.0,
            max=300.0,
            help="Seconds a leader's Lease lasts without renewal: a standby takes over (and"
            " reverts what a dead leader left applied) this long after it dies. Renewed every"
            " third of it.",
        ),
    ] = 15.0,
) -> None:
    """Run the Kubernetes operator: Experiment and HealingPolicy resources, one acting replica."""
    import asyncio

    try:
        settings = load_settings()
    except AftershockError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    address = listen_address(listen)
    who = identity or os.environ.get("POD_NAME") or socket.gethostname()
    where = namespace or _default_namespace()
    config = kubeconfig or (
        Path(os.environ["KUBECONFIG"]) if os.environ.get("KUBECONFIG") else None
    )

    async def main() -> None:
        from aftershock.operator import run_operator

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def ready(at: tuple[str, int] | None) -> None:
            listening = f"http://{at[0]}:{at[1]}/healthz" if at else "no health server"
            typer.echo(f"aftershock operator {who} in {where}; {listening}", err=True)

        await run_operator(
            namespace=where,
            settings=settings,
            identity=who,
            stop=stop,
            kubeconfig=config,
            health_listen=address,
            on_ready=ready,
            lease_duration=lease_duration,
            renew_every=lease_duration / 3,
        )

    try:
        asyncio.run(main())
    except AftershockError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(4) from None
