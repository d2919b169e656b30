"""Getting journal lines onto the disk: durable appends, and one background writer for notes.

``JournalFile`` appends bytes to a run file with one ``write`` and one
``fsync`` per call, creating the directory and the file (and fsyncing the
directory entry) the first time, and ending a line torn by an earlier crash
before appending after it. It opens the file for each append and holds no
descriptor in between, so a journal that is never closed keeps no file open.

``NoteWriter`` owns the one thread that writes notes (probe samples, phases,
windows, ...), so that the event loop never waits on the disk for them:

* **Queue.** ``submit`` puts a serialized line into a queue bounded in bytes
  and returns at once; the thread is started on the first submit.
* **Batches.** The thread waits ``linger`` seconds after the first line of a
  batch (less when the queue is half full or the writer is closing), then
  writes everything queued with one ``write`` and one ``fsync``. A crash loses
  at most the notes of that short window and the batch being written; the
  readers already skip a torn last line.
* **Durable records.** ``write_durable`` (fault and resource records) takes
  whatever is queued, appends its own line after it, and writes and fsyncs
  the lot before it returns, under the same I/O lock as the thread's batches:
  file order is queue order, and a durable record is never ahead of a note
  queued before it.
* **Backpressure.** When the queue is full, ``submit(wait=True)`` waits up
  to ``max_wait`` seconds for room and otherwise refuses the line (returns
  False); the caller counts what was refused. Memory never grows beyond the
  bound (plus one line, so that a line larger than the whole bound still fits
  into an empty queue).
* **Errors.** A batch that cannot be written is lost, and its error is kept:
  the next ``write_durable`` or ``close`` raises it as a ``JournalError``
  naming the file and how many notes were lost, instead of writing anything.
  Later batches are tried again; a torn line a failed write left behind is
  ended before the next append.
* **Lifecycle.** ``close`` stops the thread after it has written the queue
  and raises a kept error; ``close_quietly`` does the same without raising,
  for interpreter exit and garbage collection. The thread is a daemon, so a
  writer that is never closed does not keep the process alive.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Final

from aftershock.errors import JournalError

__all__ = ["DEFAULT_LINGER", "DEFAULT_MAX_WAIT", "DEFAULT_QUEUE_BYTES", "JournalFile", "NoteWriter"]

DEFAULT_QUEUE_BYTES: Final = 4 * 1024 * 1024
"""Notes queued at most, in bytes: some 20,000 probe samples, seconds of a slow disk."""
DEFAULT_MAX_WAIT: Final = 0.5
"""How long a note waits for room in a full queue before it is dropped (and counted)."""
DEFAULT_LINGER: Final = 0.02
"""How long the writer gathers notes after the first one of a batch."""

_FLAGS: Final = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JournalFile:
    """One run file, appended to with one write and one fsync per call.

    Not thread-safe on its own: ``NoteWriter`` calls it under its I/O lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False  # False: check the directory and the file's last byte first

    def append(self, data: bytes) -> None:
        """Write ``data`` at the end of the file and fsync it; OSError as it comes."""
        try:
            self._append(data)
        except BaseException:
            self._ready = False  # a partial line may be there now: end it next time
            raise
        self._ready = True

    def _append(self, data: bytes) -> None:
        created = False
        if self._ready:
            fd = os.open(self.path, _FLAGS, 0o666)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, _FLAGS | os.O_EXCL, 0o666)
                created = True
            except FileExistsError:
                fd = os.open(self.path, _FLAGS, 0o666)
        try:
            if not self._ready and not created:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    # A crash cut the last write short: end that line, so this
                    # record starts on a line of its own and stays readable.
                    data = b"\n" + data
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_directory(self.path.parent)


