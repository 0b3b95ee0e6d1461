"""What the command line reports as one line, and with which exit code.

Bad input (a :class:`UsageError`, or a ``ValueError``: how the library refuses bad input)
exits with code 2. An error of the machine that stops a run (:func:`halting_errors`),
memory running out, a full disk or an I/O error under any output
(:func:`is_machine_error`), and output the terminal's encoding cannot show
(:func:`encoding_line`) exit with code 1. An ``OSError`` that describes the user's files
(:func:`is_environment_error`: no permission, a read-only folder, a file where a folder
should be) exits with code 2. Any other error is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno

ENVIRONMENT_ERRNOS = {"EACCES", "EPERM", "EROFS", "ENOTDIR", "EISDIR"}
"""``errno`` names of OSErrors that describe the user's files (a read-only folder, a file
where a directory should be): exit code 2."""

MACHINE_ERRNOS = {"ENOSPC", "EDQUOT", "EIO", "EFBIG"}
"""``errno`` names of OSErrors of the machine (a full disk or quota, an I/O error, a file
size limit): exit code 1, like a run the machine stopped."""


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
    """Whether ``error`` is about the user's files (see ``ENVIRONMENT_ERRNOS``): exit 2.

    Example:
        >>> is_environment_error(PermissionError(errno.EACCES, "Permission denied"))
        True
        >>> is_environment_error(FileNotFoundError(errno.ENOENT, "gone"))
        False
    """
    return errno_name(error) in ENVIRONMENT_ERRNOS


def is_machine_error(error: OSError) -> bool:
    """Whether ``error`` is the machine's (see ``MACHINE_ERRNOS``): exit 1.

    Example:
        >>> is_machine_error(OSError(errno.ENOSPC, "No space left on device"))
        True
    """
    return errno_name(error) in MACHINE_ERRNOS


def errno_name(error: OSError) -> str | None:
    """``"ENOSPC"`` for an OSError of that errno; None without one.

    Example:
        >>> errno_name(OSError(errno.EROFS, "Read-only file system")), errno_name(OSError())
        ('EROFS', None)
    """
    return errno.errorcode.get(error.errno) if error.errno is not None else None


def encoding_line(error: UnicodeEncodeError) -> str:
    """One line for output that the terminal's encoding cannot show.

    Example:
        >>> encoding_line(UnicodeEncodeError("ascii", "λ = 1", 0, 1, "not in range"))
        "cannot write '\\u03bb' in the output's encoding 'ascii': set PYTHONIOENCODING=utf-8"
    """
    shown = error.object[error.start : error.end]
    encoding = error.encoding
    return (
        f"cannot write {shown!r} in the output's encoding {encoding!r}: set PYTHONIOENCODING=utf-8"
    )


def halting_errors() -> tuple[type[Exception], ...]:
    """The errors with which the machine stops a run (records, storage, worker processes).

    Example:
        >>> [error.__name__ for error in halting_errors()]
        ['RecordWriteError', 'StorageError', 'WorkerError', 'OutOfMemory', 'MemoryError']
    """
    from harness.records.store import RecordWriteError
    from harness.study.runtime.failures import OutOfMemory, StorageError
    from harness.study.runtime.processes import WorkerError

    return (RecordWriteError, StorageError, WorkerError, OutOfMemory, MemoryError)
