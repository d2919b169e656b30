"""The audit records also go to the log (a pod's ``kubectl logs``), secrets redacted."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from aftershock.model.secrets import REDACTED, Secret
from aftershock.observability.audit import LoggedAudit
from aftershock.ports import Event


def test_every_event_is_one_log_line_with_its_fields_and_no_secret() -> None:
    sink = LoggedAudit()
    with structlog.testing.capture_logs() as logged:
        sink.emit(
            Event(
                kind="healer.action",
                at=datetime.now(UTC),
                fields={"policy": "ns/p", "action": "docker.restart", "token": Secret("s3cret")},
            )
        )
    assert len(logged) == 1
    (line,) = logged
    assert line["event"] == "healer.action"
    assert line["audit"] is True
    assert line["policy"] == "ns/p"
    assert line["action"] == "docker.restart"
    assert line["token"] == REDACTED
    assert "s3cret" not in repr(line)
