"""The journal's writer: notes off the caller's thread, fault records durable on return, in order."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aftershock.errors import JournalError
from aftershock.journal.faults import DROPPED_NOTE, FaultJournal
from aftershock.journal.reading import read_journal
from aftershock.model.targets import TargetKind
from aftershock.ports import Handle

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
SLOW = 3600.0  # a linger so long that the writer thread never writes on its own in a test


def handle(step: str, run_id: str = "run-w") -> Handle:
    return Handle(
        run_id=run_id,
        step=step,
        kind=TargetKind.PROCESS,
        fault="process.stop",
        target="web",
        resources=("pid:42",),
        undo={"pid": 42},
    )


def on_disk(path: Path) -> list[dict[str, Any]]:
    """The records in the file, read through a descriptor of our own."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as other:
        return [json.loads(line) for line in other]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def writer_threads(run_id: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"journal-{run_id}"]


async def test_records_from_the_loop_and_threads_stay_in_order(tmp_path: Path) -> None:
    journal = FaultJournal(tmp_path, "run-w", linger=0.001)
    given: dict[int, str] = {}

    async def step(name: str) -> None:
        for i in range(40):
            given[journal.note("sample", probe=name, i=i)] = "sample"
            if i % 10 == 3:
                given[journal.intent(handle(f"{name}-{i}"), T0)] = "fault.intent"
                await asyncio.sleep(0)
                given[journal.applied(handle(f"{name}-{i}"))] = "fault.applied"
            if i % 10 == 7:
                given[journal.reverted(handle(f"{name}-{i - 4}"))] = "fault.reverted"
            await asyncio.sleep(0)

    def from_a_thread(i: int) -> tuple[int, str]:
        return journal.note("healing", i=i), "healing"

    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = asyncio.gather(
            *(asyncio.wrap_future(pool.submit(from_a_thread, i)) for i in range(100))
        )
        await asyncio.gather(*(step(f"p{n}") for n in range(5)))
        given.update(await threaded)
    journal.close()

    data = on_disk(journal.path)
    seqs = [int(d["seq"]) for d in data]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # increasing in file order
    assert {int(d["seq"]): d["event"] for d in data} == given  # every record, none twice
    assert len(data) == 5 * (40 + 4 * 3) + 100


def test_a_fault_record_is_on_disk_with_the_notes_before_it(tmp_path: Path) -> None:
    journal = FaultJournal(tmp_path, "run-w", linger=SLOW)
    journal.note("phase", phase="before")  # creates no file: it waits in the queue
    journal.note("sample", ok=True)
    assert on_disk(journal.path) == []
    assert journal.pending == 2

    seq = journal.intent(handle("a"), T0)

    data = on_disk(journal.path)
    assert [(d["seq"], d["event"]) for d in data] == [
        (1, "phase"),
        (2, "sample"),
        (3, "fault.intent"),
    ]
    assert seq == 3
    assert journal.pending == 0
    journal.close()


def test_notes_reach_the_disk_at_close(tmp_path: Path) -> None:
    journal = FaultJournal(tmp_path, "run-close", linger=SLOW)
    for i in range(100):
        journal.note("sample", i=i)
    assert on_disk(journal.path) == []
    journal.close()
    assert [d["i"] for d in on_disk(journal.path)] == list(range(100))
    assert journal.pending == 0
    assert writer_threads("run-close") == []


def test_the_writer_thread_writes_on_its_own(tmp_path: Path) -> None:
    journal = FaultJournal(tmp_path, "run-w", linger=0.01)
    for i in range(10):
        journal.note("sample", i=i)
    wait_until(lambda: len(on_disk(journal.path)) == 10)
    journal.close()


def test_note_does_no_file_io_on_the_calling_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = FaultJournal(tmp_path, "run-w", linger=0.001)
    journal.intent(handle("a"), T0)  # the first record looks at the disk once
    calls: list[tuple[str, str]] = []
    for name in ("open", "write", "fsync", "pread", "fstat", "stat"):
        real = getattr(os, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls.append((_name, threading.current_thread().name))
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, spy)

    for i in range(200):
        journal.note("sample", i=i)
    wait_until(lambda: journal.pending == 0)
    monkeypatch.undo()

    assert calls, "the writer thread wrote the notes"
    assert {thread for _, thread in calls} == {"journal-run-w"}
    assert len(on_disk(journal.path)) == 201
    journal.close()


