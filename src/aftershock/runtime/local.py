"""The local stores: files and SQLite under ``$AFTERSHOCK_HOME`` (one host).

* the lever is the file ``lever`` (present = engaged);
* a live run holds an exclusive ``flock`` on ``runs/<run id>.lock``; the kernel
  drops it when the process dies, so a SIGKILLed run is dead at once;
* target leases are ``leases/<run id>.json`` files, each listing a run's
  claims and flock'd by that run for its life; a run checks the others' and
  writes its own under ``leases/.mutex``, so two runs starting at once see
  each other. A file nobody holds is a dead run's: it is broken and removed.
* the ledger is ``ledger.sqlite3`` (``aftershock.journal.ledger``).

flock is local to one kernel: these stores coordinate the runs of one host (a
shared ``$AFTERSHOCK_HOME`` on a network file system coordinates nothing; the
operator keeps its state in the Kubernetes API instead).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from aftershock.errors import TargetLeased
from aftershock.journal.ledger import LEDGER_FILE, Ledger
from aftershock.runtime.stores import EXPERIMENT_TARGET, Stores, TargetClaim
from aftershock.settings import Settings

__all__ = [
    "FileLever",
    "LocalRunRegistry",
    "LocalTargetLeases",
    "leased_message",
    "local_stores",
]


# ---------------------------------------------------------------- the lever
class FileLever:
    """The kill switch as a file: ``$AFTERSHOCK_HOME/lever``."""

    def __init__(self, home: Path) -> None:
        self.path = home / "lever"

    def engaged(self) -> bool:
        """True while the file exists."""
        return self.path.exists()

    def set(self, *, engaged: bool, reason: str = "") -> None:
        """Engage (write the file with the time and reason) or release (remove it)."""
        if engaged:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(f"{datetime.now(UTC).isoformat()} {reason}\n", encoding="utf-8")
        else:
            self.path.unlink(missing_ok=True)


# ---------------------------------------------------------------- live runs
def _held_by_someone(handle: IO[str]) -> bool:
    """True when another open file holds a lock on it (probing takes no lock)."""
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(handle, fcntl.LOCK_UN)
    return False


class LocalRunRegistry:
    """Live runs as lock files: ``runs/<run id>.lock``, flock'd by the run."""

    def __init__(self, home: Path) -> None:
        self.directory = home / "runs"

    @contextlib.contextmanager
    def alive(self, run_id: str) -> Iterator[None]:
        """Hold the run's lock for the block."""
        path = self.directory / f"{run_id}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                path.unlink(missing_ok=True)
                fcntl.flock(handle, fcntl.LOCK_UN)

    def live(self, run_id: str) -> bool:
        """True while some process holds the run's lock."""
        path = self.directory / f"{run_id}.lock"
        try:
            with path.open("r") as handle:
                return _held_by_someone(handle)
        except FileNotFoundError:
            return False


# ---------------------------------------------------------------- target leases
def leased_message(mine: TargetClaim, holder: TargetClaim) -> str:
    """Why a run is refused a target another run holds (names the holder's run id)."""
    if mine.target == EXPERIMENT_TARGET:
        return f"experiment {mine.experiment!r} is already running as run {holder.run_id}"
    how = "shares it" if holder.shared else "holds it exclusively"
    return (
        f"target {mine.target!r} is leased by run {holder.run_id}"
        f" (experiment {holder.experiment!r}, target {holder.target!r}), which {how};"
        " two runs may use one target only when both experiments set shareTargets"
    )


class LocalTargetLeases:
    """Target claims as flock'd files under ``$AFTERSHOCK_HOME/leases``."""

    def __init__(self, home: Path) -> None:
        self.directory = home / "leases"

    @contextlib.contextmanager
    def _mutex(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / ".mutex").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _live_claims(self, *, break_dead: bool) -> list[TargetClaim]:
        """Claims of live holders; files of dead ones removed when ``break_dead``."""
        found: list[TargetClaim] = []
        try:
            paths = sorted(self.directory.glob("*.json"))
        except OSError:
            return found
        for path in paths:
            try:
                handle = path.open("r", encoding="utf-8")
            except OSError:
                continue
            with handle:
                if not _held_by_someone(handle):
                    if break_dead:
                        path.unlink(missing_ok=True)
                    continue
                with contextlib.suppress(ValueError, TypeError):
                    data = json.loads(handle.read())
                    found.extend(TargetClaim.from_json(item) for item in data["claims"])
        return found

    @contextlib.asynccontextmanager
    async def hold(self, claims: Sequence[TargetClaim]) -> AsyncIterator[None]:
        """Take every claim for the block, or raise ``TargetLeased`` and take none."""
        if not claims:
            yield
            return
        run_id = claims[0].run_id
        path = self.directory / f"{run_id}.json"
        with self._mutex():
            held = self._live_claims(break_dead=True)
            for mine in claims:
                for other in held:
                    if mine.conflicts(other):
                        raise TargetLeased(
                            leased_message(mine, other), holder=other.run_id, target=mine.target
                        )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            handle = os.fdopen(fd, "w", encoding="utf-8")
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(json.dumps({"claims": [c.to_json() for c in claims]}))
            handle.flush()
        try:
            yield
        finally:
            with self._mutex():
                path.unlink(missing_ok=True)
                handle.close()

    async def held(self) -> list[TargetClaim]:
        """Every claim of a live run."""
        return self._live_claims(break_dead=False)


# ---------------------------------------------------------------- the bundle
def local_stores(settings: Settings, *, ledger: Ledger | None = None) -> Stores:
    """The stores of one host, under ``settings.home`` (created if missing)."""
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    return Stores(
        lever=FileLever(home),
        ledger=ledger if ledger is not None else Ledger(home / LEDGER_FILE),
        leases=LocalTargetLeases(home),
        runs=LocalRunRegistry(home),
    )
