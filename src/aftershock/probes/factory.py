"""Build the adapter for a ``ProbeSpec``; the one place that maps kinds to adapters."""

from __future__ import annotations

from aftershock.model.probes import ProbeSpec
from aftershock.ports import Clock, Probe, ProbeResult
from aftershock.probes.command import CommandProbeAdapter
from aftershock.probes.http import HttpClient, HttpProbeAdapter, shared_client
from aftershock.probes.prometheus import PrometheusProbeAdapter
from aftershock.probes.tcp import TcpProbeAdapter

__all__ = ["build_probe", "sample_once", "shared_client"]


def build_probe(
    spec: ProbeSpec,
    *,
    client: HttpClient | None = None,
    clock: Clock | None = None,
) -> Probe:
    """The adapter for ``spec``'s kind; ``aclose`` it when done.

    ``client`` is shared by HTTP and Prometheus probes when given (its owner closes
    it); otherwise each of those adapters opens its own keep-alive client.
    ``clock`` stamps ``started`` on samples; it defaults to ``time.monotonic``.
    """
    if spec.http is not None:
        return HttpProbeAdapter(spec.http, client=client, clock=clock)
    if spec.tcp is not None:
        return TcpProbeAdapter(spec.tcp, clock=clock)
    if spec.command is not None:
        return CommandProbeAdapter(spec.command, clock=clock)
    if spec.prometheus is not None:
        return PrometheusProbeAdapter(spec.prometheus, client=client, clock=clock)
    # The model guarantees exactly one kind; this guards a model that grew a new one.
    msg = f"no probe adapter for kind {spec.kind!r}"
    raise NotImplementedError(msg)


async def sample_once(
    spec: ProbeSpec,
    *,
    client: HttpClient | None = None,
    clock: Clock | None = None,
) -> ProbeResult:
    """Build the probe, take one sample, and close it again (``aftershock`` one-shots)."""
    probe = build_probe(spec, client=client, clock=clock)
    try:
        return await probe.check()
    finally:
        await probe.aclose()
