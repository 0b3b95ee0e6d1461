"""A claim per cell: at most one live process runs a comparison's or transfer's cell.

Two comparisons of one config started at once, ``--jobs`` workers and ``--shard``
processes that overlap all decide which cells to run from the same records. Each cell's
run is therefore taken under a claim: an exclusive ``flock`` on
``<runs>/<name>/claims/<cell>.lock``, held by the process that runs the cell until its
record is written. The kernel releases the lock when that process dies, however it dies
(``kill -9``, the OOM killer), so a dead process's claim is free again at once, with no
stale-claim timeout to guess. A lock file is removed by its holder on release; a taker
checks, once it holds the lock, that the path still names the file it locked (else it
locked a removed file, and tries again).

On a network file system shared by several machines this relies on the file system's
locks (NFSv4 and Lustre give ``flock`` across clients; the records' own appends rely on
the same locks, see :mod:`harness.records.store`).

Example:
    >>> import tempfile
    >>> claims = Path(tempfile.mkdtemp())
    >>> with claimed(claims, "abc") as mine, claimed(claims, "abc") as theirs:
    ...     mine, theirs
    (True, False)
    >>> sorted(p.name for p in claims.iterdir())
    []
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from harness.records.store import RecordWriteError


@contextlib.contextmanager
def claimed(directory: Path, key: str) -> Iterator[bool]:
    """Try to claim cell ``key`` without waiting; yields whether this process holds it
    (then until the block ends). ``False``: a live process holds it now.

    Raises:
        RecordWriteError: The claim file could not be made (a full or read-only disk).
    """
    path = directory / f"{key}.lock"
    fd = _lock(path)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                path.unlink()  # while still locked: a waiter retries on a fresh file
            os.close(fd)


def is_claimed(directory: Path, key: str) -> bool:
    """Whether a live process holds cell ``key``'s claim now (creates nothing).

    Example:
        >>> import tempfile
        >>> is_claimed(Path(tempfile.mkdtemp()), "abc")
        False
    """
    try:
        fd = os.open(directory / f"{key}.lock", os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False


def _lock(path: Path) -> int | None:
    """An open, locked descriptor of ``path`` (made if missing), or ``None`` if held."""
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise RecordWriteError(f"cannot claim {path}: {error.strerror or error}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            with contextlib.suppress(OSError):  # who holds it, for a person looking
                os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
            return fd
        os.close(fd)  # its holder removed it as we locked it: take the fresh one
