"""Failures of the run itself, not of a trial: storage errors, memory running out.

A storage that fails (a full disk under SQLite, a lost database, a storage proxy that stops
answering) stops the run with one
line (:class:`StorageError`, exit code 1 at the command line) instead of a traceback or a
trial counted as FAILed; the trial it interrupted is failed by its heartbeat (or lock) on
resume and runs again.

Memory that runs out in a trial (a ``MemoryError``, torch's CPU allocator or CUDA out of
memory) is the machine's limit, not the trial's settings failing: the run stops with one
line (:class:`OutOfMemory`, exit code 1) and the trial, left without a record, runs again
on resume, instead of every later trial failing the same way and the run exiting 0.

This module stays light (no torch, no Optuna): the command line imports it to catch
:class:`StorageError` in an ``except`` clause, which may run while a Ctrl-C has cut an
import of torch short, and a second import of half-initialised torch aborts the process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from harness.records.store import RecordWriteError
from harness.study.runtime.proxied import rpc_error_line
from harness.study.runtime.storage_urls import mask_password


class StorageError(Exception):
    """The study's storage failed: one line, the run stops (exit code 1)."""


class OutOfMemory(Exception):
    """Memory ran out in a trial: one line, the run stops (exit code 1)."""


OUT_OF_MEMORY = "out_of_memory"  # user attr of a trial cut short by it (no result)
_ALLOCATOR_MESSAGES = (
    "can't allocate memory",  # torch's CPU allocator
    "out of memory",
    "Cannot allocate memory",  # ENOMEM
    "failed to map segment from shared object",  # a lazy import's dlopen without memory
)


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says memory ran out: ``MemoryError``, torch's
    ``OutOfMemoryError`` (CUDA), a RuntimeError of torch's CPU allocator, or an import
    whose library could not be mapped.

    Example:
        >>> is_out_of_memory(MemoryError()), is_out_of_memory(ValueError("bad"))
        (True, False)
        >>> is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: ..."))
        True
    """
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    kinds = (RuntimeError, ImportError, OSError)
    return isinstance(error, kinds) and any(m in str(error) for m in _ALLOCATOR_MESSAGES)


@contextlib.contextmanager
def storage_failures(storage_url: str) -> Iterator[None]:
    """Turn an exception whose cause is the storage into a one-line :class:`StorageError`.

    Example:
        >>> with storage_failures("sqlite:///x.db"):
        ...     raise OSError(28, "No space left on device")
        Traceback (most recent call last):
        ...
        harness.study.runtime.failures.StorageError: storage sqlite:///x.db failed: No space ...
    """
    try:
        yield
    except (RecordWriteError, StorageError, ValueError):  # ValueError: bad input, one line
        raise
    except Exception as error:
        cause = storage_cause(error)
        if cause is None:
            raise
        raise StorageError(f"storage {mask_password(storage_url)} failed: {cause}") from None


def storage_cause(error: BaseException) -> str | None:
    """One line saying how the storage failed, if ``error`` (or what caused it) is a
    storage or OS error; else None.

    Example:
        >>> storage_cause(ValueError("bad")) is None
        True
        >>> storage_cause(OSError(30, "Read-only file system"))
        'Read-only file system'
    """
    found: str | None = None
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        line = _describe(current)
        if line is not None and any(c.isalnum() for c in line):  # not SQLAlchemy's "()"
            found = line  # the deepest cause says most
        suppressed = current.__suppress_context__  # raise ... from None: not a cause
        current = current.__cause__ or (None if suppressed else current.__context__)
    return found


def _describe(error: BaseException) -> str | None:
    name = type(error).__module__.split(".")[0]
    if isinstance(error, OSError):
        return error.strerror or _first_line(error)
    if name == "sqlalchemy":
        original = getattr(error, "orig", None)
        return _first_line(original if original is not None else error)
    if name == "grpc" and callable(getattr(error, "code", None)):  # a storage proxy's
        return f"storage proxy: {rpc_error_line(error)}"
    if type(error).__name__ == "StorageInternalError":
        return _first_line(error)
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
