"""A run's journal that also keeps its fault records in a shared store.

The operator's runs journal to a pod-local file (samples, phases: many small
notes) and keep every fault and resource record in the Kubernetes API too
(``FaultRecords``), where a new leader finds them after the pod is gone.

Order matters for the promise that a fault is never left behind: a record
that comes *before* an effect (``intent``, ``applied``, ``resource_intent``,
``resource_created``) is in the shared store before the file, and a failure
there raises before anything is touched; a record that comes *after* one
(``reverted``, ``revert_failed``, ``resource_released``, ...) is written to the
file first, so a failing API leaves the local record, and the shared one still
says the fault may be applied (a new leader reverts it again: reverts are
idempotent).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from aftershock.journal.faults import FaultJournal
from aftershock.ports import Handle
from aftershock.runtime.stores import FaultRecords

__all__ = ["RecordedJournal", "open_journal"]


class RecordedJournal(FaultJournal):
    """A :class:`FaultJournal` whose fault and resource records also go to ``records``."""

    def __init__(self, directory: Path, run_id: str, *, records: FaultRecords) -> None:
        super().__init__(directory, run_id)
        self.records = records

    def intent(self, handle: Handle, deadline: datetime) -> int:
        """Shared store first, then the file: see the module docstring."""
        self.records.fault("intent", handle, deadline=deadline.astimezone(UTC).isoformat())
        return super().intent(handle, deadline)

    def applied(self, handle: Handle) -> int:
        """Shared store first (the enriched undo record), then the file."""
        self.records.fault("applied", handle)
        return super().applied(handle)

    def reverted(self, handle: Handle) -> int:
        """The file first, then the shared store."""
        seq = super().reverted(handle)
        self.records.fault("reverted", handle)
        return seq

    def revert_failed(self, handle: Handle, error: str) -> int:
        """The file first, then the shared store."""
        seq = super().revert_failed(handle, error)
        self.records.fault("revert_failed", handle, error=error)
        return seq

    def resource_intent(self, handle: Handle) -> int:
        """Shared store first, then the file."""
        self.records.resource("intent", handle)
        return super().resource_intent(handle)

    def resource_created(self, handle: Handle) -> int:
        """Shared store first, then the file."""
        self.records.resource("created", handle)
        return super().resource_created(handle)

    def resource_released(self, handle: Handle, outcome: str) -> int:
        """The file first, then the shared store."""
        seq = super().resource_released(handle, outcome)
        self.records.resource("released", handle, outcome=outcome)
        return seq

    def resource_release_failed(self, handle: Handle, error: str) -> int:
        """The file first, then the shared store."""
        seq = super().resource_release_failed(handle, error)
        self.records.resource("release_failed", handle, error=error)
        return seq


def open_journal(directory: Path, run_id: str, records: FaultRecords | None) -> FaultJournal:
    """The journal a run writes: a plain file, or one recorded in ``records`` too."""
    if records is None:
        return FaultJournal(directory, run_id)
    return RecordedJournal(directory, run_id, records=records)