def test_run_boundaries_are_durable_and_so_is_everything_after_close(tmp_path: Path) -> None:
    journal = FaultJournal(tmp_path, "run-bounds", linger=SLOW)
    journal.note("run.started", experiment="x")
    assert [d["event"] for d in on_disk(journal.path)] == ["run.started"]
    journal.note("sample", ok=True)
    journal.note("run.finished", result={})
    assert [d["event"] for d in on_disk(journal.path)] == ["run.started", "sample", "run.finished"]
    journal.close()
    journal.note("late", n=1)  # after close: written at once, no thread
    assert on_disk(journal.path)[-1]["event"] == "late"
    assert writer_threads("run-bounds") == []


def _break_the_directory(directory: Path) -> Path:
    """Put a plain file where the journal's directory was: every open of the run file fails."""
    moved = directory.with_name(directory.name + ".moved")
    directory.rename(moved)
    directory.write_text("not a directory", encoding="utf-8")
    return moved


def _mend_the_directory(directory: Path, moved: Path) -> None:
    directory.unlink()
    moved.rename(directory)


def test_a_failed_batch_is_raised_by_the_next_fault_record(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    journal = FaultJournal(directory, "run-w", linger=0.001)
    journal.intent(handle("a"), T0)
    moved = _break_the_directory(directory)

    journal.note("sample", i=1)
    journal.note("sample", i=2)
    wait_until(lambda: journal.pending == 0)  # the writer tried, and failed
    with pytest.raises(JournalError, match="queued record") as caught:
        journal.applied(handle("a"))
    assert str(caught.value).startswith(f"{journal.path}: cannot write the fault journal")
    assert "2 queued record(s) were lost" in str(caught.value)

    _mend_the_directory(directory, moved)
    seq = journal.applied(handle("a"))  # the error was raised once; this one is written
    data = on_disk(journal.path)
    assert [d["event"] for d in data] == ["fault.intent", "fault.applied"]
    assert data[-1]["seq"] == seq
    journal.close()  # nothing left to report


def test_a_fault_record_that_cannot_be_written_raises_itself(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    journal = FaultJournal(directory, "run-w", linger=SLOW)
    journal.intent(handle("a"), T0)
    moved = _break_the_directory(directory)
    journal.note("sample", i=1)  # still queued: the fault record takes it along, and fails
    with pytest.raises(JournalError, match="1 queued record"):
        journal.reverted(handle("a"))
    _mend_the_directory(directory, moved)
    journal.close()
    assert [d["event"] for d in on_disk(journal.path)] == ["fault.intent"]


def test_close_raises_a_failed_batch_once(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    journal = FaultJournal(directory, "run-once", linger=SLOW)
    journal.note("run.started")
    _break_the_directory(directory)
    journal.note("sample", i=1)
    with pytest.raises(JournalError, match=f"{journal.path}: cannot write"):
        journal.close()
    journal.close()  # idempotent: closed, and the error was reported
    assert writer_threads("run-once") == []


def test_a_journal_is_a_context_manager(tmp_path: Path) -> None:
    with FaultJournal(tmp_path, "run-w", linger=SLOW) as journal:
        journal.note("sample", i=1)
    assert [d["i"] for d in on_disk(journal.path)] == [1]
    journal.close()  # closing again is harmless

    directory = tmp_path / "broken"
    broken = FaultJournal(directory, "run-w", linger=SLOW)
    broken.note("run.started")
    _break_the_directory(directory)
    with pytest.raises(RuntimeError, match="the body failed") as caught, broken:  # noqa: PT012
        broken.note("sample", i=1)
        raise RuntimeError("the body failed")
    assert any("cannot write the fault journal" in note for note in caught.value.__notes__)


def test_a_full_queue_waits_briefly_then_drops_and_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = FaultJournal(tmp_path, "run-w", queue_bytes=2_000, queue_wait=0.05, linger=0)
    journal.intent(handle("a"), T0)
    stuck = threading.Event()
    release = threading.Event()
    real_fsync = os.fsync

    def slow_disk(fd: int) -> None:
        if threading.current_thread().name == "journal-run-w":
            stuck.set()
            release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_disk)
    seqs = [journal.note("sample", i=0)]
    stuck.wait(10)  # the writer is inside a batch, holding nothing else back
    started = time.monotonic()
    seqs += [journal.note("sample", i=i) for i in range(1, 100)]
    elapsed = time.monotonic() - started
    assert 0.05 <= elapsed < 1.0  # one brief wait, then drops without waiting
    release.set()
    wait_until(lambda: journal.pending == 0)
    seqs.append(journal.note("sample", i=100))
    journal.close()

    data = on_disk(journal.path)
    written = [d for d in data if d["event"] == "sample"]
    missing = sorted(set(seqs) - {d["seq"] for d in written})
    assert missing, "some notes were dropped"
    (dropped,) = [d for d in data if d["event"] == DROPPED_NOTE]
    assert (dropped["count"], dropped["first_seq"], dropped["last_seq"]) == (
        len(missing),
        missing[0],
        missing[-1],
    )
    assert data.index(dropped) == len(data) - 2  # just before the note that got through
    assert [d["seq"] for d in data] == sorted(d["seq"] for d in data)
    assert len(on_disk(journal.path)) == len(read_journal(journal.path))


def test_an_unreferenced_journal_is_flushed_and_its_thread_ends(tmp_path: Path) -> None:
    journal = FaultJournal(tmp_path, "run-gc", linger=SLOW)
    journal.note("sample", i=1)
    path = journal.path
    assert writer_threads("run-gc")
    del journal
    gc.collect()
    assert [d["i"] for d in on_disk(path)] == [1]
    wait_until(lambda: not writer_threads("run-gc"))


_SCRIPT_HEAD = """
import os, signal, sys, threading
from datetime import UTC, datetime
from pathlib import Path
from aftershock.journal import FaultJournal
from aftershock.model.targets import TargetKind
from aftershock.ports import Handle

def handle(step):
    return Handle(run_id="crash", step=step, kind=TargetKind.PROCESS, fault="process.stop",
                  target="api", resources=("pid:4242",), undo={"pid": 4242})
"""

_KILLED = (
    _SCRIPT_HEAD
    + """
journal = FaultJournal(Path(sys.argv[1]), "crash", linger=0.002)
def chatter():
    for i in range(100_000):
        journal.note("healing", i=i)
threading.Thread(target=chatter, daemon=True).start()
for n in range(150):
    for i in range(5):
        journal.note("sample", n=n, i=i)
    journal.intent(handle(f"s{n}"), datetime.now(UTC))
    if n % 3 == 0:
        journal.reverted(handle(f"s{n}"))
os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no close, no buffers flushed by Python
"""
)


def test_a_sigkill_leaves_every_fault_record_and_the_notes_before_it(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILLED), str(tmp_path)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    records = read_journal(tmp_path / "crash.jsonl")  # a torn last note is skipped
    seqs = [r.seq for r in records]
    assert seqs == sorted(seqs)
    intents = [r for r in records if r.event == "fault.intent"]
    assert [r.handle.step for r in intents if r.handle] == [f"s{n}" for n in range(150)]
    assert sum(r.event == "fault.reverted" for r in records) == 50
    last_fault = max(r.seq for r in records if r.event.startswith("fault."))
    # Everything numbered before the last fault record was written with it.
    assert set(range(1, last_fault + 1)) <= set(seqs)
    assert sum(r.event == "sample" for r in records) == 150 * 5


_EXITS = (
    _SCRIPT_HEAD
    + """
journal = FaultJournal(Path(sys.argv[1]), "crash", linger=3600)
for i in range(500):
    journal.note("sample", i=i)
# never closed: the interpreter's exit writes the queue
"""
)


def test_a_journal_never_closed_is_written_at_exit(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_EXITS), str(tmp_path)],
        capture_output=True,
        timeout=60,
        check=True,
    )
    records = read_journal(tmp_path / "crash.jsonl")
    assert [r.fields["i"] for r in records] == list(range(500))
