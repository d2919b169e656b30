"""The one way a YAML file is read: regular files only, never blocking, never past the limit.

Every command that reads documents (``validate``, ``run`` and the experiment's
``healingPolicy``, ``schedule DIR``, ``heal``) comes through ``read_source``.
A FIFO, a device (``/dev/zero``, a terminal), a socket or a directory given
where a file is expected is refused by name instead of blocking or streaming
forever. The file is opened with ``O_NONBLOCK`` (so opening a FIFO without a
writer returns at once), checked with ``fstat`` on the open descriptor (so
what is checked is what is read), and read for at most ``limit + 1`` bytes.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Final

__all__ = ["MAX_FILE_BYTES", "UnreadableFile", "describe_kind", "read_source"]

MAX_FILE_BYTES: Final = 1024 * 1024

_OPEN_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_CHUNK: Final = 64 * 1024


class UnreadableFile(Exception):
    """The file cannot be used as a document source; the message says why (no file name)."""


def describe_kind(mode: int) -> str:
    """What a non-regular file is, in words: ``a FIFO (named pipe)``, ``a directory``..."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _size_text(limit: int) -> str:
    if limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    return f"{limit} bytes"


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "no such file or directory"
    if exc.errno == errno.ELOOP:
        return "cannot read: too many levels of symbolic links (a symlink loop?)"
    return f"cannot read: {(exc.strerror or str(exc)).lower()}"


def _open_failure(path: str | os.PathLike[str], exc: OSError) -> str:
    # A Unix socket cannot be opened at all (ENXIO); say what it is rather than why open failed.
    if exc.errno in (errno.ENXIO, errno.EOPNOTSUPP):
        try:
            mode = Path(path).stat().st_mode
        except OSError:
            return _os_reason(exc)
        if not stat.S_ISREG(mode):
            return _not_regular(mode)
    return _os_reason(exc)


def _not_regular(mode: int) -> str:
    return f"{describe_kind(mode)}, not a regular file; expected a YAML file"


def read_source(path: str | os.PathLike[str], limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``; ``UnreadableFile`` for anything else.

    Refused: non-regular files, files larger than ``limit`` bytes (by their
    size, before reading, and again by what a read returns, in case the file
    grows), and files that cannot be opened.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise UnreadableFile(_open_failure(path, exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(_not_regular(info.st_mode))
        if info.st_size > limit:
            raise UnreadableFile(f"file is larger than {_size_text(limit)}")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise UnreadableFile(_os_reason(exc)) from None
    finally:
        os.close(fd)
    if total > limit:
        raise UnreadableFile(f"file is larger than {_size_text(limit)}")
    return b"".join(chunks)
