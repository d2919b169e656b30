"""Probe adapters behind ``aftershock.ports.Probe``: http, tcp, command, prometheus.

Rule: every probe has a timeout; a probe that times out or errors yields a
failed sample, never an exception and never a hang.
"""

from aftershock.probes.command import CommandProbeAdapter
from aftershock.probes.factory import build_probe, sample_once
from aftershock.probes.http import HttpClient, HttpProbeAdapter
from aftershock.probes.prometheus import PrometheusProbeAdapter
from aftershock.probes.tcp import TcpProbeAdapter

__all__ = [
    "CommandProbeAdapter",
    "HttpClient",
    "HttpProbeAdapter",
    "PrometheusProbeAdapter",
    "TcpProbeAdapter",
    "build_probe",
    "sample_once",
]
