"""Timing of one sample: when it started (on the injected clock) and how long it took."""

from __future__ import annotations

import time
from datetime import timedelta

from aftershock.model.units import format_duration
from aftershock.ports import Clock, ProbeResult

__all__ = ["Stopwatch", "format_seconds"]


def format_seconds(seconds: float) -> str:
    """``0.5`` -> ``500ms``: timeouts in details read the way users write them."""
    return format_duration(timedelta(seconds=seconds))


class Stopwatch:
    """Started at construction; builds the ``ProbeResult`` of the sample it times.

    ``started`` comes from the injected clock so samples line up with the rest
    of the run (a manual clock in tests). The latency is always measured on the
    real monotonic clock: a probe does real I/O, and a manual clock that nobody
    advances would report every request as instantaneous.
    """

    __slots__ = ("_t0", "started")

    def __init__(self, clock: Clock | None = None) -> None:
        self.started = clock.monotonic() if clock is not None else time.monotonic()
        self._t0 = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since the stopwatch started."""
        return time.monotonic() - self._t0

    def result(
        self,
        *,
        ok: bool,
        status: int | None = None,
        detail: str = "",
        value: float | None = None,
        latency: float | None = None,
    ) -> ProbeResult:
        """The sample; ``latency`` defaults to the time elapsed so far."""
        return ProbeResult(
            ok=ok,
            latency=self.elapsed() if latency is None else latency,
            started=self.started,
            status=status,
            detail=detail,
            value=value,
        )
