"""Trial records: one JSON line per finished trial, the source of truth of a study.

``runs/<study>/trials.jsonl`` is appended under an exclusive file lock with one
``write`` of one line followed by ``fsync``, so concurrent workers never interleave. A
writer killed mid-line leaves a torn last line; the next append (and every resume, see
:func:`repair_torn_tail`) finds that the file does not end in a newline, moves the torn
bytes to ``trials.jsonl.torn`` and cuts them off under the same lock, so the next record
starts on a line of its own. A write that fails (disk full, read-only, I/O error) is cut
back to where it began and raised as :class:`RecordWriteError`: earlier records stay
intact and the run stops (a record we cannot keep is not a result).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.records.schema import TrialRecord
from harness.util.notices import notice
from harness.util.user_files import check_regular_file

TORN_SUFFIX = ".torn"


class RecordWriteError(Exception):
    """Our own record could not be written (ENOSPC, EROFS, EIO...): one line, the run stops."""


def _write_error(path: Path, error: OSError) -> RecordWriteError:
    reason = error.strerror or str(error) or type(error).__name__
    return RecordWriteError(f"cannot write records to {path}: {reason}")


def append_record(path: Path | str, record: TrialRecord, if_absent: bool = False) -> bool:
    """Append one record as one line, atomically with respect to other writers; a torn
    tail left by a killed writer is moved aside first (see the module docstring). With
    ``if_absent``, a record of the same trial number already there is kept instead.
    Returns whether the line was written.

    Raises:
        RecordWriteError: The line could not be written; the file is as it was before.
    """
    path = Path(path)
    line = (record.to_json() + "\n").encode()
    with _locked(path) as fd:
        _announce(path, _repair(fd, path))
        if if_absent and any(r.get("trial") == record.trial for r in _iter_records(path)):
            return False
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            _write_all(fd, line)
            os.fsync(fd)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)  # no half record left behind
            raise _write_error(path, error) from None
    return True


def _announce(path: Path, torn: int) -> None:
    if torn:
        notice(
            f"{path} ended in a torn line ({torn} bytes, a writer killed mid-record): "
            f"moved to {path.name}{TORN_SUFFIX}"
        )


def repair_torn_tail(path: Path | str) -> int:
    """Move a torn last line (no final newline) to ``<path>.torn``; return its bytes.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "trials.jsonl"
        >>> _ = path.write_text('{"trial": 0}\\n{"tri')
        >>> torn = path.parent / "trials.jsonl.torn"
        >>> repair_torn_tail(path), path.read_text(), torn.read_text()
        (5, '{"trial": 0}\\n', '{"tri\\n')
    """
    path = Path(path)
    if not path.exists():
        return 0
    with _locked(path) as fd:
        torn = _repair(fd, path)
    _announce(path, torn)
    return torn


@contextlib.contextmanager
def records_locked(path: Path | str) -> Iterator[None]:
    """Hold the records file's lock (the one every append takes), e.g. to read the records
    and act on what is missing without another worker acting on it too. Not reentrant:
    do not append inside it.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "trials.jsonl"
        >>> with records_locked(path):
        ...     read_records(path)
        []
    """
    with _locked(Path(path)):
        yield


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as error:
        raise _write_error(path, error) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _repair(fd: int, path: Path) -> int:
    """Under the lock: cut a torn tail off, keeping its bytes in ``<path>.torn``."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    end = size
    while end > 0:  # the last newline, read backwards in blocks
        begin = max(0, end - 65536)
        block = os.pread(fd, end - begin, begin)
        cut = block.rfind(b"\n")
        if cut >= 0:
            end = begin + cut + 1
            break
        end = begin
    torn = os.pread(fd, size - end, end)
    aside = path.with_name(path.name + TORN_SUFFIX)
    try:
        with aside.open("ab") as handle:
            handle.write(torn + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.ftruncate(fd, end)
        os.fsync(fd)
    except OSError as error:
        raise _write_error(aside, error) from None
    return len(torn)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_records(path: Path | str) -> list[dict[str, Any]]:
    """Every complete record in a ``trials.jsonl``; a torn last line is skipped.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "trials.jsonl"
        >>> append_record(path, TrialRecord("s", 0, "COMPLETE", "sp", "t", None, {}, 0))
        True
        >>> [r["trial"] for r in read_records(path)]
        [0]
    """
    return list(_iter_records(Path(path)))


def _iter_records(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    check_regular_file(path, "records file")  # a FIFO would block, /dev/zero never end
    with path.open() as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn line from a killed writer
