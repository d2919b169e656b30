"""The audit log: every event as one JSON line, for people and tools to read later."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from aftershock.model.secrets import REDACTED, Secret
from aftershock.ports import Event

__all__ = ["AuditLog", "read_audit"]


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
