"""What the command line reports as one line, and with which exit code.

Bad input (a :class:`UsageError`, or a ``ValueError``: how the library refuses bad input)
exits with code 2. An error of the machine that stops a run (:func:`halting_errors`)
exits with code 1. An ``OSError`` that describes the user's files or machine
(:func:`is_environment_error`) exits with code 2. Any other error is a bug and keeps its
traceback.
"""

from __future__ import annotations

import errno

ENVIRONMENT_ERRNOS = {"EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "ENOTDIR", "EISDIR"}
"""``errno`` names of OSErrors that describe the user's files or machine (a read-only or
full disk, a file where a directory should be)."""


class UsageError(Exception):
    """An error in what the user asked for: printed as one line, exit code 2."""


def one_line(message: object) -> str:
    """``message`` with every run of whitespace (newlines included) made one space.

    Example:
        >>> one_line("a\\n  b c ")
        'a b c'
    """
    return " ".join(str(message).split())


def is_environment_error(error: OSError) -> bool:
    """Whether ``error`` is about the user's files or machine (see ``ENVIRONMENT_ERRNOS``).

    Example:
        >>> is_environment_error(PermissionError(errno.EACCES, "Permission denied"))
        True
        >>> is_environment_error(FileNotFoundError(errno.ENOENT, "gone"))
        False
    """
    return error.errno is not None and errno.errorcode.get(error.errno) in ENVIRONMENT_ERRNOS


def halting_errors() -> tuple[type[Exception], ...]:
    """The errors with which the machine stops a run (records, storage, worker processes).

    Example:
        >>> [error.__name__ for error in halting_errors()]
        ['RecordWriteError', 'StorageError', 'WorkerError']
    """
    from harness.records.store import RecordWriteError
    from harness.study.runtime.failures import StorageError
    from harness.study.runtime.processes import WorkerError

    return (RecordWriteError, StorageError, WorkerError)
