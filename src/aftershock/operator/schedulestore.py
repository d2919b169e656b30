"""The operator's schedule anchors, in each ``Experiment``'s status.

``ChaosScheduler`` keeps, per job, the cron it computed for and the anchor (every
fire up to it has been dealt with). In the operator the job of ``ns/name`` is
recorded in that Experiment's ``status.schedule``::

    status:
      schedule:
        cron: "0 3 * * MON"
        timezone: UTC
        anchor: "2026-12-07T03:00:00+00:00"
        nextFire: "2026-12-14T03:00:00+00:00"
        lastFireId: 12
        fires: [{id, fireTime, due, decidedAt, decision, reason, detail, status}]  # newest 20

Every write replaces ``.status`` with the ``resourceVersion`` read, so it is a
compare-and-set (``ScheduleStorage``'s contract): a new leader continues from
the anchor its predecessor wrote, a fire is never run by two leaders, and one
that came due while no replica led is judged by the misfire policy. The other
``.status`` fields (phase, verdict, nextRun, ...) are kept as read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from aftershock.errors import DriverUnavailable, JournalError
from aftershock.operator.kube import KubeAccess, KubeConflict, KubeNotFound
from aftershock.scheduling.policy import Fire
from aftershock.scheduling.store import FireRow, JobRow

__all__ = ["KEEP_FIRES", "KubeScheduleStore"]

KEEP_FIRES: Final = 20
"""Fires kept per Experiment (its history across leaders; older ones are in the runs)."""

EXPERIMENTS: Final = "experiments"

Schedule = dict[str, Any]
Change = Callable[[Schedule | None], Schedule | None]
"""Given the stored record (``None``: none), the record to write, or ``None`` to write nothing."""


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


class KubeScheduleStore:
    """``ScheduleStorage`` in Experiment status (blocking calls, like the SQLite store)."""

    def __init__(self, kube: KubeAccess, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace

    def _where(self, key: str) -> tuple[str, str]:
        namespace, _, name = key.rpartition("/")
        return namespace or self.namespace, name

    def _read(self, key: str) -> dict[str, Any] | None:
        namespace, name = self._where(key)
        try:
            return self.kube.get_object(EXPERIMENTS, namespace, name)
        except KubeNotFound:
            return None
        except DriverUnavailable as exc:
            msg = f"schedule of {key}: cannot read it: {exc}"
            raise JournalError(msg) from exc

    def _update(self, key: str, change: Change) -> Schedule | None:
        """Compare-and-set the job record; ``None`` when the change refused or there is no
        Experiment. Retried from a fresh read on a version conflict."""
        namespace, name = self._where(key)

        def on_status(status: dict[str, Any]) -> dict[str, Any] | None:
            stored = status.get("schedule")
            new = change(dict(stored) if isinstance(stored, dict) else None)
            return None if new is None else {**status, "schedule": new}

        try:
            written = self.kube.update_status(EXPERIMENTS, namespace, name, on_status)
        except (DriverUnavailable, KubeConflict) as exc:
            msg = f"schedule of {key}: cannot write it: {exc}"
            raise JournalError(msg) from exc
        return None if written is None else written["status"]["schedule"]

    @staticmethod
    def _row(key: str, record: Schedule | None) -> JobRow | None:
        if not record:
            return None
        anchor = _time(record.get("anchor"))
        if anchor is None:
            return None
        return JobRow(
            key=key,
            cron=str(record.get("cron", "")),
            timezone=str(record.get("timezone", "")),
            anchor=anchor,
            next_fire=_time(record.get("nextFire")) if record.get("nextFire") else None,
        )

    # ------------------------------------------------------------ ScheduleStorage
    def job(self, key: str) -> JobRow | None:
        """The record of ``key`` as stored now; ``None`` if there is none."""
        current = self._read(key)
        record = ((current or {}).get("status") or {}).get("schedule")
        return self._row(key, record if isinstance(record, dict) else None)

    def keys(self) -> list[str]:
        """Every Experiment of the namespace with a schedule record."""
        try:
            items = self.kube.list_objects(EXPERIMENTS, self.namespace)
        except DriverUnavailable as exc:
            msg = f"schedules: cannot list Experiments: {exc}"
            raise JournalError(msg) from exc
        found = []
        for item in items:
            record = (item.get("status") or {}).get("schedule")
            if isinstance(record, dict) and "anchor" in record:
                meta = item["metadata"]
                found.append(str(record.get("key") or f"{meta['namespace']}/{meta['name']}"))
        return sorted(found)

    def save_job(
        self,
        key: str,
        *,
        cron: str,
        timezone: str,
        anchor: datetime,
        next_fire: datetime | None,
        now: datetime,
    ) -> JobRow:
        """Create the record, or keep one of the same cron and time zone; return it."""
        del now
        kept: list[JobRow] = []

        def change(stored: Schedule | None) -> Schedule | None:
            same = stored and stored.get("cron") == cron and stored.get("timezone") == timezone
            row = self._row(key, stored) if same else None
            if row is not None:
                kept.append(row)
                return None
            fresh = dict(stored or {})
            fresh.update(
                key=key,
                cron=cron,
                timezone=timezone,
                anchor=_stamp(anchor),
                nextFire=_stamp(next_fire) if next_fire else None,
            )
            return fresh

        written = self._update(key, change)
        if kept:  # the stored record, as read in the same compare-and-set
            return kept[-1]
        # what was written; with no Experiment nothing is kept (the job lives in memory only)
        row = self._row(key, written)
        return row or JobRow(
            key=key, cron=cron, timezone=timezone, anchor=anchor, next_fire=next_fire
        )

    def delete_job(self, key: str) -> None:
        """Remove the anchor (the fire history stays)."""

        def change(stored: Schedule | None) -> Schedule | None:
            if not stored or "anchor" not in stored:
                return None
            return {k: v for k, v in stored.items() if k in ("fires", "lastFireId")}

        self._update(key, change)

    def record(
        self,
        key: str,
        fires: Sequence[FireRow],
        *,
        cron: str,
        timezone: str,
        expected_anchor: datetime | None,
        anchor: datetime,
        next_fire: datetime | None,
        now: datetime,
    ) -> list[int] | None:
        """Compare-and-set: record ``fires`` and move the anchor, or write nothing."""
        del now
        ids: list[int] = []

        def change(stored: Schedule | None) -> Schedule | None:
            row = self._row(key, stored)
            if expected_anchor is None:
                if row is not None:
                    return None
            elif (
                row is None
                or row.cron != cron
                or row.timezone != timezone
                or row.anchor != expected_anchor
            ):
                return None
            fresh = dict(stored or {})
            last = int(fresh.get("lastFireId") or 0)
            history = list(fresh.get("fires") or [])
            ids.clear()
            for fire in fires:
                last += 1
                ids.append(last)
                history.append(
                    {
                        "id": last,
                        "fireTime": _stamp(fire.fire_time),
                        "due": _stamp(fire.due),
                        "decidedAt": _stamp(fire.decided_at),
                        "decision": fire.decision,
                        "reason": fire.reason,
                        "detail": fire.detail,
                        "status": None,
                    }
                )
            fresh.update(
                key=key,
                cron=cron,
                timezone=timezone,
                anchor=_stamp(anchor),
                nextFire=_stamp(next_fire) if next_fire else None,
                lastFireId=last,
                fires=history[-KEEP_FIRES:],
            )
            return fresh

        return None if self._update(key, change) is None else list(ids)

    def finish(self, key: str, fire_id: int, status: str) -> None:
        """Set how the run of fire ``fire_id`` ended; an unknown fire is ignored."""

        def change(stored: Schedule | None) -> Schedule | None:
            history = list((stored or {}).get("fires") or [])
            for index, fire in enumerate(history):
                if isinstance(fire, dict) and fire.get("id") == fire_id:
                    history[index] = {**fire, "status": status}
                    return {**(stored or {}), "fires": history}
            return None

        self._update(key, change)

    def history(self, key: str) -> list[Fire]:
        """The kept fires of ``key``, oldest first."""
        current = self._read(key)
        record = ((current or {}).get("status") or {}).get("schedule")
        items = record.get("fires") if isinstance(record, dict) else None
        found: list[Fire] = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            fire_time, due, decided = (_time(item.get(k)) for k in ("fireTime", "due", "decidedAt"))
            if fire_time is None or due is None or decided is None:
                continue
            found.append(
                Fire(
                    id=int(item.get("id") or 0),
                    key=key,
                    fire_time=fire_time,
                    due=due,
                    decided_at=decided,
                    decision=str(item.get("decision", "")),
                    reason=str(item.get("reason", "")),
                    detail=str(item.get("detail", "")),
                    status=item.get("status"),
                )
            )
        return found
