"""The audit log: every event as one JSON line, for people and tools to read later."""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any

import structlog

from aftershock.model.secrets import REDACTED, Secret
from aftershock.ports import Event

__all__ = ["AuditLog", "LoggedAudit", "read_audit"]


def _default(value: object) -> Any:
    if isinstance(value, Secret):
        return REDACTED
    return str(value)


class AuditLog:
    """An ``EventSink`` appending ``{"at", "kind", "run_id", ...fields}`` lines to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = path.open("a", encoding="utf-8")

    def emit(self, event: Event) -> None:
        """Append the event and flush, so a crash loses at most the line being written."""
        record = {"at": event.at.isoformat(), "kind": event.kind, "run_id": event.run_id}
        record.update(event.fields)
        line = json.dumps(record, default=_default, sort_keys=False)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()


class LoggedAudit:
    """An ``EventSink`` writing every event as a log line (JSON in a pod: ``kubectl logs``).

    The same records as :class:`AuditLog`, through the process's structured
    logger ``aftershock.audit``, secrets redacted the same way.
    """

    def __init__(self) -> None:
        self._log = structlog.get_logger("aftershock.audit")

    def emit(self, event: Event) -> None:
        """Log the event at info level; never raises."""
        fields = {
            k: (REDACTED if isinstance(v, Secret) else v)
            for k, v in event.fields.items()
            if k not in ("event", "kind")
        }
        # a sink must not raise; the file log has the record all the same
        with contextlib.suppress(Exception):
            self._log.info(event.kind, audit=True, run_id=event.run_id or None, **fields)


def read_audit(path: Path) -> list[dict[str, Any]]:
    """Every complete record of an audit log (a torn last line is skipped)."""
    records: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records
