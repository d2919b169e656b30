"""Benchmark of the run journal: what a note and a fault record cost the event loop.

Run on demand: ``.venv/bin/python bench/bench_journal.py [--notes 5000] [--faults 200] [--dir D]``.

Every call is timed on the event loop (``time.perf_counter_ns`` around the
call, inside a coroutine), in a fresh journal file under ``--dir`` (default: a
temporary directory; point it at the storage the journal really lives on):

* **before**: each note written as every record used to be, an inline copy of
  the former ``FaultJournal._append``: under a lock, serialize, open the file,
  write, flush, fsync, close.
* **after**: ``FaultJournal.note``: serialized and numbered on the loop, then
  queued for the writer thread, which writes batches (one write and one fsync
  each). Two patterns: a *burst* (notes back to back) and *paced* (one note,
  then ``asyncio.sleep(--pace)``, as probe samples arrive), where the writer
  thread runs alongside the loop.
* **fault record**: ``FaultJournal.intent``, durable on return, alone and
  with ``--between`` notes queued before each (which it writes along).

The table shows the median, p99 and mean per call, and for the writer the
number of fsyncs it needed for the notes (counted by wrapping ``os.fsync``)
and how long ``close()`` took to write what was still queued.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aftershock.journal.faults import FaultJournal, iso_utc
from aftershock.model.targets import TargetKind
from aftershock.ports import Handle

SAMPLE: dict[str, Any] = {
    "probe": "checkout",
    "t": 12.345678,
    "ok": True,
    "latency": 0.004321,
    "status": 200,
    "detail": "",
}


class FsyncCounter:
    """Counts ``os.fsync`` calls while installed."""

    def __init__(self) -> None:
        self.count = 0
        self._real = os.fsync

    def __enter__(self) -> FsyncCounter:
        def counting(fd: Any) -> None:
            self.count += 1
            self._real(fd)

        os.fsync = counting
        return self

    def __exit__(self, *exc: object) -> None:
        os.fsync = self._real


class SyncNotes:
    """The former write path: one open, write, flush, fsync and close per record."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.seq = 0

    def note(self, kind: str, **fields: Any) -> int:
        with self.lock:
            self.seq += 1
            record = {
                "ts": iso_utc(datetime.now(UTC)),
                "seq": self.seq,
                "event": kind,
                "run_id": "bench",
                **fields,
            }
            line = json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            with self.path.open("ab") as file:
                file.write(line.encode("utf-8") + b"\n")
                file.flush()
                os.fsync(file.fileno())
            return self.seq


def handle(i: int) -> Handle:
    return Handle(
        run_id="bench",
        step=f"step-{i}",
        kind=TargetKind.PROCESS,
        fault="process.stop",
        target="api",
        resources=(f"pid:{1000 + i}",),
        undo={"pid": 1000 + i, "starttime": 12345},
    )


def stats(samples_ns: list[int]) -> tuple[float, float, float]:
    """Median, p99 and mean, in microseconds."""
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        statistics.median(ordered) / 1000,
        p99 / 1000,
        statistics.fmean(ordered) / 1000,
    )


async def timed(call: Callable[[], object], count: int, pace: float = 0.0) -> list[int]:
    spent: list[int] = []
    for _ in range(count):
        start = time.perf_counter_ns()
        call()
        spent.append(time.perf_counter_ns() - start)
        await asyncio.sleep(pace)
    return spent


async def bench(directory: Path, notes: int, faults: int, between: int, pace: float) -> None:
    rows: list[tuple[str, tuple[float, float, float], str]] = []

    before = SyncNotes(directory / "before.jsonl")
    with FsyncCounter() as fsyncs:
        spent = await timed(lambda: before.note("sample", **SAMPLE), notes)
    rows.append(("note, before (fsync each)", stats(spent), f"{fsyncs.count} fsyncs"))

    for label, run_id, wait in (("burst", "burst", 0.0), ("paced", "paced", pace)):
        journal = FaultJournal(directory, run_id)
        journal.note("phase", phase="warm-up")  # the one look at the disk
        with FsyncCounter() as fsyncs:
            spent = await timed(functools.partial(journal.note, "sample", **SAMPLE), notes, wait)
            start = time.perf_counter()
            journal.close()
            closing = (time.perf_counter() - start) * 1000
        rows.append(
            (
                f"note, after ({label})",
                stats(spent),
                f"{fsyncs.count} fsyncs, close {closing:.1f} ms",
            )
        )

    journal = FaultJournal(directory, "faults")
    journal.note("phase", phase="warm-up")
    journal.flush()
    spent = await timed(lambda: journal.intent(handle(0), datetime.now(UTC)), faults)
    rows.append(("fault record, queue empty", stats(spent), ""))
    spent = []
    for i in range(faults):
        for _ in range(between):
            journal.note("sample", **SAMPLE)
        start = time.perf_counter_ns()
        journal.intent(handle(i), datetime.now(UTC))
        spent.append(time.perf_counter_ns() - start)
        await asyncio.sleep(0)
    journal.close()
    rows.append((f"fault record, {between} notes queued", stats(spent), ""))

    print(f"run journal on {directory} ({notes} notes, {faults} fault records per row)")
    print(f"{'per call on the loop, us':36}{'median':>9}{'p99':>9}{'mean':>9}")
    for name, (median, p99, mean), extra in rows:
        print(f"{name:36}{median:>9.1f}{p99:>9.1f}{mean:>9.1f}  {extra}")


def main() -> None:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--notes", type=int, default=5000)
    parser.add_argument("--faults", type=int, default=200)
    parser.add_argument("--between", type=int, default=10, help="notes queued per fault record")
    parser.add_argument("--pace", type=float, default=0.001, help="seconds between paced notes")
    parser.add_argument("--dir", type=Path, default=None, help="where the journals go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-journal-") as tmp:
        asyncio.run(bench(Path(tmp), args.notes, args.faults, args.between, args.pace))


if __name__ == "__main__":
    main()
