"""Adapters for logs and metrics: structlog and prometheus_client.

Rule: ``structlog.configure()`` is called only through ``configure_logging``,
and only by entry points (``cli/``, ``operator/``); library code only calls
``structlog.get_logger()`` and binds ``run_id``/``experiment``/``target``.
"""
