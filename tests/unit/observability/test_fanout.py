"""``FanOut``: a failing sink is reported, once per sink and error type, and the others go on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from aftershock.observability.metrics import FanOut
from aftershock.ports import Event
from aftershock.testing import CapturedEvents


class Failing:
    """A sink that raises what it is told to."""

    def __init__(self) -> None:
        self.error: Exception = OSError("disk full")

    def emit(self, event: Event) -> None:
        raise self.error


def event(kind: str) -> Event:
    return Event(kind=kind, at=datetime(2026, 1, 5, tzinfo=UTC), run_id="r1")


def test_a_failing_sink_is_reported_once_per_error_type_and_the_others_still_receive() -> None:
    before, after = CapturedEvents(), CapturedEvents()
    broken = Failing()
    fan = FanOut([before, broken, after])
    with capture_logs() as logs:
        fan.emit(event("watch.transition"))
        fan.emit(event("healer.action"))  # the same error again: counted, not logged
        broken.error = ValueError("bad record")
        fan.emit(event("healer.outcome"))  # a new kind of error: logged
    kinds = ["watch.transition", "healer.action", "healer.outcome"]
    assert before.kinds() == kinds
    assert after.kinds() == kinds
    reports = [log for log in logs if log["event"] == "event sink failed"]
    assert [(r["sink"], r["kind"], r["error"], r["log_level"]) for r in reports] == [
        ("Failing", "watch.transition", "OSError('disk full')", "error"),
        ("Failing", "healer.outcome", "ValueError('bad record')", "error"),
    ]
    assert reports[0]["run_id"] == "r1"
    assert fan.failures == {(1, OSError): 2, (1, ValueError): 1}


def test_each_failing_sink_is_reported_on_its_own() -> None:
    first, second = Failing(), Failing()
    fan = FanOut([first, second])
    with capture_logs() as logs:
        fan.emit(event("watch.transition"))
        fan.emit(event("watch.transition"))
    assert len([log for log in logs if log["event"] == "event sink failed"]) == 2
    assert fan.failures == {(0, OSError): 2, (1, OSError): 2}


def test_a_sink_that_is_interrupted_is_not_swallowed() -> None:
    class Interrupted:
        def emit(self, event: Event) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        FanOut([Interrupted()]).emit(event("watch.transition"))
