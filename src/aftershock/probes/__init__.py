"""Probe adapters behind ``aftershock.ports.Probe``: http, tcp, command, prometheus.

Rule: every probe has a timeout; a probe that times out or errors yields a
failed sample, never an exception and never a hang.
"""
