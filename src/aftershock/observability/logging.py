"""Logging setup for entry points: JSON lines when not on a TTY, console otherwise."""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog

from aftershock.model.secrets import REDACTED, Secret

__all__ = ["LogFormat", "configure_logging", "redact_secrets"]

LogFormat = Literal["auto", "json", "console"]

_SENSITIVE_KEYS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def redact_secrets(
    _logger: object, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Replace secret values and credential headers with ``***`` in every log line."""
    for key, value in list(event_dict.items()):
        if isinstance(value, Secret) or key.lower() in _SENSITIVE_KEYS:
            event_dict[key] = REDACTED
        elif isinstance(value, dict):
            event_dict[key] = {
                k: REDACTED if isinstance(v, Secret) or str(k).lower() in _SENSITIVE_KEYS else v
                for k, v in value.items()
            }
    return event_dict


def configure_logging(
    level: str = "info", fmt: LogFormat = "auto", stream: TextIO | None = None
) -> None:
    """Configure structlog once, at the entry point."""
    out = stream if stream is not None else sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
