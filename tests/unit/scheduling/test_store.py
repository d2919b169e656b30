"""The ``ScheduleStorage`` contract, run against every implementation.

``MemoryStorage`` keeps one record per key and swaps it only if it is still the
record it read (a version check, as a custom resource's ``resourceVersion``
would be): the contract needs nothing more than compare-and-set on one record.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aftershock.scheduling.policy import Fire
from aftershock.scheduling.store import FireRow, JobRow, ScheduleStorage, ScheduleStore

T0 = datetime(2026, 1, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class _Record:
    job: JobRow | None
    fires: tuple[Fire, ...]
    version: int


class MemoryStorage:
    """``ScheduleStorage`` as one versioned record per key, replaced by compare-and-set."""

    def __init__(self) -> None:
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()
        self._ids = 0

    def _get(self, key: str) -> _Record:
        return self._records.get(key, _Record(None, (), 0))

    def _swap(self, key: str, seen: _Record, new: _Record) -> bool:
        with self._lock:
            if self._get(key).version != seen.version:
                return False
            self._records[key] = replace(new, version=seen.version + 1)
            return True

    def job(self, key: str) -> JobRow | None:
        return self._get(key).job

    def keys(self) -> list[str]:
        return sorted(k for k, r in self._records.items() if r.job is not None)

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
        while True:
            seen = self._get(key)
            if seen.job is not None and (seen.job.cron, seen.job.timezone) == (cron, timezone):
                return seen.job
            job = JobRow(key=key, cron=cron, timezone=timezone, anchor=anchor, next_fire=next_fire)
            if self._swap(key, seen, replace(seen, job=job)):
                return job

    def delete_job(self, key: str) -> None:
        while not self._swap(key, seen := self._get(key), replace(seen, job=None)):
            pass

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
        while True:
            seen = self._get(key)
            if expected_anchor is None:
                if seen.job is not None:
                    return None
            elif seen.job is None or (seen.job.cron, seen.job.timezone, seen.job.anchor) != (
                cron,
                timezone,
                expected_anchor,
            ):
                return None
            with self._lock:
                ids = list(range(self._ids + 1, self._ids + 1 + len(fires)))
                self._ids += len(fires)
            added = tuple(_fire(i, key, row) for i, row in zip(ids, fires, strict=True))
            job = JobRow(key=key, cron=cron, timezone=timezone, anchor=anchor, next_fire=next_fire)
            if self._swap(key, seen, _Record(job, seen.fires + added, 0)):
                return ids

    def finish(self, key: str, fire_id: int, status: str) -> None:
        while True:
            seen = self._get(key)
            fires = tuple(replace(f, status=status) if f.id == fire_id else f for f in seen.fires)
            if self._swap(key, seen, replace(seen, fires=fires)):
                return

    def history(self, key: str) -> list[Fire]:
        return list(self._get(key).fires)


def _fire(fire_id: int, key: str, row: FireRow) -> Fire:
    return Fire(
        id=fire_id,
        key=key,
        fire_time=row.fire_time,
        due=row.due,
        decided_at=row.decided_at,
        decision=row.decision,
        reason=row.reason,
        detail=row.detail,
        status=None,
    )


Factory = Callable[[], ScheduleStorage]


@pytest.fixture(params=["sqlite", "memory"])
def storages(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    """Open the storage again, as a second scheduler would (same file, or same object)."""
    if request.param == "sqlite":
        return lambda: ScheduleStore(tmp_path / "jobs.sqlite3")
    shared = MemoryStorage()
    return lambda: shared


def fire(at: datetime, decision: str = "run") -> FireRow:
    return FireRow(fire_time=at, due=at, decided_at=at, decision=decision, reason="", detail="")


def save(storage: ScheduleStorage, anchor: datetime, cron: str = "0 * * * *") -> JobRow:
    return storage.save_job(
        "job", cron=cron, timezone="UTC", anchor=anchor, next_fire=anchor + HOUR, now=anchor
    )


def move(
    storage: ScheduleStorage, expected: datetime | None, to: datetime, cron: str = "0 * * * *"
) -> list[int] | None:
    return storage.record(
        "job",
        [fire(to)],
        cron=cron,
        timezone="UTC",
        expected_anchor=expected,
        anchor=to,
        next_fire=to + HOUR,
        now=to,
    )


def test_save_job_keeps_a_record_of_the_same_schedule(storages: Factory) -> None:
    a, b = storages(), storages()
    assert save(a, T0).anchor == T0
    assert move(a, T0, T0 + HOUR) is not None
    kept = save(b, T0 + 2 * HOUR)  # a reload elsewhere: the moved anchor stays
    assert kept.anchor == T0 + HOUR
    assert a.job("job") == kept
    replaced = save(b, T0 + 2 * HOUR, cron="30 * * * *")  # another cron starts from its anchor
    assert (replaced.cron, replaced.anchor) == ("30 * * * *", T0 + 2 * HOUR)
    assert a.job("job") == replaced
    assert a.keys() == ["job"]


def test_record_moves_the_anchor_only_from_the_expected_one(storages: Factory) -> None:
    a, b = storages(), storages()
    save(a, T0)
    first = move(a, T0, T0 + HOUR)
    assert first is not None
    assert len(first) == 1
    assert move(b, T0, T0 + HOUR) is None  # b's view is stale: nothing written
    stored = b.job("job")
    assert stored is not None
    assert stored.anchor == T0 + HOUR
    assert [f.id for f in b.history("job")] == first
    later = move(b, T0 + HOUR, T0 + 2 * HOUR)
    assert later is not None
    assert later[0] != first[0]
    assert [f.fire_time for f in a.history("job")] == [T0 + HOUR, T0 + 2 * HOUR]


def test_record_fails_on_another_schedule_or_a_missing_record(storages: Factory) -> None:
    a = storages()
    assert move(a, T0, T0 + HOUR) is None  # no record
    save(a, T0)
    assert move(a, T0, T0 + HOUR, cron="30 * * * *") is None  # the record is another cron's
    a.delete_job("job")
    assert move(a, T0, T0 + HOUR) is None
    assert a.history("job") == []
    assert a.keys() == []


def test_record_with_no_expected_anchor_only_creates(storages: Factory) -> None:
    a, b = storages(), storages()
    assert move(a, None, T0) == [f.id for f in a.history("job")]
    assert move(b, None, T0) is None
    assert len(b.history("job")) == 1
    assert b.job("job") is not None


def test_finish_sets_the_status_of_one_fire(storages: Factory) -> None:
    a, b = storages(), storages()
    save(a, T0)
    ids = move(a, T0, T0 + HOUR)
    assert ids is not None
    b.finish("job", ids[0], "passed")
    b.finish("job", ids[0] + 1000, "passed")  # unknown: ignored
    assert [f.status for f in a.history("job")] == ["passed"]


def test_racing_writers_move_the_anchor_once(storages: Factory) -> None:
    """Each thread opens the storage itself (for SQLite: its own connections and locks)."""
    save(storages(), T0)
    racers = 8
    barrier = threading.Barrier(racers)
    results: list[list[int] | None] = []
    errors: list[BaseException] = []

    def race() -> None:
        storage = storages()
        barrier.wait()
        try:
            results.append(move(storage, T0, T0 + HOUR))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r is not None for r in results) == 1
    assert len(storages().history("job")) == 1