class NoteWriter:
    """The background writer of one journal file (see the module docstring)."""

    def __init__(
        self,
        file: JournalFile,
        *,
        name: str,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
        max_wait: float = DEFAULT_MAX_WAIT,
        linger: float = DEFAULT_LINGER,
    ) -> None:
        self.file = file
        self.name = name
        self.queue_bytes = queue_bytes
        self.max_wait = max_wait
        self.linger = linger
        self._io = threading.Lock()
        # Reentrant: garbage collection may close a writer from inside its own thread.
        self._cond = threading.Condition(threading.RLock())
        self._queue: list[bytes] = []
        self._queued_bytes = 0
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._error: OSError | None = None
        self._lost = 0

    @property
    def pending(self) -> int:
        """Notes submitted and not yet written (or lost): queued or in the batch being written."""
        with self._cond:
            return len(self._queue) + self._in_flight

    def submit(self, line: bytes, *, wait: bool = True) -> bool:
        """Queue ``line`` for the thread; False when the queue stayed full and it was dropped."""
        with self._cond:
            size = len(line)
            roomy = self._has_room(size) or (
                wait and self._cond.wait_for(lambda: self._has_room(size), self.max_wait)
            )
            if not roomy:
                return False
            was_empty = not self._queue
            self._queue.append(line)
            self._queued_bytes += size
            if was_empty or self._queued_bytes >= self.queue_bytes // 2:
                self._cond.notify_all()
            if not self._stopping:
                if self._thread is not None:
                    return True
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                try:
                    self._thread.start()
                except RuntimeError:  # interpreter shutdown: no new threads
                    self._thread = None
                else:
                    return True
        self._write_batch()  # no thread to do it: closing, or the interpreter is exiting
        return True

    def write_durable(self, data: bytes) -> None:
        """Append what is queued, then ``data``, with one write and one fsync; raise a kept error.

        When an earlier batch failed, its error is raised instead and nothing is
        written: a raise always means ``data`` is not on disk.
        """
        with self._io:
            self._raise_kept()
            with self._cond:
                batch, count = self._take()
            try:
                self.file.append(batch + data)
            except OSError as exc:
                self._lost += count
                lost, self._lost = self._lost, 0
                raise JournalError(self._message(exc, lost)) from exc
            finally:
                with self._cond:
                    self._in_flight -= count

    def close(self) -> None:
        """Write what is queued, stop the thread, and raise the error of a failed batch."""
        self._stop()
        with self._io:
            self._raise_kept()

    def close_quietly(self) -> None:
        """``close`` for interpreter exit and garbage collection: never raises."""
        if threading.current_thread() is self._thread:
            with self._cond:  # the thread writes what is left and ends by itself
                self._stopping = True
                self._cond.notify_all()
            return
        self._stop()

    # ------------------------------------------------------------------ internals
    def _has_room(self, size: int) -> bool:
        return not self._queue or self._queued_bytes + size <= self.queue_bytes

    def _take(self) -> tuple[bytes, int]:
        """Everything queued, as one block; called with ``_cond`` held."""
        batch, count = b"".join(self._queue), len(self._queue)
        self._queue.clear()
        self._queued_bytes = 0
        self._in_flight += count
        self._cond.notify_all()  # room for waiting submitters
        return batch, count

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue) or self._stopping)
                if not self._queue:
                    return
                if self.linger > 0 and not self._stopping:
                    self._cond.wait_for(
                        lambda: self._stopping or self._queued_bytes >= self.queue_bytes // 2,
                        timeout=self.linger,
                    )
            self._write_batch()

    def _write_batch(self) -> None:
        with self._io:
            with self._cond:
                batch, count = self._take()
            try:
                if batch:
                    self.file.append(batch)
            except OSError as exc:
                self._error = self._error or exc
                self._lost += count
            finally:
                with self._cond:
                    self._in_flight -= count

    def _stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        self._write_batch()  # anything queued while no thread ran

    def _raise_kept(self) -> None:
        """Raise the error of a failed batch once; called with ``_io`` held."""
        if self._error is None:
            return
        error, lost = self._error, self._lost
        self._error, self._lost = None, 0
        raise JournalError(self._message(error, lost)) from error

    def _message(self, exc: OSError, lost: int) -> str:
        text = f"{self.file.path}: cannot write the fault journal: {exc}"
        if lost:
            text += f"; {lost} queued record(s) were lost"
        return text
